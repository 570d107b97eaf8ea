"""Build the H1 task model from the Menagerie ``h1.xml`` with MuJoCo's ``MjSpec`` API.

The Menagerie model drives every joint with a torque motor. Humanoid-Bench's H1 tasks use
position actuators instead, and so does this task: :func:`build_spec` loads ``h1.xml``
unchanged on disk and edits the in-memory spec:

* each torque motor is replaced by a position actuator on the same joint, in the same order,
  with the Humanoid-Bench gains (:data:`GAINS`), ``ctrlrange`` = the joint range and a force
  limit;
* sites ``head`` (torso frame, 0.7 m up), ``left_foot`` / ``right_foot`` (ankle frames,
  5 cm down) and ``com`` (pelvis origin), the places Humanoid-Bench measures;
* a ``pelvis_subtreelinvel`` sensor: linear velocity of the whole robot's centre of mass;
* a floor plane and an overhead light, timestep 0.002 s;
* the keyframe ``stand``: pelvis at 0.98 m, legs bent hip -0.4 / knee 0.8 / ankle -0.4 rad,
  everything else 0, with ``ctrl`` holding the same joint targets.

Differences from Humanoid-Bench's own ``h1_pos.xml`` that matter when comparing numbers:
primitive collision shapes instead of meshes, Menagerie's hip-pitch range (+-1.57 rad
instead of -3.14..2.53) and no hands.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from boom_control.envs.h1.assets import MODEL_FILE

PHYSICS_DT = 0.002  # s
ROOT_BODY = "pelvis"
TORSO_BODY = "torso_link"
HEAD_SITE = "head"
COM_VELOCITY_SENSOR = "pelvis_subtreelinvel"
KEYFRAME = "stand"

# Joint-name suffix -> (kp [N m/rad], kv [N m s/rad], force limit [N m]), Humanoid-Bench values.
GAINS: dict[str, tuple[float, float, float]] = {
    "hip_yaw": (200.0, 5.0, 200.0),
    "hip_roll": (200.0, 5.0, 200.0),
    "hip_pitch": (200.0, 5.0, 200.0),
    "knee": (300.0, 6.0, 300.0),
    "ankle": (40.0, 2.0, 40.0),
    "torso": (300.0, 6.0, 200.0),
    "shoulder_pitch": (100.0, 2.0, 40.0),
    "shoulder_roll": (100.0, 2.0, 40.0),
    "shoulder_yaw": (100.0, 2.0, 18.0),
    "elbow": (100.0, 2.0, 18.0),
}

# Standing keyframe: pelvis height and the bent-leg joint angles; unlisted joints are 0.
KEY_PELVIS_HEIGHT = 0.98  # m
KEY_JOINTS: dict[str, float] = {
    "left_hip_pitch": -0.4,
    "left_knee": 0.8,
    "left_ankle": -0.4,
    "right_hip_pitch": -0.4,
    "right_knee": 0.8,
    "right_ankle": -0.4,
}

# (site name, body, position in the body frame [m])
_SITES = (
    (HEAD_SITE, TORSO_BODY, (0.0, 0.0, 0.7)),
    ("left_foot", "left_ankle_link", (0.0, 0.0, -0.05)),
    ("right_foot", "right_ankle_link", (0.0, 0.0, -0.05)),
    ("com", ROOT_BODY, (0.0, 0.0, 0.0)),
)


def joint_gains(joint: str) -> tuple[float, float, float]:
    """``(kp, kv, force_limit)`` of a joint, from the longest matching suffix in :data:`GAINS`."""
    matches = [suffix for suffix in GAINS if joint == suffix or joint.endswith("_" + suffix)]
    if not matches:
        raise ValueError(f"h1: no position gains defined for joint {joint!r}")
    return GAINS[max(matches, key=len)]


def _replace_motors(spec: mujoco.MjSpec) -> list[str]:
    """Swap every torque motor for a position actuator; returns the joint order."""
    joints = [act.target for act in spec.actuators]
    for act in list(spec.actuators):
        spec.delete(act)
    for name in joints:
        kp, kv, force = joint_gains(name)
        joint = spec.joint(name)
        act = spec.add_actuator()
        act.name = name
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=kp, kv=kv)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.ctrlrange = np.array(joint.range, dtype=np.float64)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = np.array([-force, force])
    return joints


def _add_scene(spec: mujoco.MjSpec) -> None:
    """Floor (checker plane) and a light; the robot file has neither."""
    spec.add_texture(
        name="floor_checker",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        width=300,
        height=300,
        rgb1=[0.2, 0.3, 0.4],
        rgb2=[0.1, 0.2, 0.3],
    )
    material = spec.add_material(name="floor", texrepeat=[5, 5], texuniform=True)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "floor_checker"
    spec.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0, 0, 0.05],
        material="floor",
    )
    spec.worldbody.add_light(
        pos=[0, 0, 3.5], dir=[0, 0, -1], type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    )


def keyframe_qpos(model: mujoco.MjModel) -> np.ndarray:
    """The standing pose as a ``(nq,)`` vector for ``model``."""
    qpos = model.qpos0.copy()
    root = model.body(ROOT_BODY).jntadr[0]
    adr = model.jnt_qposadr[root]
    qpos[adr : adr + 7] = (0.0, 0.0, KEY_PELVIS_HEIGHT, 1.0, 0.0, 0.0, 0.0)
    for j in range(model.njnt):
        if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE:
            qpos[model.jnt_qposadr[j]] = KEY_JOINTS.get(model.joint(j).name, 0.0)
    return qpos


def _check_is_h1(spec: mujoco.MjSpec) -> None:
    """Raise ValueError unless ``spec`` has the bodies and motors this builder edits."""
    missing = [b for b in {body for _, body, _ in _SITES} if spec.body(b) is None]
    if missing or not spec.actuators:
        raise ValueError(
            f"{MODEL_FILE} is not the Menagerie Unitree H1 model (missing bodies "
            f"{sorted(missing)}, {len(spec.actuators)} actuators)"
        )


def build_spec(model_dir: Path) -> mujoco.MjSpec:
    """Load ``model_dir/h1.xml`` and turn it into the task model spec (not yet compiled).

    Raises:
        ValueError: the file does not parse or is not the H1 model.
    """
    spec = mujoco.MjSpec.from_file(str(Path(model_dir) / MODEL_FILE))
    _check_is_h1(spec)
    spec.option.timestep = PHYSICS_DT
    _replace_motors(spec)
    for name, body, pos in _SITES:
        spec.body(body).add_site(name=name, pos=list(pos), size=[0.01, 0.01, 0.01])
    spec.add_sensor(
        name=COM_VELOCITY_SENSOR,
        type=mujoco.mjtSensor.mjSENS_SUBTREELINVEL,
        objtype=mujoco.mjtObj.mjOBJ_BODY,
        objname=ROOT_BODY,
    )
    _add_scene(spec)
    return spec


def build_model(model_dir: Path) -> mujoco.MjModel:
    """Compile the task model, with the ``stand`` keyframe (qpos and matching ctrl)."""
    spec = build_spec(model_dir)
    model = spec.compile()
    qpos = keyframe_qpos(model)
    ctrl = qpos[model.jnt_qposadr[model.actuator_trnid[:, 0]]]
    spec.add_key(name=KEYFRAME, qpos=qpos.tolist(), ctrl=ctrl.tolist())
    return spec.compile()
