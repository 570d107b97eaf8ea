"""Offscreen RGB frames of a task's live MuJoCo simulation.

The GL context comes from the backend chosen by :mod:`boom_control.render.gl`
(``mujoco.egl``, ``mujoco.osmesa`` or ``mujoco.glfw``), created here rather than through
``mujoco.Renderer``, so rendering works even when mujoco was imported before the backend
was chosen (with rendering switched off).
"""

from __future__ import annotations

import importlib

import mujoco
import numpy as np

from boom_control.envs.base import Env, RenderTarget
from boom_control.errors import RenderError
from boom_control.render.camera import choose_camera
from boom_control.render.gl import choose_backend

MIN_SIZE, MAX_SIZE = 16, 4096  # pixels per side
# GL_RENDERER names of Mesa's software rasterisers (OSMesa, and EGL without a GPU).
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast")


def check_size(width: int, height: int) -> None:
    """Refuse a frame size outside ``MIN_SIZE..MAX_SIZE`` pixels per side."""
    for side, value in (("width", width), ("height", height)):
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise RenderError(f"{side} must be {MIN_SIZE}..{MAX_SIZE} pixels, got {value}")


def software_renderer() -> bool:
    """Whether the current GL context rasterises on the CPU (read through PyOpenGL)."""
    try:
        from OpenGL import GL
    except ImportError:  # pragma: no cover - a dependency of dm_control
        return False
    name = (GL.glGetString(GL.GL_RENDERER) or b"").decode(errors="replace").lower()
    return any(s in name for s in SOFTWARE_RENDERERS)


class FrameRenderer:
    """Draws ``target`` (a model and its live data) through one camera.

    Args:
        target: the model and data to draw; every :meth:`render` reads the current state.
        width, height: frame size in pixels, also beyond the model's own offscreen size
            (the buffer is made large enough; the model is left unchanged).
        camera: name of a model camera; None for the tracking view (see
            :func:`~boom_control.render.camera.choose_camera`).
        backend: ``egl``, ``osmesa`` or ``glfw``; None chooses one
            (:func:`~boom_control.render.gl.choose_backend`).
        fast: draw without shadows and multisampling (about 10x faster on a CPU
            rasteriser); None: only when the GL renderer is software.
    """

    def __init__(
        self,
        target: RenderTarget,
        width: int = 480,
        height: int = 360,
        camera: str | None = None,
        backend: str | None = None,
        fast: bool | None = None,
    ) -> None:
        check_size(width, height)
        model, data = target
        self.model, self.data = model, data
        self.width, self.height = width, height
        self.camera = choose_camera(model, data, camera)
        self.backend = backend or choose_backend()
        module = importlib.import_module(f"mujoco.{self.backend}")
        self._gl = module.GLContext(width, height)
        self._gl.make_current()
        self.fast = software_renderer() if fast is None else fast
        # The offscreen buffer is sized from the model's visual settings when the context
        # is made; they are changed for that moment only and the model is left as it was.
        glb, quality = model.vis.global_, model.vis.quality
        saved = glb.offwidth, glb.offheight, quality.offsamples
        glb.offwidth, glb.offheight = max(glb.offwidth, width), max(glb.offheight, height)
        if self.fast:
            quality.offsamples = 0
        try:
            self._mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        finally:
            glb.offwidth, glb.offheight, quality.offsamples = saved
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._scene = mujoco.MjvScene(model, maxgeom=10_000)
        if self.fast:
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._option = mujoco.MjvOption()
        self._viewport = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.empty((height, width, 3), dtype=np.uint8)

    def render(self) -> np.ndarray:
        """The current state as a new ``(height, width, 3)`` uint8 RGB frame, top row first."""
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self.model,
            self.data,
            self._option,
            None,
            self.camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        mujoco.mjr_render(self._viewport, self._scene, self._mjr)
        mujoco.mjr_readPixels(self._pixels, None, self._viewport, self._mjr)
        return np.flipud(self._pixels).copy()

    def close(self) -> None:
        """Free the GL resources (idempotent)."""
        if self._mjr is not None:
            self._gl.make_current()
            self._mjr.free()
            self._mjr = None
            self._gl.free()

    def __enter__(self) -> FrameRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def env_renderer(
    env: Env, width: int = 480, height: int = 360, camera: str | None = None
) -> FrameRenderer:
    """A :class:`FrameRenderer` of a task environment's simulation.

    Raises:
        RenderError: the environment has no local simulation (a bridge or hardware task).
    """
    target = env.render_target()
    if target is None:
        raise RenderError(
            f"{env.spec.task_id} has no local MuJoCo simulation to render; render the task "
            "itself (e.g. boom eval with the bundle, which builds the task locally)"
        )
    return FrameRenderer(target, width, height, camera)
