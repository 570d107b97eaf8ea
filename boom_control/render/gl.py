"""Choose the OpenGL backend MuJoCo renders offscreen with, before MuJoCo is imported.

``mujoco`` and ``dm_control`` read ``MUJOCO_GL`` once, at import time, so a command that
renders calls :func:`select_backend` first. The choice:

* ``MUJOCO_GL`` set by the user (egl, osmesa or glfw) always wins; it is checked and
  refused with a clear message when it cannot render here;
* with a ``DISPLAY``: ``glfw`` (a hidden window);
* headless: ``egl`` (GPU, or Mesa's software EGL), else ``osmesa`` (software, needs
  ``libosmesa6``).

Each candidate is tried in a child process (one tiny offscreen render), so a broken GL
stack never takes the calling process down. This module imports neither mujoco nor
dm_control.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping

from boom_control.errors import RenderError

BACKENDS = ("egl", "osmesa", "glfw")
HEADLESS = ("egl", "osmesa")
# Values that switch rendering off. boom_control.envs.dmc sets "disable" on headless
# machines when nothing else chose a backend; asking for a rendering overrides it.
DISABLED = ("", "disable", "disabled", "off", "false", "0")

INSTALL_HINT = (
    "install OSMesa for software rendering (`sudo apt-get install libosmesa6`, which "
    "`make setup` does when run as root), or on a machine with a GPU set MUJOCO_GL=egl "
    "(with a display: MUJOCO_GL=glfw)"
)

# One offscreen render of a one-geom model: creating a context alone can succeed on a GL
# stack that fails at the first framebuffer.
_PROBE = """
import importlib, sys
import mujoco
ctx = importlib.import_module("mujoco." + sys.argv[1]).GLContext(16, 16)
ctx.make_current()
model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
mjr = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, mjr)
mjr.free()
ctx.free()
print("ok")
"""

# PyOpenGL announces at INFO that its optional C accelerator is missing; it is optional.
logging.getLogger("OpenGL.acceleratesupport").setLevel(logging.WARNING)

Probe = Callable[[str], tuple[bool, str]]
_probed: dict[str, tuple[bool, str]] = {}


def probe_backend(backend: str) -> tuple[bool, str]:
    """``(works, reason)`` for one backend, tried once per process in a child process."""
    if backend not in _probed:
        env = {**os.environ, "MUJOCO_GL": backend}
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE, backend],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            _probed[backend] = (False, "timed out")
        else:
            ok = proc.returncode == 0 and proc.stdout.strip().endswith("ok")
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            _probed[backend] = (ok, "" if ok else (lines[-1] if lines else "failed"))
    return _probed[backend]


def choose_backend(environ: Mapping[str, str] | None = None, probe: Probe = probe_backend) -> str:
    """The backend to render with (see the module docstring); nothing is changed.

    Raises:
        RenderError: the user's ``MUJOCO_GL`` cannot render, or no candidate works.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("MUJOCO_GL", "").strip().lower()
    if explicit not in DISABLED:
        if explicit not in BACKENDS:
            raise RenderError(
                f"MUJOCO_GL={explicit} cannot render offscreen; use one of "
                f"{', '.join(BACKENDS)}, or unset it to let boom choose"
            )
        ok, reason = probe(explicit)
        if not ok:
            raise RenderError(
                f"MUJOCO_GL={explicit} does not work on this machine ({reason}); unset it to "
                f"let boom choose, or {INSTALL_HINT}"
            )
        return explicit
    candidates = ("glfw", *HEADLESS) if env.get("DISPLAY") else HEADLESS
    failures = []
    for backend in candidates:
        ok, reason = probe(backend)
        if ok:
            return backend
        failures.append(f"{backend}: {reason}")
    raise RenderError(
        f"no OpenGL backend can render offscreen on this machine ({'; '.join(failures)}); "
        f"{INSTALL_HINT}"
    )


def select_backend() -> str:
    """Choose a backend and export it (``MUJOCO_GL``, and ``PYOPENGL_PLATFORM`` for egl /
    osmesa unless already set) for mujoco, dm_control and PyOpenGL to read at import."""
    backend = choose_backend()
    os.environ["MUJOCO_GL"] = backend
    if backend in HEADLESS:
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend
