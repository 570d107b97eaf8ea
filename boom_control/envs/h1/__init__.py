"""Embedded Unitree H1 tasks ``h1:stand``, ``h1:walk``, ``h1:run``.

Humanoid-Bench's reward definitions on the MuJoCo Menagerie H1 model (primitive collision
shapes, no hands), so these scores are *not* Humanoid-Bench scores.

Modules: :mod:`.assets` (where the model files are), :mod:`.model` (MjSpec model builder),
:mod:`.task` (observation / reward / termination from a given state), :mod:`.env` (the
simulation loop behind the :class:`~boom_control.envs.base.Env` interface).
"""

from boom_control.envs.h1.assets import find_model_dir
from boom_control.envs.h1.env import H1_TASKS, H1Env, keyframe_action, position_mapping
from boom_control.envs.h1.model import build_model, build_spec
from boom_control.envs.h1.task import H1Task, Measurements

__all__ = [
    "H1_TASKS",
    "H1Env",
    "H1Task",
    "Measurements",
    "build_model",
    "build_spec",
    "find_model_dir",
    "keyframe_action",
    "position_mapping",
]
