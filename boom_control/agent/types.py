"""Tensors exchanged between the replay buffer, the learner and the planner."""

from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """A batch of sub-sequences of length H+1 sampled inside episodes.

    Shapes (H = planner horizon, B = batch size, A = action dim, O = obs dim):
        obs:        (H+1, B, O)  o_0 .. o_H
        action:     (H, B, A)    a_t taken after o_t
        mu:         (H, B, A)    planner mean (chosen elite's first action) at o_t
        reward:     (H, B)       r_t received after a_t
        terminated: (H, B)       1.0 where o_{t+1} is a terminal state (a fall), else 0.0
    """

    obs: torch.Tensor
    action: torch.Tensor
    mu: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor


class PlanState(NamedTuple):
    """Warm start carried from one planning call to the next.

    Shapes:
        mean: (H, A) previous final mean (already shifted for the next step), zeros at t0.
        valid: () bool tensor; False at the first step of an episode (no warm start).
    """

    mean: torch.Tensor
    valid: torch.Tensor
