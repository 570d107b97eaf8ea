"""Training losses: TD-MPC2's world-model loss and BOOM's policy loss.

Both functions are pure: they take the model, a batch and resolved constants, and return
the loss with detached diagnostics. Optimiser steps live in :class:`Agent`.

Shapes: H horizon, B batch, O obs dim, A action dim, L latent dim, Q heads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from boom_control.model.ops import gaussian_log_prob, soft_ce
from boom_control.model.world_model import WorldModel
from boom_control.train.buffer import Batch
from boom_control.train.config import AgentConfig


@dataclass(frozen=True)
class LossConstants:
    """Loss settings resolved once for a task (no config lookups per update)."""

    gamma: float
    rho_pows: torch.Tensor
    """``(H,)`` ``rho^t``."""
    consistency_coef: float
    reward_coef: float
    value_coef: float
    termination_coef: float
    terminates: bool
    entropy_coef: float
    scale_lerp: float
    align_weight: float
    """``A * lambda`` in front of the alignment term (0 = TD-MPC2's policy loss)."""
    align_temperature: float
    align_min_std: float
    align_scale_gate: float
    q_read: str
    vmin: float
    vmax: float

    @staticmethod
    def build(
        cfg: AgentConfig,
        model: WorldModel,
        horizon: int,
        gamma: float,
        device: torch.device,
    ) -> LossConstants:
        """Resolve ``cfg`` for a model (action dim, termination, bins) and horizon."""
        action_dim = model.action_dim
        return LossConstants(
            gamma=gamma,
            rho_pows=cfg.rho ** torch.arange(horizon, dtype=torch.float32, device=device),
            consistency_coef=cfg.consistency_coef,
            reward_coef=cfg.reward_coef,
            value_coef=cfg.value_coef,
            termination_coef=cfg.termination_coef,
            terminates=model.terminates,
            entropy_coef=cfg.entropy_coef,
            scale_lerp=cfg.scale_lerp,
            align_weight=action_dim * cfg.lambda_for(action_dim),
            align_temperature=cfg.align_temperature,
            align_min_std=cfg.align_min_std,
            align_scale_gate=cfg.align_scale_gate,
            q_read=cfg.q_read,
            vmin=model.cfg.vmin,
            vmax=model.cfg.vmax,
        )


@torch.no_grad()
def td_target(
    model: WorldModel,
    next_z: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    c: LossConstants,
) -> torch.Tensor:
    """``r_t + gamma * (1 - terminated) * Q_min_target(z'_{t+1}, pi(z'_{t+1}))``.

    The termination mask applies only to models built with ``terminates``.

    Args:
        next_z: (H, B, L) online encodings of o_1..o_H; reward, terminated: (H, B).
    Returns:
        (H, B, 1).
    """
    next_action, _ = model.pi(next_z)
    next_q = model.Q(next_z, next_action, return_type="min", target=True)
    bootstrap = 1.0 - terminated.unsqueeze(-1) * float(c.terminates)
    return reward.unsqueeze(-1) + c.gamma * bootstrap * next_q


def world_model_loss(
    model: WorldModel, batch: Batch, c: LossConstants
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Consistency + reward + value (+ termination) loss of one batch.

    Args:
        batch: obs (H+1, B, O), action (H, B, A), reward (H, B), terminated (H, B).
    Returns:
        total loss (scalar), the rollout latents ``z_0..z_{H-1}`` (H, B, L) detached (for
        the policy loss), and detached scalar diagnostics.
    """
    horizon = batch.action.shape[0]
    reward = batch.reward.unsqueeze(-1)
    with torch.no_grad():
        next_z = model.encode(batch.obs[1:])
        td = td_target(model, next_z, batch.reward, batch.terminated, c)

    z = model.encode(batch.obs[0])
    zs = [z]
    consistency = z.new_zeros(())
    for t in range(horizon):
        z = model.next(z, batch.action[t])
        consistency = consistency + c.rho_pows[t] * F.mse_loss(z.float(), next_z[t].float())
        zs.append(z)
    latents = torch.stack(zs)  # (H+1, B, L)
    rollout = latents[:-1]

    # ``.float()``: losses in fp32 under bf16 autocast (no-op otherwise)
    reward_logits = model.reward(rollout, batch.action).float()
    reward_ce = soft_ce(reward_logits, reward, c.vmin, c.vmax)  # (H, B, 1)
    reward_loss = (c.rho_pows * reward_ce.mean(dim=(1, 2))).sum()
    q_logits = model.Q(rollout, batch.action, return_type="all").float()  # (Q, H, B, bins)
    num_q = q_logits.shape[0]
    value_ce = soft_ce(q_logits, td.unsqueeze(0).expand(num_q, -1, -1, -1), c.vmin, c.vmax)
    value_loss = (c.rho_pows * value_ce.mean(dim=(2, 3)).sum(0)).sum()

    consistency = consistency / horizon
    reward_loss = reward_loss / horizon
    value_loss = value_loss / (horizon * num_q)
    total = (
        c.consistency_coef * consistency + c.reward_coef * reward_loss + c.value_coef * value_loss
    )
    info = {
        "consistency_loss": consistency.detach(),
        "reward_loss": reward_loss.detach(),
        "value_loss": value_loss.detach(),
    }
    if c.terminates:
        term_logit = model.termination(latents[1:]).squeeze(-1).float()  # (H, B)
        term_loss = F.binary_cross_entropy_with_logits(term_logit, batch.terminated)
        total = total + c.termination_coef * term_loss
        info["termination_loss"] = term_loss.detach()
    info["world_model_loss"] = total.detach()
    return total, rollout.detach(), info


def update_scale(scale: torch.Tensor, q0: torch.Tensor, rate: float) -> torch.Tensor:
    """Running Q scale: ``lerp(S, max(P95 - P5, 1), rate)`` from the values ``q0`` (B, 1)."""
    lo, hi = torch.quantile(q0.detach().flatten(), q0.new_tensor([0.05, 0.95]))
    return torch.lerp(scale, (hi - lo).clamp_min(1.0), rate)


def alignment_weights(q_scaled: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft Q-weights ``softmax_b(sg(Qs) / temperature)`` per step; (H, B) -> (H, B)."""
    return torch.softmax(q_scaled.detach() / temperature, dim=1)


def alignment_log_lik(
    action: torch.Tensor, mu_buf: torch.Tensor, log_std: torch.Tensor, min_std: float
) -> torch.Tensor:
    """Likelihood of the planner mean under the policy's detached Gaussian (no tanh term).

    ``sigma = max(sg(exp(log_std)), min_std)``, ``e = (a_pi - mu_buf) / sigma``,
    ``l = A * (sum(-e^2/2 - log sigma) - log(2 pi)/2)``.

    Args:
        action, mu_buf, log_std: (..., A).
    Returns:
        (...,).
    """
    sigma = log_std.detach().exp().clamp_min(min_std)
    return gaussian_log_prob((action - mu_buf) / sigma, sigma.log()).squeeze(-1)


def policy_loss(
    model: WorldModel,
    zs: torch.Tensor,
    mu_buf: torch.Tensor,
    scale: torch.Tensor,
    c: LossConstants,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """BOOM policy loss: scaled-Q maximisation plus Q-weighted alignment to the planner.

    Args:
        zs: (H, B, L) detached rollout latents; mu_buf: (H, B, A) planner means from the
            buffer; scale: () running scale S.
    Returns:
        loss (scalar), the updated scale S (), detached diagnostics. Q heads are read with
        frozen parameters: the gradient reaches the policy only through its action.
    """
    action, info = model.pi(zs)
    action, info = action.float(), {k: v.float() for k, v in info.items()}  # fp32 under autocast
    q = model.Q(zs, action, return_type=c.q_read, detach=True)  # (H, B, 1)
    new_scale = update_scale(scale, q[0], c.scale_lerp)
    q_scaled = q / new_scale
    q_term = (c.entropy_coef * info["log_prob"] - q_scaled).mean(dim=(1, 2))
    q_loss = (c.rho_pows * q_term).mean()

    log_lik = alignment_log_lik(action, mu_buf, info["log_std"], c.align_min_std)  # (H, B)
    gate = (new_scale > c.align_scale_gate).to(log_lik.dtype)
    log_lik = log_lik * gate / new_scale
    weights = alignment_weights(q_scaled.squeeze(-1), c.align_temperature)
    align_loss = -(c.rho_pows * (weights * log_lik).sum(dim=1)).mean()

    loss = q_loss + c.align_weight * align_loss
    diag = {
        "pi_loss": loss.detach(),
        "pi_q_loss": q_loss.detach(),
        "pi_align_loss": align_loss.detach(),
        "pi_log_std": info["log_std"].detach().mean(),
        "pi_entropy": -info["log_prob"].detach().mean(),
        "q_scale": new_scale.detach(),
    }
    return loss, new_scale.detach(), diag
