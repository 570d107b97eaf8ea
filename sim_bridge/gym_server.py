"""Serve any Gymnasium environment over the sim-bridge protocol.

Needs only numpy, pyzmq, msgpack and gymnasium (never boom_control or torch), so it runs
under another project's Python, for example Humanoid-Bench's::

    PYTHONPATH=/path/to/boom-control python -m sim_bridge.gym_server h1hand-walk-v0 \\
        --import humanoid_bench --bind tcp://127.0.0.1:5555

and ``boom train task=zmq:tcp://127.0.0.1:5555`` trains on it. Observations (any space
``gymnasium.spaces.flatten`` handles) become one float32 vector; the action space must be
a bounded ``Box``: the bridge's actions in [-1, 1] are mapped affinely onto its bounds.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from typing import Any

import gymnasium as gym
import numpy as np

from sim_bridge.protocol import affine_action_mapping, contract_hash
from sim_bridge.server import MODES, BridgeServer, ServerConfig, add_admission_arguments


def _contract(space: gym.Space) -> dict[str, Any]:
    """Observation contract JSON (the format of ``ObservationContract.to_json``)."""
    if isinstance(space, gym.spaces.Dict):
        parts = [(k, int(gym.spaces.flatdim(s))) for k, s in space.spaces.items()]
    else:
        parts = [("obs", int(gym.spaces.flatdim(space)))]
    fields = []
    for key, size in parts:
        names = [key] if size == 1 else [f"{key}[{i}]" for i in range(size)]
        fields.append({"key": key, "size": size, "unit": "1", "names": names, "scale": 1.0})
    return {"version": 1, "fields": fields}


class GymBackend:
    """A Gymnasium env as a bridge backend.

    Args:
        env_id: registered Gymnasium id.
        seed: seed of the first reset that passes none.
        env_kwargs: keyword arguments for ``gymnasium.make``.
    """

    def __init__(self, env_id: str, seed: int | None = 0, **env_kwargs: Any) -> None:
        self.env = gym.make(env_id, **env_kwargs)
        space = self.env.action_space
        if not isinstance(space, gym.spaces.Box) or not (
            np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
        ):
            raise ValueError(f"{env_id}: the bridge needs a bounded Box action space, got {space}")
        self._low = space.low.astype(np.float64).reshape(-1)
        self._high = space.high.astype(np.float64).reshape(-1)
        self._shape, self._dtype = space.shape, space.dtype
        self._scale = (self._high - self._low) / 2.0
        self._offset = (self._high + self._low) / 2.0
        self._obs_space = self.env.observation_space
        self._first_seed = seed
        self.env_id = env_id
        unwrapped = self.env.unwrapped
        dt = getattr(unwrapped, "dt", None)
        if dt is None:
            fps = self.env.metadata.get("render_fps")
            dt = 1.0 / fps if fps else 0.02
        self._dt = float(dt)
        spec = self.env.spec
        self._length = int(spec.max_episode_steps) if spec and spec.max_episode_steps else 1000
        self._contract = _contract(self._obs_space)

    def describe(self) -> dict[str, Any]:
        n = int(self._scale.size)
        return {
            "task_id": f"gym:{self.env_id}",
            "obs_dim": int(gym.spaces.flatdim(self._obs_space)),
            "action_dim": n,
            "control_period": self._dt,
            "control_rate": 1.0 / self._dt,
            "episode_length": self._length,
            "physics_dt": self._dt,
            "substeps": 1,
            "terminates": True,
            "success_return": None,
            "contract": self._contract,
            "contract_hash": contract_hash(self._contract),
            "action_mapping": affine_action_mapping(self._scale, self._offset),
            "waits_for_first_action": True,  # a simulator: time can stand still
        }

    def _flat(self, obs: Any) -> np.ndarray:
        return np.asarray(gym.spaces.flatten(self._obs_space, obs), dtype=np.float32)

    def reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seed, self._first_seed = self._first_seed, None
        else:
            self._first_seed = None
        obs, _ = self.env.reset(seed=seed)
        return self._flat(obs), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        cmd = (self._offset + self._scale * action).reshape(self._shape).astype(self._dtype)
        obs, reward, terminated, truncated, _ = self.env.step(cmd)
        return self._flat(obs), float(reward), bool(terminated), bool(truncated), {}

    def neutral_action(self) -> np.ndarray:
        safe = np.where(self._scale != 0.0, self._scale, 1.0)
        return np.clip(np.where(self._scale != 0.0, -self._offset / safe, 0.0), -1.0, 1.0)

    def estop(self) -> None:
        """Nothing to cut in a simulator; the server applies the neutral action."""

    def close(self) -> None:
        self.env.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m sim_bridge.gym_server ENV_ID [--import MODULE] [--bind ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m sim_bridge.gym_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("env_id", help="Gymnasium id, e.g. Pendulum-v1 or h1hand-walk-v0")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        help="module to import first (registers its envs); repeatable",
    )
    parser.add_argument("--bind", default="tcp://127.0.0.1:5555")
    parser.add_argument("--mode", choices=MODES, default="lockstep")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kwargs", default="{}", help="JSON keyword arguments for gym.make")
    parser.add_argument("--on-late", choices=("hold", "damp"), default="hold")
    parser.add_argument("--watchdog", type=int, default=10)
    add_admission_arguments(parser)
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--curve-secret-key")
    parser.add_argument("--curve-clients")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for module in args.imports:
        importlib.import_module(module)
    try:
        config = ServerConfig(
            endpoint=args.bind,
            mode=args.mode,
            on_late=args.on_late,
            watchdog_periods=args.watchdog,
            allow_remote=args.allow_remote,
            lease_timeout=args.lease_timeout,
            max_clients=args.max_clients,
            curve_secret_key=args.curve_secret_key,
            curve_clients=args.curve_clients,
            name="gym-server",
        )
    except ValueError as err:  # a setting out of range
        parser.error(str(err))
    backend = GymBackend(args.env_id, seed=args.seed, **json.loads(args.kwargs))
    BridgeServer(backend, config).serve()


if __name__ == "__main__":
    main()
