"""The H1 stand / walk / run task: observation, reward and termination, and nothing else.

Simulation-free by design: :meth:`H1Task.measure` reads the few quantities the reward needs
from a ``mujoco.MjData`` whose forward quantities are current (``mj_forward`` after the
last change of ``qpos``/``qvel``), and every reward function below works on those plain
numbers. On hardware, run ``mj_forward`` on the estimated state with the same model, or
fill :class:`Measurements` from the robot's own estimator, and the same code applies.

Reward definitions (Humanoid-Bench, with dm_control's ``rewards.tolerance``, here the
compiled equivalent :func:`boom_control.envs.tolerance.tolerance`):

* ``standing``      = tol(head height, bounds=(1.65, inf), margin=1.65/4)
* ``upright``       = tol(torso z-axis z-component, bounds=(0.9, inf), margin=1.9,
  linear, value_at_margin=0)
* ``small_control`` = (4 + mean(tol(actuator force, margin=10, quadratic,
  value_at_margin=0))) / 5
* ``move``, stand   = mean(tol(com velocity xy, margin=2))
* ``move``, walk/run = (5 * tol(com velocity x, bounds=(v, inf), margin=v, linear,
  value_at_margin=0) + 1) / 6 with v = 1 m/s (walk) or 5 m/s (run)
* reward = small_control * standing * upright * move; the episode terminates when the
  pelvis is below 0.2 m.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from boom_control.envs.contract import ObservationContract, ObsField
from boom_control.envs.h1 import model as h1_model
from boom_control.envs.tolerance import (
    GAUSSIAN,
    LINEAR,
    QUADRATIC,
    tol_kernel,
    tol_mean_kernel,
)

INF = float("inf")
STAND_HEIGHT = 1.65  # m, head height that counts as standing
UPRIGHT_MIN = 0.9  # torso z-axis z-component that counts as upright
TERMINATION_HEIGHT = 0.2  # m, pelvis height below which the episode ends
MOVE_SPEEDS = {"stand": 0.0, "walk": 1.0, "run": 5.0}  # m/s forward target per task
SUCCESS_RETURNS = {"stand": 800.0, "walk": 700.0, "run": 700.0}
REWARD_KEYS = ("standing", "upright", "small_control", "move")


@dataclass(frozen=True)
class Measurements:
    """What the reward and termination read.

    Attributes:
        pelvis_height: pelvis (root) height above the floor, m.
        head_height: height of the head site, m.
        torso_upright: z-component of the torso's z-axis in the world frame (1 = upright).
        com_velocity: ``(3,)`` world-frame linear velocity of the robot's centre of mass, m/s.
        actuator_force: ``(nu,)`` actuator forces, N m.
    """

    pelvis_height: float
    head_height: float
    torso_upright: float
    com_velocity: np.ndarray
    actuator_force: np.ndarray


def standing_reward(head_height: float) -> float:
    """1 with the head at or above 1.65 m, gaussian fall-off (0.1 at 1.65/4 below)."""
    return tol_kernel(float(head_height), STAND_HEIGHT, INF, STAND_HEIGHT / 4, GAUSSIAN, 0.1)


def upright_reward(torso_upright: float) -> float:
    """1 when the torso's z-axis z-component is >= 0.9, linear to 0 at -1.0."""
    return tol_kernel(float(torso_upright), UPRIGHT_MIN, INF, 1.9, LINEAR, 0.0)


def small_control_reward(actuator_force: np.ndarray) -> float:
    """``(4 + mean(quadratic tolerance of each force, margin 10 N m)) / 5``, in [0.8, 1]."""
    tol = tol_mean_kernel(
        np.asarray(actuator_force, dtype=np.float64), 0.0, 0.0, 10.0, QUADRATIC, 0.0
    )
    return (4.0 + tol) / 5.0


def still_reward(com_velocity: np.ndarray) -> float:
    """Stand's move term: mean gaussian tolerance of the horizontal com velocity (margin 2)."""
    return tol_mean_kernel(
        np.asarray(com_velocity, dtype=np.float64)[:2], 0.0, 0.0, 2.0, GAUSSIAN, 0.1
    )


