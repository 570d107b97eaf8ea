"""MPPI in the world model's latent space, warm-started by the policy and the last plan.

The planner is a set of pure functions over explicit state:

    consts = PlanConstants.build(cfg, action_dim, gamma, num_q, device)
    action, mu, std, state = plan(model, z, state, consts, eval_mode)

``plan`` composes ``plan_init`` -> ``plan_iteration`` x I -> ``plan_select``; an anytime
controller can call the iterations one by one. All randomness is drawn up front into a
:class:`PlanNoise` (from torch's global RNG unless given), so two backends can be compared
on the same noise.

Shapes: H horizon, N samples, P policy trajectories, E elites, A action dim, L latent dim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch

from boom_control.model.ops import two_hot_inv
from boom_control.planner.config import PlannerConfig
from boom_control.planner.types import PlanState


class PlanModel(Protocol):
    """What the planner needs from a world model (see :class:`WorldModel`)."""

    bins: torch.Tensor

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor: ...
    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor: ...
    def termination(self, z: torch.Tensor) -> torch.Tensor: ...
    def pi(self, z: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]: ...
    def Q(self, z, a, return_type="min", target=False, heads=None, detach=False): ...


@dataclass(frozen=True)
class PlanConstants:
    """Planner settings resolved once (no config lookups in the hot path)."""

    horizon: int
    iterations: int
    num_samples: int
    num_elites: int
    num_pi_trajs: int
    num_q: int
    action_dim: int
    temperature: float
    min_std: float
    max_std: float
    discounts: torch.Tensor
    """``(H,)`` ``gamma^t`` for t = 0..H-1."""
    terminal_discount: float
    """``gamma^H`` on the bootstrap value."""
    terminates: bool
    """Stop accumulating reward after a predicted termination."""

    @staticmethod
    def build(
        cfg: PlannerConfig,
        action_dim: int,
        gamma: float,
        num_q: int,
        device: torch.device,
        terminates: bool = False,
    ) -> PlanConstants:
        """Resolve ``cfg`` for an action dimension and discount."""
        horizon = cfg.horizon
        return PlanConstants(
            horizon=horizon,
            iterations=cfg.iterations_for(action_dim),
            num_samples=cfg.num_samples,
            num_elites=cfg.num_elites,
            num_pi_trajs=cfg.num_pi_trajs,
            num_q=num_q,
            action_dim=action_dim,
            temperature=cfg.temperature,
            min_std=cfg.min_std,
            max_std=cfg.max_std,
            discounts=gamma ** torch.arange(horizon, dtype=torch.float32, device=device),
            terminal_discount=float(gamma**horizon),
            terminates=terminates,
        )


class PlanNoise(NamedTuple):
    """All random draws of one planning call.

    Shapes (I iterations):
        pi_traj: (H, P, A)       policy noise of the P policy trajectories
        samples: (I, H, N-P, A)  standard-normal noise of the sampled sequences
        value_pi: (I, N, A)      policy noise for the bootstrap action at z_H
        heads: (I, 2) long       the two Q heads read in each iteration
        select: (E,)             Gumbel noise choosing the elite to execute
        action: (A,)             standard-normal exploration noise (training action)
    """

    pi_traj: torch.Tensor
    samples: torch.Tensor
    value_pi: torch.Tensor
    heads: torch.Tensor
    select: torch.Tensor
    action: torch.Tensor


class IterState(NamedTuple):
    """State between MPPI iterations.

    Shapes:
        z: (N, L) the current latent repeated for every sample
        pi_actions: (H, P, A) policy sequences (fixed across iterations)
        mean, std: (H, A) sampling distribution
        elite_actions: (H, E, A) and score: (E,) of the latest iteration
    """

    z: torch.Tensor
    pi_actions: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    elite_actions: torch.Tensor
    score: torch.Tensor


def initial_state(consts: PlanConstants, device: torch.device) -> PlanState:
    """Plan state at the first step of an episode (no warm start)."""
    return PlanState(
        mean=torch.zeros(consts.horizon, consts.action_dim, device=device),
        valid=torch.zeros((), dtype=torch.bool, device=device),
    )


def draw_noise(
    consts: PlanConstants, device: torch.device, generator: torch.Generator | None = None
) -> PlanNoise:
    """Draw every random number of one planning call (from ``generator`` if given, else
    from torch's global RNG; a generator seeded like the global RNG gives the same draws)."""
    h, a, n, p = consts.horizon, consts.action_dim, consts.num_samples, consts.num_pi_trajs
    it, g = consts.iterations, generator
    uniform = torch.rand(consts.num_elites, device=device, generator=g).clamp(1e-20, 1.0 - 1e-7)
    return PlanNoise(
        pi_traj=torch.randn(h, p, a, device=device, generator=g),
        samples=torch.randn(it, h, n - p, a, device=device, generator=g),
        value_pi=torch.randn(it, n, a, device=device, generator=g),
        heads=torch.rand(it, consts.num_q, device=device, generator=g).argsort(dim=-1)[:, :2],
        select=-torch.log(-torch.log(uniform)),
        action=torch.randn(a, device=device, generator=g),
    )


def estimate_value(
    model: PlanModel,
    z: torch.Tensor,
    actions: torch.Tensor,
    consts: PlanConstants,
    value_eps: torch.Tensor,
    heads: torch.Tensor,
) -> torch.Tensor:
    """Discounted model return plus bootstrap ``gamma^H Q_avg(z_H, pi(z_H))``.

    Args:
        z: (N, L) start latents; actions: (H, N, A); value_eps: (N, A); heads: (2,).
    Returns:
        (N,) values with NaN replaced by 0.
    """
    ret = torch.zeros(z.shape[0], 1, device=z.device)
    alive = torch.ones_like(ret)
    # ``.float()`` keeps the value arithmetic in fp32 under bf16 autocast (no-op otherwise).
    for t in range(consts.horizon):
        reward = two_hot_inv(model.reward(z, actions[t]).float(), model.bins)
        z = model.next(z, actions[t])
        ret = ret + consts.discounts[t] * alive * reward
        if consts.terminates:
            alive = alive * (model.termination(z) <= 0).float()
    action, _ = model.pi(z, value_eps)
    q = model.Q(z, action, return_type="avg", heads=heads).float()
    ret = ret + consts.terminal_discount * alive * q
    return torch.nan_to_num(ret.squeeze(-1), nan=0.0)


def plan_init(
    model: PlanModel, z: torch.Tensor, state: PlanState, consts: PlanConstants, noise: PlanNoise
) -> IterState:
    """Roll the policy trajectories and set the warm-started sampling distribution.

    Args:
        z: (1, L) latent of the current observation.
        state: previous plan state; its ``mean`` (H, A) is already shifted (zeros at t0).
    """
    p = consts.num_pi_trajs
    z_pi = z.expand(p, -1)
    pi_actions = []
    for t in range(consts.horizon):
        action, _ = model.pi(z_pi, noise.pi_traj[t])
        pi_actions.append(action.float())
        if t < consts.horizon - 1:
            z_pi = model.next(z_pi, action)
    h, a, e = consts.horizon, consts.action_dim, consts.num_elites
    mean = state.mean * state.valid.to(state.mean.dtype)
    return IterState(
        z=z.expand(consts.num_samples, -1),
        pi_actions=torch.stack(pi_actions),
        mean=mean,
        std=torch.full((h, a), consts.max_std, device=z.device),
        elite_actions=torch.zeros(h, e, a, device=z.device),
        score=torch.full((e,), 1.0 / e, device=z.device),
    )


def plan_iteration(
    model: PlanModel,
    it: IterState,
    consts: PlanConstants,
    samples_eps: torch.Tensor,
    value_eps: torch.Tensor,
    heads: torch.Tensor,
) -> IterState:
    """One MPPI iteration: sample, evaluate, refit mean/std on the elites.

    Args:
        samples_eps: (H, N-P, A); value_eps: (N, A); heads: (2,) (slices of :class:`PlanNoise`).
    """
    actions = sample_sequences(it, samples_eps)
    value = estimate_value(model, it.z, actions, consts, value_eps, heads)
    return refit(it, actions, value, consts)


def sample_sequences(it: IterState, samples_eps: torch.Tensor) -> torch.Tensor:
    """The N action sequences of an iteration ``(H, N, A)``: the P policy sequences, then
    ``clamp(mean + std * samples_eps, -1, 1)`` for ``samples_eps (H, N-P, A)``."""
    sampled = (it.mean.unsqueeze(1) + it.std.unsqueeze(1) * samples_eps).clamp(-1, 1)
    return torch.cat([it.pi_actions, sampled], dim=1)


def refit(
    it: IterState, actions: torch.Tensor, value: torch.Tensor, consts: PlanConstants
) -> IterState:
    """Refit mean/std on the top-E sequences of ``actions (H, N, A)`` by ``value (N,)``."""
    elite_value, elite_idx = torch.topk(value, consts.num_elites)
    elite_actions = actions.index_select(1, elite_idx)
    score = torch.softmax(consts.temperature * (elite_value - elite_value.max()), dim=0)
    weights = score.view(1, -1, 1)
    mean = (weights * elite_actions).sum(dim=1)
    var = (weights * (elite_actions - mean.unsqueeze(1)).pow(2)).sum(dim=1)
    std = var.sqrt().clamp(consts.min_std, consts.max_std)
    return IterState(it.z, it.pi_actions, mean, std, elite_actions, score)


def plan_select(
    it: IterState, consts: PlanConstants, noise: PlanNoise, eval_mode: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
    """Pick an elite by sampling from the scores and emit the action.

    Returns:
        action (A,) (``mu`` in eval mode, else ``clamp(mu + std * noise, -1, 1)``), mu (A,)
        the chosen elite's first action, std (A,) the final std of the first step, and the
        next plan state (final mean shifted left, last step 0).
    """
    idx = torch.argmax(torch.log(it.score) + noise.select)
    mu = it.elite_actions[0].index_select(0, idx.view(1)).squeeze(0)
    std = it.std[0]
    action = emit_action(mu, std, noise.action, eval_mode)
    valid = torch.ones((), dtype=torch.bool, device=it.mean.device)
    return action, mu, std, advance(PlanState(mean=it.mean, valid=valid), 1)


def emit_action(
    mu: torch.Tensor, std: torch.Tensor, explore: torch.Tensor, eval_mode: bool
) -> torch.Tensor:
    """The action sent: ``mu (A,)`` in eval mode, else ``clamp(mu + std * explore, -1, 1)``
    with ``explore (A,)`` the plan's standard-normal exploration noise."""
    scale = 0.0 if eval_mode else 1.0
    return (mu + scale * std * explore).clamp(-1, 1)


def advance(state: PlanState, steps: int) -> PlanState:
    """The warm start ``steps`` control steps later: ``mean (H, A)`` shifted left by
    ``steps`` with zeros after it; nothing of it is left (not valid) once ``steps >= H``."""
    if steps <= 0:
        return state
    if steps >= state.mean.shape[0]:
        return PlanState(torch.zeros_like(state.mean), torch.zeros_like(state.valid))
    tail = torch.zeros_like(state.mean[:steps])
    return PlanState(torch.cat([state.mean[steps:], tail], dim=0), state.valid)


def plan(
    model: PlanModel,
    z: torch.Tensor,
    state: PlanState,
    consts: PlanConstants,
    eval_mode: bool,
    noise: PlanNoise | None = None,
    iteration: Callable[..., IterState] = plan_iteration,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
    """Full MPPI planning call.

    Args:
        z: (1, L) latent of the current observation.
        state: warm start from the previous call (:func:`initial_state` at t0).
        noise: pre-drawn randomness; drawn with :func:`draw_noise` if None.
        iteration: :func:`plan_iteration` or a compiled version of it.
    Returns:
        action (A,), mu (A,), std (A,), next state.
    """
    if noise is None:
        noise = draw_noise(consts, z.device)
    it = plan_init(model, z, state, consts, noise)
    for i in range(consts.iterations):
        it = iteration(model, it, consts, noise.samples[i], noise.value_pi[i], noise.heads[i])
    return plan_select(it, consts, noise, eval_mode)
