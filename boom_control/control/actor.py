"""A bundle's planner backend as an evaluation actor: no clock, every plan complete.

:class:`BackendActor` gives a :class:`~boom_control.planner.backends.PlannerBackend` the
``initial_plan_state`` / ``act`` interface of the training agent, so the evaluation and
rendering loops of :mod:`boom_control.train.evaluate` run a shipped bundle exactly like a
checkpoint: the policy action, or a full MPPI plan (all iterations, eval mode) warm-started
by the previous one. This is the offline reference of what ``boom control`` does under a
deadline.
"""

from __future__ import annotations

import numpy as np
import torch

from boom_control.planner.backends import PlannerBackend
from boom_control.planner.mppi import initial_state
from boom_control.planner.types import PlanState


class BackendActor:
    """Acts with ``backend``; planner noise comes from a generator seeded with ``seed``."""

    def __init__(self, backend: PlannerBackend, seed: int = 0) -> None:
        self.backend = backend
        self.generator = torch.Generator(device=backend.device).manual_seed(seed)

    @property
    def device(self) -> torch.device:
        """Where the backend computes (generators passed to :meth:`act` live there)."""
        return self.backend.device

    def initial_plan_state(self) -> PlanState:
        return initial_state(self.backend.consts, self.backend.device)

    @torch.inference_mode()
    def act(
        self,
        obs: np.ndarray,
        state: PlanState,
        eval_mode: bool = True,
        use_planner: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, PlanState]:
        """``obs (O,)`` -> action, mu, std ``(A,)`` float32 and the next plan state.

        Always deterministic (the backends select in eval mode); ``eval_mode`` is accepted
        for the evaluation interface. Without the planner: mu = action, std = zeros.
        Planning noise comes from ``generator`` when given, else from the actor's own.
        """
        b = self.backend
        z = b.encode(torch.as_tensor(obs, dtype=torch.float32, device=b.device).reshape(1, -1))
        if use_planner:
            g = self.generator if generator is None else generator
            action, mu, std, state = b.plan(z, state, b.draw_noise(g))
        else:
            action = b.policy_action(z)
            mu, std = action, torch.zeros_like(action)
        out = torch.stack([action, mu, std]).float().cpu().numpy()
        return out[0], out[1], out[2], state