def forward_reward(com_velocity: np.ndarray, speed: float) -> float:
    """Walk / run move term: ``(5 * tol(vx, (speed, inf), margin=speed, linear) + 1) / 6``."""
    tol = tol_kernel(float(com_velocity[0]), speed, INF, speed, LINEAR, 0.0)
    return float((5.0 * tol + 1.0) / 6.0)


def move_function(task: str) -> Callable[[np.ndarray], float]:
    """The move term of ``task`` as a function of the ``(3,)`` com velocity."""
    speed = MOVE_SPEEDS[task]
    if speed == 0.0:
        return still_reward
    return lambda com_velocity: forward_reward(com_velocity, speed)


def observation_contract(model: mujoco.MjModel) -> ObservationContract:
    """``qpos`` then ``qvel`` of ``model``, each element named after its joint.

    The free joint of the root body contributes ``<body>_x/_y/_z`` (m) and
    ``<body>_qw/_qx/_qy/_qz`` (unit quaternion) to ``qpos`` and ``<body>_vx/_vy/_vz`` (m/s)
    and ``<body>_wx/_wy/_wz`` (rad/s, local frame) to ``qvel``; hinges give their angle (rad)
    and rate (rad/s).
    """
    qpos_names: list[str] = []
    qvel_names: list[str] = []
    for j in range(model.njnt):
        name = model.joint(j).name or model.body(model.jnt_bodyid[j]).name
        if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE:
            qpos_names += [f"{name}_{s}" for s in ("x", "y", "z", "qw", "qx", "qy", "qz")]
            qvel_names += [f"{name}_{s}" for s in ("vx", "vy", "vz", "wx", "wy", "wz")]
        elif model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE:
            qpos_names.append(name)
            qvel_names.append(name)
        else:
            raise ValueError(f"h1: unexpected joint type for {name!r}")
    return ObservationContract(
        (
            ObsField("qpos", model.nq, "m|1|rad", tuple(f"qpos/{n}" for n in qpos_names)),
            ObsField("qvel", model.nv, "m/s|rad/s", tuple(f"qvel/{n}" for n in qvel_names)),
        )
    )


class H1Task:
    """Observation, reward and termination of one H1 task for a given model.

    Model indices are resolved once here; the per-step methods only read arrays.
    """

    def __init__(self, model: mujoco.MjModel, task: str) -> None:
        if task not in MOVE_SPEEDS:
            raise ValueError(f"h1: unknown task {task!r}; choose from {sorted(MOVE_SPEEDS)}")
        self.name = task
        self.contract = observation_contract(model)
        self.success_return = SUCCESS_RETURNS[task]
        self._move = move_function(task)
        root_joint = model.body(h1_model.ROOT_BODY).jntadr[0]
        self._pelvis_z = int(model.jnt_qposadr[root_joint]) + 2
        self._head = model.site(h1_model.HEAD_SITE).id
        self._torso = model.body(h1_model.TORSO_BODY).id
        sensor = model.sensor(h1_model.COM_VELOCITY_SENSOR)
        self._com_vel = slice(int(sensor.adr[0]), int(sensor.adr[0]) + 3)

    def observation(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Raw observation mapping for :attr:`contract`: ``qpos (nq,)``, ``qvel (nv,)``."""
        return {"qpos": data.qpos, "qvel": data.qvel}

    def measure(self, data: mujoco.MjData) -> Measurements:
        """Read :class:`Measurements` from ``data`` (forward quantities must be current)."""
        return Measurements(
            pelvis_height=float(data.qpos[self._pelvis_z]),
            head_height=float(data.site_xpos[self._head, 2]),
            torso_upright=float(data.xmat[self._torso, 8]),
            com_velocity=data.sensordata[self._com_vel].copy(),
            actuator_force=data.actuator_force.copy(),
        )

    def reward(self, m: Measurements) -> tuple[float, dict[str, float]]:
        """Return ``(reward, components)``; components are the :data:`REWARD_KEYS` terms."""
        parts = {
            "standing": standing_reward(m.head_height),
            "upright": upright_reward(m.torso_upright),
            "small_control": small_control_reward(m.actuator_force),
            "move": self._move(m.com_velocity),
        }
        reward = parts["small_control"] * parts["standing"] * parts["upright"] * parts["move"]
        return reward, parts

    def terminated(self, m: Measurements) -> bool:
        """True once the pelvis is below :data:`TERMINATION_HEIGHT`."""
        return m.pelvis_height < TERMINATION_HEIGHT
