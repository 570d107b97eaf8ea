"""BOOM learner: world model, MPPI planner, losses and the :class:`Agent` that ties them."""

from boom_control.agent.agent import Agent, discount_for
from boom_control.agent.config import AgentConfig, ModelConfig, PlannerConfig
from boom_control.agent.types import Batch, PlanState
from boom_control.agent.world_model import WorldModel

__all__ = [
    "Agent",
    "AgentConfig",
    "Batch",
    "ModelConfig",
    "PlanState",
    "PlannerConfig",
    "WorldModel",
    "discount_for",
]
