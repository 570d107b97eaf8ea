"""Which camera looks at the robot.

In order: a model camera named by the caller; the model's own tracking camera (mode
``track`` / ``trackcom``, as the dm_control walkers and humanoids have); a tracking camera
that follows the floating base (the pelvis / torso) of a robot without one (H1); the
model's first camera; MuJoCo's default free view of the whole model.
"""

from __future__ import annotations

import mujoco
import numpy as np

from boom_control.errors import RenderError

TRACKING_MODES = (mujoco.mjtCamLight.mjCAMLIGHT_TRACK, mujoco.mjtCamLight.mjCAMLIGHT_TRACKCOM)
# Tracking view of a floating-base robot: from the side and a little above, far enough
# that the whole body (about the model's extent) fits in a 45-degree field of view.
TRACK_DISTANCE = 1.6  # x model.stat.extent
TRACK_ELEVATION = -15.0  # degrees
TRACK_AZIMUTH = 90.0  # degrees: looking along +y, the robot walking to the right


def tracked_body(model: mujoco.MjModel) -> int | None:
    """Id of the body a tracking camera follows: the floating base (the first body with a
    free joint; the camera aims at the centre of mass of everything attached to it); None
    for a fixed-base model."""
    free = np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
    return int(model.jnt_bodyid[free[0]]) if free.size else None


def fixed_camera(model: mujoco.MjModel, camera_id: int) -> mujoco.MjvCamera:
    """A view through model camera ``camera_id``."""
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
    cam.fixedcamid = camera_id
    return cam


def choose_camera(
    model: mujoco.MjModel, data: mujoco.MjData, name: str | None = None
) -> mujoco.MjvCamera:
    """The camera for ``model`` (see the module docstring); ``name`` picks a model camera.

    Raises:
        RenderError: ``name`` is not a camera of the model.
    """
    if name is not None:
        cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cid < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise RenderError(
                f"the model has no camera {name!r}; its cameras: {', '.join(names) or 'none'} "
                "(leave --camera out for the tracking view)"
            )
        return fixed_camera(model, cid)
    for i in range(model.ncam):
        if model.cam_mode[i] in TRACKING_MODES:
            return fixed_camera(model, i)
    body = tracked_body(model)
    if body is not None:
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        cam.trackbodyid = body
        cam.distance = TRACK_DISTANCE * model.stat.extent
        cam.elevation = TRACK_ELEVATION
        cam.azimuth = TRACK_AZIMUTH
        cam.lookat[:] = data.subtree_com[body]
        return cam
    if model.ncam:
        return fixed_camera(model, 0)
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    return cam
