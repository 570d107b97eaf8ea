"""Task layer: every environment family behind one interface and one factory."""

from boom_control.envs.base import (
    ActionError,
    ActionMapping,
    Env,
    EnvSpec,
    EpisodeLostError,
    RenderTarget,
    TaskError,
)
from boom_control.envs.contract import ObservationContract, ObservationError, ObsField
from boom_control.envs.registry import list_tasks, make_env, split_task_id

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
