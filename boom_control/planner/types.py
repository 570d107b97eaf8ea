"""The planner's state carried from one plan to the next."""

from __future__ import annotations

from typing import NamedTuple

import torch


class PlanState(NamedTuple):
    """Warm start carried from one planning call to the next.

    Shapes:
        mean: (H, A) previous final mean (already shifted for the next step), zeros at t0.
        valid: () bool tensor; False at the first step of an episode (no warm start).
    """

    mean: torch.Tensor
    valid: torch.Tensor
