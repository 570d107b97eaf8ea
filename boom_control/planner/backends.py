"""Planner backends: one interface, the training planner's MPPI on several runtimes.

Every backend runs the same pure functions of :mod:`boom_control.planner.mppi`
(``plan_init``, ``sample_sequences``, ``refit``, ``plan_select``); they differ only in how
the world model is evaluated:

* ``torch``: the eager :class:`WorldModel` rebuilt from the bundle (optionally with the
  per-iteration evaluation on a bf16 copy of the weights);
* ``torchscript``: the bundle's TorchScript parts, the fused ``rollout_value`` graph for
  the per-iteration evaluation;
* ``onnx``: ONNX Runtime sessions (CPU EP, or CUDA EP with IO binding), fused
  ``rollout_value`` graph;
* ``cudagraph``: eager torch on a GPU with one MPPI iteration captured as a CUDA graph.

An anytime caller drives a plan step by step, with the state explicit::

    z = backend.encode(obs)                   # (1, O) -> (1, L)
    fallback = backend.policy_action(z)       # (A,)
    run = backend.begin(z, state, noise)      # PlanRun
    for i in range(k): run = backend.iterate(run, i)
    action, mu, std, next_state = backend.select(run)

Shapes: H horizon, N samples, P policy trajectories, A action dim, L latent dim.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import NamedTuple

import numpy as np
import torch

from boom_control.planner.cuda_graph import StaticGraph
from boom_control.planner.mppi import (
    IterState,
    PlanConstants,
    PlanNoise,
    draw_noise,
    estimate_value,
    initial_state,
    plan_init,
    plan_select,
    refit,
    sample_sequences,
)
from boom_control.planner.types import PlanState

BACKENDS = ("torch", "torchscript", "onnx", "cudagraph")


class PlanRun(NamedTuple):
    """One planning call in progress: the iteration state and the call's noise."""

    it: IterState
    noise: PlanNoise
    done: int
    """Iterations completed."""


