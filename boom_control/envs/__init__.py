"""Task layer: every environment family behind one interface and one factory."""

from boom_control.envs.base import (
    ActionMapping,
    Env,
    EnvSpec,
    RenderTarget,
)
from boom_control.envs.contract import ObservationContract, ObsField
from boom_control.envs.registry import list_tasks, make_env, split_task_id
from boom_control.errors import ActionError, EpisodeLostError, ObservationError, TaskError

__all__ = [
    "ActionError",
    "ActionMapping",
    "Env",
    "EnvSpec",
    "EpisodeLostError",
    "ObsField",
    "ObservationContract",
    "ObservationError",
    "RenderTarget",
    "TaskError",
    "list_tasks",
    "make_env",
    "split_task_id",
]
