"""Offscreen rendering of a task's MuJoCo simulation: frames, videos and image strips.

Modules: :mod:`.gl` (choose the OpenGL backend before mujoco is imported), :mod:`.camera`
(the tracking view), :mod:`.renderer` (RGB frames of an environment), :mod:`.output` (MP4
/ GIF and the labelled image strip), :mod:`.episode` (record one controlled episode).

Only :mod:`.gl` is imported here, so a command can choose the backend with
``from boom_control.render import select_backend`` before anything imports mujoco.
"""

from boom_control.errors import RenderError
from boom_control.render.gl import choose_backend, select_backend

__all__ = ["RenderError", "choose_backend", "select_backend"]
