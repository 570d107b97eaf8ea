"""Serve any Gymnasium environment over the sim-bridge protocol.

Needs only numpy, pyzmq, msgpack and gymnasium (never boom_control or torch), so it runs
under another project's Python, for example Humanoid-Bench's::

    PYTHONPATH=/path/to/boom-control python -m sim_bridge gym h1hand-walk-v0 \\
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
import os
from typing import Any

import gymnasium as gym
import numpy as np

from sim_bridge.protocol import affine_action_mapping, contract_hash, neutral_action
from sim_bridge.server import (
    BUSY_POLL_DEFAULT,
    MODES,
    BridgeServer,
    ServerConfig,
    add_admission_arguments,
)


def _field(key: str, names: list[str], unit: str = "1") -> dict[str, Any]:
    return {"key": key, "size": len(names), "unit": unit, "names": names, "scale": 1.0}


def space_contract(space: gym.Space) -> dict[str, Any]:
    """Observation contract JSON (the format of ``ObservationContract.to_json``) from the
    observation space alone: one field per key of a ``Dict`` space, else one ``obs`` field;
    its components are named by index only."""
    if isinstance(space, gym.spaces.Dict):
        parts = [(k, int(gym.spaces.flatdim(s))) for k, s in space.spaces.items()]
    else:
        parts = [("obs", int(gym.spaces.flatdim(space)))]
    fields = []
    for key, size in parts:
        fields.append(_field(key, [key] if size == 1 else [f"{key}[{i}]" for i in range(size)]))
    return {"version": 1, "fields": fields}


_FREE_POS, _FREE_VEL = ("x", "y", "z", "qw", "qx", "qy", "qz"), ("vx", "vy", "vz", "wx", "wy", "wz")
_BALL_POS, _BALL_VEL = ("qw", "qx", "qy", "qz"), ("wx", "wy", "wz")


def mujoco_contract(env: gym.Env, obs: np.ndarray) -> dict[str, Any] | None:
    """A contract naming every component, for an env whose observation is its MuJoCo
    state ``[qpos[k:], qvel]`` (k = 0, 1 or 2; e.g. Humanoid-Bench's locomotion tasks):
    ``qpos/<joint>`` and ``qvel/<joint>`` (free joints ``_x .. _qz`` and ``_vx .. _wz``).
    The layout is checked against ``obs``, the observation of the env's current state;
    None when it does not match or the env has no MuJoCo model."""
    unwrapped = env.unwrapped
    model, data = getattr(unwrapped, "model", None), getattr(unwrapped, "data", None)
    if model is None or data is None or not hasattr(model, "jnt_type"):
        return None
    try:
        import mujoco
    except ImportError:
        return None
    qpos, qvel = np.asarray(data.qpos).ravel(), np.asarray(data.qvel).ravel()
    pos_names, vel_names = [""] * qpos.size, [""] * qvel.size
    for j in range(model.njnt):
        name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j) or f"joint{j}"
        kind = int(model.jnt_type[j])
        if kind == mujoco.mjtJoint.mjJNT_FREE:
            pos, vel = [f"{name}_{s}" for s in _FREE_POS], [f"{name}_{s}" for s in _FREE_VEL]
        elif kind == mujoco.mjtJoint.mjJNT_BALL:
            pos, vel = [f"{name}_{s}" for s in _BALL_POS], [f"{name}_{s}" for s in _BALL_VEL]
        else:
            pos, vel = [name], [name]
        p, v = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        pos_names[p : p + len(pos)] = pos
        vel_names[v : v + len(vel)] = vel
    for k in (0, 1, 2):
        state = np.concatenate([qpos[k:], qvel]).astype(np.float32)
        if state.shape == obs.shape and np.allclose(state, obs, rtol=1e-5, atol=1e-5):
            return {
                "version": 1,
                "fields": [
                    _field("qpos", [f"qpos/{n}" for n in pos_names[k:]], "m|1|rad"),
                    _field("qvel", [f"qvel/{n}" for n in vel_names], "m/s|rad/s"),
                ],
            }
    return None


def make_headless(env_id: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make`` with ``render_mode=None`` unless ``kwargs`` name one: a served
    env never draws, and an env that renders by default would open an OpenGL context
    (which fails on a machine without a display). An env whose constructor takes no
    ``render_mode`` is made without it."""
    if "render_mode" in kwargs:
        return gym.make(env_id, **kwargs)
    try:
        return gym.make(env_id, render_mode=None, **kwargs)
    except TypeError as err:
        if "render_mode" not in str(err):
            raise
        return gym.make(env_id, **kwargs)


def _actuator_names(env: gym.Env, action_dim: int) -> list[str]:
    """The MuJoCo actuator names when the env has one actuator per action, else []."""
    model = getattr(env.unwrapped, "model", None)
    if model is None or getattr(model, "nu", None) != action_dim:
        return []
    try:
        import mujoco
    except ImportError:
        return []
    return [
        mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_ACTUATOR, i) or f"actuator{i}"
        for i in range(action_dim)
    ]


