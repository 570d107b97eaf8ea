"""``h1:stand``, ``h1:walk``, ``h1:run``: the embedded Unitree H1 environment.

Wires the three parts together: :mod:`~boom_control.envs.h1.assets` finds the model files,
:mod:`~boom_control.envs.h1.model` builds the MuJoCo model, :mod:`~boom_control.envs.h1.task`
computes observation, reward and termination. This module owns the simulation loop only.

Control: 50 Hz (0.02 s = 10 physics steps of 0.002 s). An action ``a`` in ``[-1, 1]^19``
is an absolute joint-position target, ``target = offset + scale * a``, mapping ``[-1, 1]``
onto each joint's range. Note that ``a = 0`` is the middle of every range, *not* the
standing pose: :meth:`H1Env.keyframe_action` gives the action whose targets are the
keyframe. Holding that action from the keyframe keeps the robot up for a while, but the
bent-knee pose is not statically balanced and it tips over backwards after about 75
control steps (1.5 s); standing needs a feedback policy.

Reset: the ``stand`` keyframe plus ``uniform(-reset_noise, reset_noise)`` on every ``qpos``
entry (root quaternion renormalised), zero velocity, drawn from a numpy ``Generator``
seeded by ``reset(seed)`` (or, with ``seed=None``, continuing the constructor's stream).
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any

import mujoco
import numpy as np

from boom_control.envs.base import ActionMapping, Env, EnvSpec, RenderTarget
from boom_control.envs.h1.assets import find_model_dir
from boom_control.envs.h1.model import KEYFRAME, PHYSICS_DT, ROOT_BODY, build_model
from boom_control.envs.h1.task import MOVE_SPEEDS, H1Task
from boom_control.errors import TaskError

H1_TASKS = tuple(MOVE_SPEEDS)  # ("stand", "walk", "run")
CONTROL_PERIOD = 0.02  # s, 50 Hz
DEFAULT_EPISODE_LENGTH = 1000  # control steps
DEFAULT_RESET_NOISE = 0.01


def substeps_for(control_period: float, physics_dt: float) -> int:
    """Physics steps per control step; fails when the period is not a whole number of them."""
    n = round(control_period / physics_dt)
    if n < 1 or not math.isclose(n * physics_dt, control_period, rel_tol=0, abs_tol=1e-9):
        raise TaskError(
            f"h1: control period {control_period} s is not a whole number of physics steps "
            f"of {physics_dt} s"
        )
    return n


def position_mapping(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """``(offset, scale)``, each ``(nu,)``: ``[-1, 1]`` onto every actuator's ``ctrlrange``."""
    low, high = model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1]
    return (high + low) / 2.0, (high - low) / 2.0


def keyframe_action(model: mujoco.MjModel) -> np.ndarray:
    """The ``(nu,)`` normalised action whose joint targets equal the ``stand`` keyframe."""
    offset, scale = position_mapping(model)
    return (model.key(KEYFRAME).ctrl - offset) / scale


class H1Env(Env):
    """Unitree H1 (Menagerie model, position actuators) on flat ground.

    Observation ``(51,)`` float32: ``qpos (26)`` then ``qvel (25)``. Action ``(19,)``.
    """

    def __init__(
        self,
        name: str,
        seed: int | None = 0,
        model_path: str | PathLike[str] | None = None,
        episode_length: int = DEFAULT_EPISODE_LENGTH,
        reset_noise: float = DEFAULT_RESET_NOISE,
    ) -> None:
        if name not in H1_TASKS:
            raise TaskError(
                f"unknown H1 task 'h1:{name}'; choose from "
                + ", ".join(f"'h1:{t}'" for t in H1_TASKS)
            )
        if (
            isinstance(episode_length, bool)
            or not isinstance(episode_length, int)
            or episode_length < 1
        ):
            raise TaskError(f"episode_length must be a positive integer, got {episode_length!r}")
        if not (
            isinstance(reset_noise, int | float) and math.isfinite(reset_noise) and reset_noise >= 0
        ):
            raise TaskError(f"reset_noise must be a finite number >= 0, got {reset_noise!r}")

        model_dir = find_model_dir(model_path)
        try:
            self._model = build_model(model_dir)
        except ValueError as err:  # MuJoCo's parse / compile errors
            raise TaskError(f"h1: could not build the model from {model_dir}: {err}") from None
        self._data = mujoco.MjData(self._model)
        self._task = H1Task(self._model, name)
        self._substeps = substeps_for(CONTROL_PERIOD, self._model.opt.timestep)
        self._offset, self._scale = position_mapping(self._model)
        self._noise = float(reset_noise)
        self._rng = np.random.default_rng(seed)
        self._key = self._model.key(KEYFRAME).id
        root = self._model.jnt_qposadr[self._model.body(ROOT_BODY).jntadr[0]]
        self._root_quat = slice(int(root) + 3, int(root) + 7)

        names = tuple(self._model.actuator(i).name for i in range(self._model.nu))
        mapping = ActionMapping(
            scale=tuple(float(x) for x in self._scale),
            offset=tuple(float(x) for x in self._offset),
            names=names,
            kind="position",
            kp=tuple(float(x) for x in self._model.actuator_gainprm[:, 0]),
            kd=tuple(float(-x) for x in self._model.actuator_biasprm[:, 2]),
        )
        contract = self._task.contract
        super().__init__(
            EnvSpec(
                task_id=f"h1:{name}",
                obs_dim=contract.dim,
                action_dim=self._model.nu,
                control_period=CONTROL_PERIOD,
                episode_length=episode_length,
                contract=contract,
                action_mapping=mapping,
                physics_dt=PHYSICS_DT,
                substeps=self._substeps,
                terminates=True,
                success_return=self._task.success_return,
                extras={"model": "mujoco_menagerie/unitree_h1 (position actuators)"},
            )
        )

    @property
    def model(self) -> mujoco.MjModel:
        """The compiled task model."""
        return self._model

    @property
    def data(self) -> mujoco.MjData:
        """The live simulation state (for rendering and tests)."""
        return self._data

    @property
    def task(self) -> H1Task:
        """The task object (observation, reward, termination)."""
        return self._task

    def render_target(self) -> RenderTarget:
        return RenderTarget(self._model, self._data)

    def keyframe_action(self) -> np.ndarray:
        """``(19,)`` action in ``[-1, 1]`` that targets the standing keyframe pose."""
        return keyframe_action(self._model)

    def _observe(self) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        m = self._task.measure(self._data)
        reward, info = self._task.reward(m)
        obs = self.spec.contract.build(self._task.observation(self._data))
        return obs, reward, self._task.terminated(m), info

    def _reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        model, data = self._model, self._data
        mujoco.mj_resetDataKeyframe(model, data, self._key)
        data.qpos[:] += self._rng.uniform(-self._noise, self._noise, size=model.nq)
        quat = data.qpos[self._root_quat]
        data.qpos[self._root_quat] = quat / np.linalg.norm(quat)
        mujoco.mj_forward(model, data)
        obs, _, _, info = self._observe()
        return obs, info

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        self._data.ctrl[:] = self._offset + self._scale * action
        mujoco.mj_step(self._model, self._data, nstep=self._substeps)
        # As in Humanoid-Bench, the reward reads the forward quantities (site positions,
        # sensors, actuator forces) of the last substep's forward pass: one physics step
        # (2 ms) older than qpos/qvel. No extra mj_forward: it would cost ~8% of the step.
        return self._observe()