class PlannerBackend:
    """MPPI over a bundle's world model on one runtime (see the module docstring).

    Args:
        model: the planner-facing heads (``encode``, ``next``, ``reward``, ``termination``,
            ``pi``, ``Q``, ``bins``): a :class:`WorldModel` or an export ``PartsModel``.
        consts: planner constants (the bundle's, possibly with samples/iterations changed).
        device: where tensors live.
        bf16: run the per-iteration evaluation on a bf16 copy of the weights (eager only).
    """

    name = "torch"

    def __init__(
        self, model, consts: PlanConstants, device: torch.device, bf16: bool = False
    ) -> None:
        self.model = model
        self.consts = consts
        self.device = device
        self.bf16 = bf16
        self._dtype = torch.bfloat16 if bf16 else torch.float32
        self._value_model = _bf16_copy(model) if bf16 else model

    # -- description -------------------------------------------------------------------
    def describe(self) -> str:
        """Backend, device really used and settings, for the start-up banner."""
        c = self.consts
        dev = self.device_used()
        return (
            f"{self.name}{' +bf16' if self.bf16 else ''} on {dev}; "
            f"{c.num_samples} samples x {c.iterations} iterations, horizon {c.horizon}"
            + ("; whole-plan programs" if self.programs is not None else "")
        )

    def device_used(self) -> str:
        """The device the computation really runs on (checked, not the one asked for)."""
        if self.device.type == "cuda":
            return f"{self.device} ({torch.cuda.get_device_name(self.device)})"
        return f"cpu ({torch.get_num_threads()} threads)"

    # -- planning ----------------------------------------------------------------------
    def draw_noise(self, generator: torch.Generator | None = None) -> PlanNoise:
        """Every random number of one call (see :func:`planner.draw_noise`)."""
        return draw_noise(self.consts, self.device, generator)

    @torch.inference_mode()
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``obs (1, O)`` float32 on :attr:`device` -> ``z (1, L)``."""
        return self.model.encode(obs)

    @torch.inference_mode()
    def policy_action(self, z: torch.Tensor) -> torch.Tensor:
        """Deterministic policy action ``tanh(mean)`` ``(A,)`` for ``z (1, L)`` (the fallback)."""
        eps = torch.zeros(1, self.consts.action_dim, device=z.device)
        return self.model.pi(z, eps)[0][0]

    @torch.inference_mode()
    def predict(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``z (1, L)`` carried through the dynamics by ``actions (m, A)``, oldest first:
        the latent of the state those actions lead to (latency compensation)."""
        for a in actions:
            z = self.model.next(z, a.view(1, -1))
        return z

    @torch.inference_mode()
    def begin(self, z: torch.Tensor, state: PlanState, noise: PlanNoise) -> PlanRun:
        """Policy trajectories and the warm-started distribution; ``z (1, L)``."""
        return PlanRun(plan_init(self.model, z, state, self.consts, noise), noise, 0)

    def evaluate(
        self, it: IterState, actions: torch.Tensor, value_eps: torch.Tensor, heads: torch.Tensor
    ) -> torch.Tensor:
        """Values ``(N,)`` float32 of ``actions (H, N, A)`` from ``it.z``; ``value_eps (N, A)``.

        With ``bf16`` the world model's matmuls run on a bf16 copy of the weights (cast
        once; the reward/Q bins and the accumulated return stay float32)."""
        d = self._dtype
        z, a, eps = it.z.to(d), actions.to(d), value_eps.to(d)
        return estimate_value(self._value_model, z, a, self.consts, eps, heads).float()

    @torch.inference_mode()
    def iterate(self, run: PlanRun, i: int) -> PlanRun:
        """MPPI iteration ``i`` (noise slice ``i``): sample, evaluate, refit."""
        n = run.noise
        actions = sample_sequences(run.it, n.samples[i])
        value = self.evaluate(run.it, actions, n.value_pi[i], n.heads[i])
        it = refit(run.it, actions, value, self.consts)
        return PlanRun(it, n, run.done + 1)

    @torch.inference_mode()
    def select(self, run: PlanRun) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """Eval-mode action ``(A,)``, ``mu (A,)``, ``std (A,)`` and the next plan state."""
        return plan_select(run.it, self.consts, run.noise, eval_mode=True)

    programs = None
    """A whole plan of ``k`` iterations in one call per ``k`` (``programs(k, z, state,
    noise)``, see :mod:`~boom_control.planner.program`), or None: iteration by iteration."""

    def plan_k(
        self, z: torch.Tensor, state: PlanState, noise: PlanNoise, k: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """An eval-mode plan of ``k`` iterations: action, mu, std ``(A,)``, next state."""
        if self.programs is not None:
            return self.programs(k, z, state, noise)
        run = self.begin(z, state, noise)
        for i in range(k):
            run = self.iterate(run, i)
        return self.select(run)

    def plan(
        self, z: torch.Tensor, state: PlanState, noise: PlanNoise
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """A complete plan (every iteration): the offline reference of the loop."""
        return self.plan_k(z, state, noise, self.consts.iterations)

    def sync(self) -> None:
        """Wait for queued device work (GPU backends); timing points call it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def warmup(self, obs_dim: int, rounds: int = 3, plan: bool = True) -> None:
        """First inferences (allocations, graph optimisation, capture) on a zero observation;
        ``plan=False``: the encoder and the policy only (a loop that never plans)."""
        state = initial_state(self.consts, self.device)
        ks = range(1, self.consts.iterations + 1) if self.programs is not None else [None]
        for _ in range(rounds):
            z = self.encode(torch.zeros(1, obs_dim, device=self.device))
            self.policy_action(z)
            for k in ks if plan else ():
                self.plan_k(z, state, self.draw_noise(), k or self.consts.iterations)
        self.sync()


def _bf16_copy(model):
    """A bf16 copy of an eager world model for the evaluation (bins kept in float32)."""
    if not isinstance(model, torch.nn.Module):
        raise ValueError("bf16 needs the eager model (--backend torch or cudagraph)")
    bins = model.bins.float()
    half = copy.deepcopy(model).to(torch.bfloat16).eval()
    half.bins = bins
    return half


class FusedBackend(PlannerBackend):
    """Evaluation by the bundle's fused ``rollout_value`` part (one call per iteration)."""

    def evaluate(self, it, actions, value_eps, heads):
        return self.model.rollout_value(it.z[:1], actions, value_eps, heads)


class TorchScriptBackend(FusedBackend):
    name = "torchscript"


class OnnxBackend(FusedBackend):
    """ONNX Runtime; on CUDA the fused evaluation runs with IO binding (no host copies)."""

    name = "onnx"

    def __init__(self, model, consts, device, bf16=False, session=None, programs=None) -> None:
        super().__init__(model, consts, device, bf16=False)
        self.programs = programs
        self._session = session  # the rollout_value session, bound on CUDA
        if device.type == "cuda" and session is not None:
            self._binding = session.io_binding()
            self._out: torch.Tensor | None = None

    def device_used(self) -> str:
        providers = {s.get_providers()[0] for s in self.model.run.sessions.values()}
        where = "cuda" if providers == {"CUDAExecutionProvider"} else "cpu"
        return f"{where} via {', '.join(sorted(providers))}"

    def evaluate(self, it, actions, value_eps, heads):
        if self.device.type != "cuda" or self._session is None:
            return super().evaluate(it, actions, value_eps, heads)
        return self._evaluate_bound(it.z[:1].contiguous(), actions, value_eps, heads)

    def _evaluate_bound(self, z, actions, value_eps, heads) -> torch.Tensor:
        b, dev = self._binding, self.device
        n = actions.shape[1]
        if self._out is None or self._out.shape[0] != n:
            self._out = torch.empty(n, dtype=torch.float32, device=dev)
        tensors = {
            "z": z.float(),
            "actions": actions.float().contiguous(),
            "value_eps": value_eps.float().contiguous(),
            "heads": heads.long().contiguous(),
        }
        b.clear_binding_inputs()
        for name, t in tensors.items():
            dtype = np.int64 if t.dtype == torch.int64 else np.float32
            b.bind_input(name, "cuda", dev.index or 0, dtype, tuple(t.shape), t.data_ptr())
        b.clear_binding_outputs()
        b.bind_output("value", "cuda", dev.index or 0, np.float32, (n,), self._out.data_ptr())
        torch.cuda.current_stream(dev).synchronize()
        self._session.run_with_iobinding(b)
        return self._out.clone()


class CudaGraphBackend(PlannerBackend):
    """Eager torch on a GPU with one MPPI iteration captured as a CUDA graph
    (:class:`~boom_control.planner.cuda_graph.StaticGraph`).

    The graph is captured at fixed shapes on the first call (during warm-up); every
    iteration copies its inputs into the static tensors and replays it.
    """

    name = "cudagraph"

    def __init__(self, model, consts, device, bf16=False) -> None:
        if device.type != "cuda":
            raise ValueError("the cudagraph backend needs a CUDA device (--device cuda)")
        super().__init__(model, consts, device, bf16)
        self._graph = StaticGraph(self._step)

    def _step(self, *tensors: torch.Tensor) -> IterState:
        it, (samples, value_eps, heads) = IterState(*tensors[:6]), tensors[6:]
        actions = sample_sequences(it, samples)
        value = self.evaluate(it, actions, value_eps, heads)
        return refit(it, actions, value, self.consts)

    @torch.inference_mode()
    def iterate(self, run: PlanRun, i: int) -> PlanRun:
        n = run.noise
        out = self._graph(*run.it, n.samples[i], n.value_pi[i], n.heads[i])
        return PlanRun(out, n, run.done + 1)


def override_constants(
    consts: PlanConstants,
    samples: int | None,
    iterations: int | None,
    pi_trajs: int | None = None,
) -> PlanConstants:
    """``consts`` with another number of samples and/or iterations (elites and policy
    trajectories shrunk to fit: at most half the samples each), or of policy trajectories
    (``pi_trajs``, 1 .. samples - 1)."""
    n = samples or consts.num_samples
    if n < 4:
        raise ValueError(f"--samples must be >= 4, got {n}")
    p = min(consts.num_pi_trajs, n // 2) if pi_trajs is None else pi_trajs
    if not 1 <= p < n:
        raise ValueError(f"policy trajectories must be between 1 and {n - 1}, got {p}")
    return dataclasses.replace(
        consts,
        num_samples=n,
        num_pi_trajs=p,
        num_elites=min(consts.num_elites, n // 2),
        iterations=iterations or consts.iterations,
    )
