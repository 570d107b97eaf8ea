"""MPPI over a learner's own torch world model, whose weights change after every update.

The training agent acts through :class:`LearnerPlanner`; deployment plans through the
:mod:`~boom_control.planner.backends` over a bundle's fixed weights. Both run the same pure
functions of :mod:`~boom_control.planner.mppi`; this class adds the speed settings of
:class:`PlannerConfig` that a learner needs:

* ``compile``: the iteration compiled with torch.compile;
* ``cuda_graph`` (CUDA): the iteration replayed from a CUDA graph;
* ``program`` (CPU, fp32): the whole plan as one ONNX Runtime call over the live weights
  (:class:`~boom_control.planner.bound_program.BoundProgram`);
* ``threads`` (CPU): each iteration's rollouts split over worker threads, which make room
  when an update runs beside the planner (:meth:`LearnerPlanner.beside`);
* ``precision="bf16"``: autocast, over matmul weights cast once per update
  (:class:`~boom_control.model.cast_weights.CastWeights`).

Shapes: A action dim, L latent dim.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch

from boom_control.device import precision_context, usable_cpus
from boom_control.model.cast_weights import CastWeights
from boom_control.planner.bound_program import BoundProgram
from boom_control.planner.compiled import compile_fn
from boom_control.planner.config import PlannerConfig
from boom_control.planner.cuda_graph import GraphedIteration
from boom_control.planner.mppi import (
    IterState,
    PlanConstants,
    PlanModel,
    draw_noise,
    emit_action,
    estimate_value,
    initial_state,
    plan,
    plan_iteration,
    refit,
)
from boom_control.planner.split import CoreGate, SplitIteration
from boom_control.planner.types import PlanState

log = logging.getLogger(__name__)


class LearnerPlanner:
    """The planner of a training agent.

    Args:
        cfg: planner settings (``precision`` and ``compile`` already resolved: ``fp32`` or
            ``bf16``, a bool).
        action_dim, gamma, num_q, terminates: what :meth:`PlanConstants.build` needs.
        device: where the model and the planner's tensors live.
        model: the world model to plan with (see :meth:`bind`).
    """

    def __init__(
        self,
        cfg: PlannerConfig,
        action_dim: int,
        gamma: float,
        num_q: int,
        device: torch.device,
        terminates: bool,
        model: PlanModel,
    ) -> None:
        if cfg.precision not in ("fp32", "bf16"):
            raise ValueError(
                f"planner precision must be resolved to fp32 or bf16, got {cfg.precision!r}"
            )
        if not isinstance(cfg.compile, bool):
            raise ValueError(f"planner compile must be resolved to a bool, got {cfg.compile!r}")
        self.cfg = cfg
        self.device = torch.device(device)
        self.consts = PlanConstants.build(cfg, action_dim, gamma, num_q, self.device, terminates)
        self._precision = precision_context(cfg.precision, self.device, cache=not cfg.cuda_graph)
        self._cpus = usable_cpus()
        self.gate = CoreGate(opened=self._cpus >= cfg.threads)
        """Closed: the worker threads take no rollouts (see :meth:`beside`)."""
        self.uses_program = self._wants_program()
        self.iteration = self._make_iteration()
        self.program: BoundProgram | None = None
        self.bind(model)

    def _wants_program(self) -> bool:
        """Whether plans run as one ONNX Runtime call (``program``, see PlannerConfig)."""
        cfg = self.cfg
        fits = self.device.type == "cpu" and cfg.precision == "fp32"
        if cfg.program == "onnx" and not fits:
            raise ValueError(
                "planner.program=onnx plans on a CPU in fp32; this planner runs on "
                f"{self.device.type} in {cfg.precision} (use program=torch or auto)"
            )
        # auto: on one thread, where it pays (on two, ONNX Runtime's pool without spinning
        # is slower than torch's own, BENCHMARKS.md)
        single = cfg.threads == 1 and torch.get_num_threads() == 1
        wanted = cfg.program == "onnx" or (cfg.program == "auto" and fits and single)
        if wanted and cfg.compile:
            log.info("planner: the whole plan runs in ONNX Runtime; planner.compile is unused")
        return wanted

    def _make_iteration(self) -> Callable[..., IterState]:
        """One MPPI iteration as configured; each device option is ignored on the other."""
        cfg = self.cfg
        if self.uses_program:  # the program holds the whole plan
            return plan_iteration
        maybe_compile = compile_fn if cfg.compile else (lambda fn: fn)
        if cfg.cuda_graph and self.device.type == "cuda":
            return GraphedIteration(maybe_compile(plan_iteration))
        if cfg.threads == 1 or self.device.type != "cpu":
            return maybe_compile(plan_iteration)
        return SplitIteration(
            cfg.threads,
            value_fn=maybe_compile(estimate_value),
            refit_fn=maybe_compile(refit),
            context=self._precision,
            gate=self.gate,
        )

    def bind(self, model: PlanModel) -> None:
        """Plan with ``model`` from now on (bf16: over its matmul weights, kept current)."""
        self.model = model
        self.cast = CastWeights(model) if self.cfg.precision == "bf16" else None
        if self.uses_program:
            self.program = BoundProgram(model, self.consts, self.cfg.threads)

    def initial_state(self) -> PlanState:
        """The warm start of an episode's first plan."""
        return initial_state(self.consts, self.device)

    def plan(
        self,
        z: torch.Tensor,
        state: PlanState,
        eval_mode: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """One full plan from ``z (1, L)``.

        Args:
            state: warm start (:meth:`initial_state` at the start of an episode).
            eval_mode: act with the refitted mean instead of a sample around it.
            generator: draw the plan's noise from it (else from torch's global RNG).
        Returns:
            action (A,), mu (A,), std (A,) and the next plan state.
        """
        if self.program is not None:
            noise = draw_noise(self.consts, self.device, generator)
            mu, std, next_state = self.program(z, state, noise)
            return emit_action(mu, std, noise.action, eval_mode), mu, std, next_state
        noise = None if generator is None else draw_noise(self.consts, self.device, generator)
        model = self.model if self.cast is None else self.cast.model()
        with self._precision():
            return plan(model, z, state, self.consts, eval_mode, noise, self.iteration)

    def beside(self, threads: int) -> contextlib.AbstractContextManager:
        """Context for work on ``threads`` CPU threads running beside the planner (an
        update): the rollouts stay on the planning thread unless cores remain for both."""
        if self._cpus < self.cfg.threads + threads:
            return self.gate.closed()
        return contextlib.nullcontext()

    def close(self) -> None:
        """Stop the worker threads, if any (no plan afterwards)."""
        if isinstance(self.iteration, SplitIteration):
            self.iteration.close()
