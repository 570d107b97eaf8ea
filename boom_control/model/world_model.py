"""TD-MPC2-style world model: encoder, latent dynamics, reward, Q ensemble and policy heads.

Network heads only: no optimisers, losses or loops. Method names follow the paper:
``encode``, ``next``, ``reward``, ``Q``, ``pi`` (plus ``termination`` for tasks that can end
early). Rewards and Q values are categorical over ``num_bins`` two-hot bins (logits); use
:func:`boom_control.model.ops.two_hot_inv` with :attr:`WorldModel.bins` to read them.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Literal

import torch
from torch import nn

from boom_control.model.config import ModelConfig
from boom_control.model.layers import QEnsemble, SimNorm, init_weights, mlp
from boom_control.model.ops import gaussian_log_prob, make_bins, squash, two_hot_inv

QReturn = Literal["all", "min", "avg"]


class WorldModel(nn.Module):
    """Heads of the world model (sizes from :class:`ModelConfig`).

    Args:
        obs_dim: observation size O.
        action_dim: action size A (actions live in ``[-1, 1]^A``).
        cfg: network sizes.
        terminates: add a termination head ``p(terminal | z_{t+1})`` (tasks with falls).
    """

    def __init__(
        self, obs_dim: int, action_dim: int, cfg: ModelConfig, terminates: bool = False
    ) -> None:
        super().__init__()
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.cfg = cfg
        self.terminates = terminates
        latent, hid = cfg.latent_dim, cfg.mlp_dim

        def latent_act() -> nn.Module:
            return SimNorm(cfg.simnorm_dim) if cfg.simnorm else nn.Identity()

        m = cfg.mish
        self._encoder = mlp(obs_dim, [cfg.enc_dim], latent, out_act=latent_act(), mish=m)
        self._dynamics = mlp(latent + action_dim, [hid, hid], latent, out_act=latent_act(), mish=m)
        self._reward = mlp(latent + action_dim, [hid] * cfg.reward_layers, cfg.num_bins, mish=m)
        self._pi = mlp(latent, [hid, hid], 2 * action_dim, mish=m)
        self._termination = mlp(latent, [hid, hid], 1, mish=m) if terminates else None
        self._Qs = QEnsemble(
            cfg.num_q, latent + action_dim, [hid, hid], cfg.num_bins, cfg.dropout, mish=m
        )
        init_weights(self)  # Linear layers; the Q ensemble initialises itself
        self._target_Qs = copy.deepcopy(self._Qs).requires_grad_(False).eval()
        self.register_buffer("bins", make_bins(cfg.vmin, cfg.vmax, cfg.num_bins), persistent=False)
        self._log_std_min = cfg.log_std_min
        self._log_std_range = cfg.log_std_max - cfg.log_std_min

    # ----------------------------------------------------------------- bookkeeping
    def train(self, mode: bool = True) -> WorldModel:
        """Set train/eval mode; the target Q ensemble always stays in eval mode."""
        super().train(mode)
        self._target_Qs.eval()
        return self

    def with_mish(self, kind: str) -> WorldModel:
        """This model if its Mish is ``kind`` ('exact' or 'fast'), else an eval-mode twin with
        the same weights computing Mish that way (the same function, to ~1e-7)."""
        if self.cfg.mish == kind:
            return self
        cfg = dataclasses.replace(self.cfg, mish=kind)
        twin = WorldModel(self.obs_dim, self.action_dim, cfg, self.terminates)
        twin.load_state_dict(self.state_dict())
        return twin.to(next(self.parameters()).device).eval()

    def num_params(self) -> int:
        """Learnable parameters (the target Q copy is not counted)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder (trained with a reduced learning rate)."""
        return list(self._encoder.parameters())

    def model_parameters(self) -> list[nn.Parameter]:
        """Dynamics, reward, Q and termination parameters (world-model optimiser, full lr)."""
        return list(self._dynamics.parameters()) + self.head_parameters()

    def latent_parameters(self) -> list[nn.Parameter]:
        """Encoder and latent dynamics: what defines the latent space the heads read."""
        return self.encoder_parameters() + list(self._dynamics.parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Reward, Q ensemble and termination parameters (the target Qs excluded)."""
        heads = [self._reward, self._Qs]
        if self._termination is not None:
            heads.append(self._termination)
        return [p for h in heads for p in h.parameters()]

    def pi_parameters(self) -> list[nn.Parameter]:
        """Policy parameters (policy optimiser)."""
        return list(self._pi.parameters())

    @torch.no_grad()
    def soft_update_target(self, tau: float) -> None:
        """Polyak update ``target <- (1 - tau) * target + tau * online`` of the Q ensemble."""
        torch._foreach_lerp_(list(self._target_Qs.parameters()), list(self._Qs.parameters()), tau)

    # ----------------------------------------------------------------------- heads
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``(..., O) -> (..., L)`` latent state."""
        return self._encoder(obs)

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Latent dynamics ``(..., L), (..., A) -> (..., L)``."""
        return self._dynamics(torch.cat([z, a], dim=-1))

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Reward logits ``(..., L), (..., A) -> (..., num_bins)``."""
        return self._reward(torch.cat([z, a], dim=-1))

    def termination(self, z: torch.Tensor) -> torch.Tensor:
        """Termination logit of a (next) latent ``(..., L) -> (..., 1)``; needs ``terminates``."""
        if self._termination is None:
            raise RuntimeError("this WorldModel was built with terminates=False")
        return self._termination(z)

    def pi_params(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh Gaussian parameters ``(..., L) -> mean (..., A), log_std (..., A)``.

        ``log_std = log_std_min + (log_std_max - log_std_min) * (tanh(x) + 1) / 2``.
        """
        mean, x = self._pi(z).chunk(2, dim=-1)
        return mean, self._log_std_min + 0.5 * self._log_std_range * (torch.tanh(x) + 1)

    def pi(
        self, z: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Tanh-squashed Gaussian policy.

        Args:
            z: ``(..., L)`` latent states.
            eps: optional ``(..., A)`` standard-normal noise; drawn from torch's RNG if None.
        Returns:
            ``action (..., A)`` = ``tanh(mean + std * eps)`` and a dict with ``mean``
            (``tanh`` of the pre-tanh mean), ``log_std`` (pre-tanh, in
            ``[log_std_min, log_std_max]``), ``eps`` and ``log_prob (..., 1)`` in TD-MPC2's
            scaled form ``A * (sum(-eps^2/2 - log_std) - log(2 pi)/2) - sum(log(1 - a^2))``.
        """
        mean, log_std = self.pi_params(z)
        if eps is None:
            eps = torch.randn_like(mean)
        pre_tanh = mean + eps * log_std.exp()
        log_prob = gaussian_log_prob(eps, log_std)
        mean, action, log_prob = squash(mean, pre_tanh, log_prob)
        return action, {"mean": mean, "log_std": log_std, "eps": eps, "log_prob": log_prob}

    def Q(  # paper name
        self,
        z: torch.Tensor,
        a: torch.Tensor,
        return_type: QReturn = "min",
        target: bool = False,
        heads: torch.Tensor | None = None,
        detach: bool = False,
    ) -> torch.Tensor:
        """State-action values.

        Args:
            z: ``(..., L)``; a: ``(..., A)``.
            return_type: ``all`` -> logits ``(k, ..., num_bins)`` of the selected heads (all
                heads when ``heads`` is None); ``min``/``avg`` -> ``(..., 1)`` values, the min /
                mean of two heads (``heads``, or two drawn at random without replacement).
            target: read the Polyak target ensemble instead of the online one.
            heads: ``(k,)`` long tensor of head indices.
            detach: online parameters treated as constants (gradient only through ``a``/``z``).
        """
        net = self._target_Qs if target else self._Qs
        za = torch.cat([z, a], dim=-1)
        if return_type == "all":
            return net(za, heads, detach)
        if heads is None:
            heads = torch.randperm(self.cfg.num_q, device=z.device)[:2]
        q = two_hot_inv(net(za, heads, detach).float(), self.bins)  # fp32 under autocast
        if return_type == "min":
            return q.min(dim=0).values
        if return_type == "avg":
            return q.mean(dim=0)
        raise ValueError(f"return_type must be 'all', 'min' or 'avg', got {return_type!r}")
