"""DeepMind Control Suite tasks: ``dmc:<domain>-<task>``.

Every task of ``dm_control.suite`` (humanoid, dog, walker, cartpole, ...), with action
repeat 2 and 500 agent steps per episode by default, as TD-MPC2 and BOOM use them.
Observations are the suite's observation dict flattened in its key order; the contract
names each element after its key.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from boom_control.envs.base import ActionMapping, Env, EnvSpec, RenderTarget
from boom_control.envs.contract import ObservationContract, ObsField
from boom_control.errors import TaskError

# Headless by default: without a display, dm_control would probe GLFW and warn. Rendering
# code selects its own backend (egl / osmesa) before dm_control is imported.
if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "disable"

DEFAULT_EPISODE_LENGTH = 500  # agent steps (1000 control steps at action repeat 2)

# Units of the suite's observation keys, where they are physical quantities.
_UNITS = {
    "position": "m|rad",
    "velocity": "m/s|rad/s",
    "joint_angles": "rad",
    "height": "m",
    "head_height": "m",
    "extremities": "m",
    "torso_vertical": "1",
    "com_velocity": "m/s",
    "orientations": "1",
    "to_target": "m",
    "touch": "N",
    "torso_velocity": "m/s",
    "inertial_velocity": "m/s",
    "egocentric_state": "mixed",
    "upright": "1",
}


def dmc_tasks() -> list[str]:
    """All ``dmc:`` task ids of the installed dm_control suite."""
    from dm_control import suite

    return [f"dmc:{d.replace('_', '-')}-{t.replace('_', '-')}" for d, t in suite.ALL_TASKS]


def _split_id(name: str) -> tuple[str, str]:
    """``humanoid-walk`` -> ("humanoid", "walk"); handles underscores in suite names."""
    from dm_control import suite

    key = name.replace("-", "_")
    for domain, task in suite.ALL_TASKS:
        if f"{domain}_{task}" == key:
            return domain, task
    domains = sorted({d for d, _ in suite.ALL_TASKS})
    raise TaskError(
        f"unknown DMC task 'dmc:{name}'. Domains: {', '.join(domains)}. "
        "Run `boom tasks --family dmc` for every id."
    )


class DMCEnv(Env):
    """A dm_control suite task with action repeat and a step limit in agent steps."""

    def __init__(
        self,
        name: str,
        seed: int | None = 0,
        action_repeat: int = 2,
        episode_length: int | None = None,
    ) -> None:
        from dm_control import suite

        if not isinstance(action_repeat, int) or action_repeat < 1:
            raise TaskError(f"action_repeat must be a positive integer, got {action_repeat!r}")
        domain, task = _split_id(name)
        if episode_length is not None and (
            not isinstance(episode_length, int) or episode_length < 1
        ):
            raise TaskError(f"episode_length must be a positive integer, got {episode_length!r}")
        # The time limit is ours (in agent steps); the suite's own limit is switched off.
        self._env = suite.load(
            domain, task, task_kwargs={"random": seed, "time_limit": float("inf")}
        )
        self._repeat = action_repeat
        act_spec = self._env.action_spec()
        low = np.broadcast_to(act_spec.minimum, act_spec.shape).astype(np.float64)
        high = np.broadcast_to(act_spec.maximum, act_spec.shape).astype(np.float64)
        self._scale = (high - low) / 2.0
        self._offset = (high + low) / 2.0
        self._identity = bool(np.all(self._scale == 1.0) and np.all(self._offset == 0.0))
        fields = []
        for key, spec in self._env.observation_spec().items():
            size = int(np.prod(spec.shape)) if spec.shape else 1
            fields.append(ObsField(key, size, _UNITS.get(key, "1")))
        contract = ObservationContract(tuple(fields))
        physics = self._env.physics
        length = DEFAULT_EPISODE_LENGTH if episode_length is None else episode_length
        n_sub = round(self._env.control_timestep() / physics.timestep())
        names = tuple(physics.model.id2name(i, "actuator") for i in range(physics.model.nu))
        super().__init__(
            EnvSpec(
                task_id=f"dmc:{name}",
                obs_dim=contract.dim,
                action_dim=int(np.prod(act_spec.shape)),
                control_period=self._env.control_timestep() * action_repeat,
                episode_length=length,
                contract=contract,
                action_mapping=ActionMapping(tuple(self._scale), tuple(self._offset), names),
                physics_dt=float(physics.timestep()),
                substeps=n_sub * action_repeat,
            )
        )

    @property
    def physics(self):
        """The underlying dm_control physics (for rendering and tests)."""
        return self._env.physics

    def render_target(self) -> RenderTarget:
        """The raw ``mujoco.MjModel`` / ``MjData`` behind the dm_control physics."""
        physics = self._env.physics
        return RenderTarget(physics.model.ptr, physics.data.ptr)

    @property
    def raw_env(self):
        """The wrapped dm_control environment (for raw-speed comparisons)."""
        return self._env

    def _reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._env.task.random.seed(seed)
        ts = self._env.reset()
        return self.spec.contract.build(ts.observation), {}

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        cmd = action if self._identity else self._offset + self._scale * action
        reward = 0.0
        for _ in range(self._repeat):
            ts = self._env.step(cmd)
            reward += ts.reward or 0.0
        # DMC tasks never terminate early; the base class truncates at episode_length.
        return self.spec.contract.build(ts.observation), reward, False, {}

    def close(self) -> None:
        self._env.close()
