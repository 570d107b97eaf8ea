"""Humanoid-Bench tasks: ``hb:<gym id>`` (e.g. ``hb:h1hand-walk-v0``).

Humanoid-Bench is not on PyPI and pins an old MuJoCo (3.1.6), so it normally lives in its
own Python environment. Two ways to reach it:

1. directly, when ``humanoid_bench`` is importable in this environment: ``hb:<gym id>``;
2. through the sim bridge: run ``python -m sim_bridge gym <gym id> --import
   humanoid_bench`` with that environment's Python and use ``zmq:tcp://...`` here.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np

from boom_control.envs.base import ActionMapping, Env, EnvSpec, RenderTarget
from boom_control.envs.contract import ObservationContract, ObsField
from boom_control.errors import TaskError

HB_ROBOTS = ("h1", "h1hand", "h1touch", "g1")
HB_TASKS = (
    "stand",
    "walk",
    "run",
    "reach",
    "hurdle",
    "crawl",
    "maze",
    "sit_simple",
    "sit_hard",
    "balance_simple",
    "balance_hard",
    "stair",
    "slide",
    "pole",
    "push",
    "cabinet",
    "highbar_simple",
    "highbar_hard",
    "door",
    "truck",
    "cube",
    "bookshelf_simple",
    "bookshelf_hard",
    "basketball",
    "window",
    "spoon",
    "kitchen",
    "package",
    "powerlift",
    "room",
    "insert_small",
    "insert_normal",
)
SUCCESS = {"stand": 800.0, "walk": 700.0, "run": 700.0}

INSTALL_HINT = (
    "Humanoid-Bench is not installed in this environment. It pins mujoco 3.1.6 and JAX and "
    "lives in its own environment (benchmarks/humanoid_bench_env.sh builds one with CPU "
    "packages; install your Humanoid-Bench checkout into it without its dependencies), "
    "where the bridge's adapter serves its tasks:\n"
    "  ~/hb-env/bin/python -m sim_bridge gym h1hand-walk-v0 --import humanoid_bench "
    "--bind tcp://127.0.0.1:5555\n"
    "then use task=zmq:tcp://127.0.0.1:5555 here (see docs/humanoid_bench.md)."
)


def available() -> bool:
    """True when ``humanoid_bench`` can be imported here."""
    return importlib.util.find_spec("humanoid_bench") is not None


def hb_tasks() -> list[str]:
    """Gym ids of Humanoid-Bench tasks; empty when the package is not installed."""
    if not available():
        return []
    return [f"{r}-{t}-v0" for r in HB_ROBOTS for t in HB_TASKS]


class HumanoidBenchEnv(Env):
    """A Humanoid-Bench gymnasium env behind the task-layer interface (in-process)."""

    def __init__(self, name: str, seed: int | None = 0, episode_length: int | None = None) -> None:
        if not available():
            raise TaskError(f"cannot build hb:{name}. {INSTALL_HINT}")
        import gymnasium

        importlib.import_module("humanoid_bench")  # registers the gym ids
        try:
            self._env = gymnasium.make(name, render_mode=None)
        except gymnasium.error.Error as err:
            raise TaskError(
                f"hb:{name} is not a Humanoid-Bench gym id ({err}); ids look like "
                "'h1hand-walk-v0' (see `boom tasks --family hb`)"
            ) from None
        self._seed = seed
        obs_space, act_space = self._env.observation_space, self._env.action_space
        obs_dim = int(np.prod(obs_space.shape))
        low = np.asarray(act_space.low, dtype=np.float64)
        high = np.asarray(act_space.high, dtype=np.float64)
        self._scale, self._offset = (high - low) / 2.0, (high + low) / 2.0
        base = self._env.unwrapped
        dt = float(getattr(base, "dt", 0.02))
        physics_dt = float(base.model.opt.timestep) if hasattr(base, "model") else 0.002
        limit = getattr(self._env.spec, "max_episode_steps", None) or 1000
        task = name.split("-")[1] if name.count("-") >= 2 else name
        super().__init__(
            EnvSpec(
                task_id=f"hb:{name}",
                obs_dim=obs_dim,
                action_dim=int(np.prod(act_space.shape)),
                control_period=dt,
                episode_length=int(episode_length or limit),
                contract=ObservationContract((ObsField("state", obs_dim, "mixed"),)),
                action_mapping=ActionMapping(tuple(self._scale), tuple(self._offset)),
                physics_dt=physics_dt,
                substeps=max(1, round(dt / physics_dt)),
                terminates=True,
                success_return=SUCCESS.get(task),
            )
        )

    def _reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self._env.reset(seed=self._seed if seed is None else seed)
        self._seed = None  # later resets continue the env's own RNG stream
        return self.spec.contract.build({"state": obs}), dict(info)

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        obs, reward, terminated, _truncated, info = self._env.step(
            (self._offset + self._scale * action).astype(np.float32)
        )
        return self.spec.contract.build({"state": obs}), float(reward), bool(terminated), info

    def render_target(self) -> RenderTarget | None:
        base = self._env.unwrapped
        if not hasattr(base, "model"):
            return None
        return RenderTarget(base.model, base.data)

    def close(self) -> None:
        self._env.close()