class GymBackend:
    """A Gymnasium env as a bridge backend.

    Args:
        env_id: registered Gymnasium id.
        seed: seed of the first reset that passes none.
        env_kwargs: keyword arguments for ``gymnasium.make``.
    """

    def __init__(self, env_id: str, seed: int | None = 0, **env_kwargs: Any) -> None:
        self.env = make_headless(env_id, **env_kwargs)
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
        first, _ = self.env.reset(seed=seed)  # the state whose observation names are checked
        self._contract = mujoco_contract(self.env, self._flat(first))
        self.names_from = "the MuJoCo state (qpos, qvel)"
        if self._contract is None:
            self._contract = space_contract(self._obs_space)
            self.names_from = (
                "the observation space's keys"
                if isinstance(self._obs_space, gym.spaces.Dict)
                else "dimensions only (the env names no components)"
            )
        self._actuators = _actuator_names(self.env, int(self._scale.size))

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
            "observation_names": self.names_from,
            "action_mapping": affine_action_mapping(self._scale, self._offset, self._actuators),
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
        return neutral_action(self._scale, self._offset)

    def estop(self) -> None:
        """Nothing to cut in a simulator; the server applies the neutral action."""

    def close(self) -> None:
        self.env.close()


def main(argv: list[str] | None = None, prog: str = "python -m sim_bridge gym") -> None:
    """``python -m sim_bridge gym ENV_ID [--import MODULE] [--bind ...]``."""
    parser = argparse.ArgumentParser(
        prog=prog,
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
    parser.add_argument(
        "--max-instances",
        type=int,
        default=8,
        help="lockstep: envs alive at once, one per client (default: 8)",
    )
    parser.add_argument(
        "--busy-poll",
        type=float,
        default=BUSY_POLL_DEFAULT,
        help="lockstep: seconds the server keeps polling after each reply before it blocks "
        f"(0 blocks at once; default: {BUSY_POLL_DEFAULT:g})",
    )
    parser.add_argument(
        "--cpus",
        type=_cpu_list,
        default=None,
        help="pin the server to these CPUs, e.g. 0 or 0,2-3 (busy polling is off on one CPU)",
    )
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--curve-secret-key")
    parser.add_argument("--curve-clients")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.cpus:
        os.sched_setaffinity(0, set(args.cpus))  # before ZeroMQ starts its threads
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as err:
        parser.error(f"--kwargs is not JSON: {err}")
    if not isinstance(kwargs, dict):
        parser.error("--kwargs must be a JSON object, e.g. '{\"render_mode\": null}'")
    try:
        config = ServerConfig(
            endpoint=args.bind,
            mode=args.mode,
            on_late=args.on_late,
            watchdog_periods=args.watchdog,
            allow_remote=args.allow_remote,
            lease_timeout=args.lease_timeout,
            max_clients=args.max_clients,
            max_instances=args.max_instances,
            client_timeout=args.client_timeout,
            busy_poll=args.busy_poll,
            curve_secret_key=args.curve_secret_key,
            curve_clients=args.curve_clients,
            name="gym-server",
        )
    except ValueError as err:  # a setting out of range
        parser.error(str(err))
    for module in args.imports:
        importlib.import_module(module)

    def build() -> GymBackend:
        return GymBackend(args.env_id, seed=args.seed, **kwargs)

    backend = build()
    logging.getLogger(__name__).info(
        "%s: observation %d (names from %s), action %d",
        args.env_id,
        backend.describe()["obs_dim"],
        backend.names_from,
        backend.describe()["action_dim"],
    )
    BridgeServer(backend, config, make_backend=build).serve()


def _cpu_list(text: str) -> tuple[int, ...]:
    """``0,2-3`` -> ``(0, 2, 3)`` (an argparse type)."""
    cpus: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPUs like 0 or 0,2-3, got {text!r}") from None
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"expected CPUs like 0 or 0,2-3, got {text!r}")
    return tuple(cpus)


if __name__ == "__main__":
    main()
