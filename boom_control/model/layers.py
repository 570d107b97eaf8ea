"""Building blocks of the world model: normed MLP layers, SimNorm, a stacked Q ensemble.

Every hidden layer is ``Linear -> (Dropout) -> LayerNorm -> Mish``. The Q ensemble keeps
the weights of all heads stacked along a leading head axis, so evaluating several heads is
one batched matmul per layer, and a subset of heads can be evaluated on its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from boom_control.model.ops import dropout_keep, mish_fast, simnorm

INIT_STD = 0.02
"""Std of the truncated-normal weight initialisation (truncated at +-2 std)."""


def _trunc_normal_(w: torch.Tensor) -> torch.Tensor:
    return nn.init.trunc_normal_(w, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)


class SimNorm(nn.Module):
    """Softmax within consecutive groups of ``group`` features; ``(..., D) -> (..., D)``."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return simnorm(x, self.group)

    def extra_repr(self) -> str:
        return f"group={self.group}"


class FastMish(nn.Module):
    """Mish computed by :func:`boom_control.model.ops.mish_fast` (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish_fast(x)


MISH_KINDS: dict[str, tuple[type[nn.Module], Callable[[torch.Tensor], torch.Tensor]]] = {
    "exact": (nn.Mish, F.mish),
    "fast": (FastMish, mish_fast),
}
"""Mish implementations by name: module class and function."""


class NormedLinear(nn.Module):
    """``Linear -> Dropout (if p > 0) -> LayerNorm -> activation`` (Mish unless given)."""

    def __init__(
        self, in_dim: int, out_dim: int, dropout: float = 0.0, act: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ln = nn.LayerNorm(out_dim)
        self.act = act if act is not None else nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.ln(self.dropout(self.linear(x))))


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    out_act: nn.Module | None = None,
    dropout: float = 0.0,
    mish: str = "exact",
) -> nn.Sequential:
    """MLP of normed hidden layers.

    The output layer is a plain ``Linear`` when ``out_act`` is None, otherwise a
    :class:`NormedLinear` with ``out_act`` as its activation (e.g. LayerNorm + SimNorm).
    ``dropout`` applies to the first layer only; ``mish`` names the hidden activation's
    implementation (a key of :data:`MISH_KINDS`).
    """
    dims = [in_dim, *hidden]
    act_cls = MISH_KINDS[mish][0]
    layers: list[nn.Module] = [
        NormedLinear(dims[i], dims[i + 1], dropout=dropout if i == 0 else 0.0, act=act_cls())
        for i in range(len(hidden))
    ]
    if out_act is None:
        layers.append(nn.Linear(dims[-1], out_dim))
    else:
        layers.append(NormedLinear(dims[-1], out_dim, act=out_act))
    return nn.Sequential(*layers)


def init_weights(module: nn.Module) -> None:
    """Truncated-normal (std 0.02) weights and zero biases for every ``nn.Linear``."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            _trunc_normal_(m.weight)
            nn.init.zeros_(m.bias)


class QEnsemble(nn.Module):
    """``num_q`` MLPs ``in_dim -> hidden... -> out_dim`` with stacked weights.

    Layer ``l`` holds ``weight[l]: (num_q, d_in, d_out)`` and ``bias[l]: (num_q, d_out)``;
    hidden layers also hold per-head LayerNorm affine parameters. Dropout (``dropout``)
    acts on the first layer only, in training mode. ``mish`` names the implementation of
    the hidden activation (a key of :data:`MISH_KINDS`). Init: truncated normal weights,
    zero biases, zero weights in the last layer.
    """

    def __init__(
        self,
        num_q: int,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        dropout: float = 0.0,
        mish: str = "exact",
    ) -> None:
        super().__init__()
        self.num_q = num_q
        self._mish = MISH_KINDS[mish][1]
        self.dropout = float(dropout)
        self.hidden = tuple(int(d) for d in hidden)
        dims = [in_dim, *hidden, out_dim]
        self.weight = nn.ParameterList(
            nn.Parameter(torch.empty(num_q, d_in, d_out))
            for d_in, d_out in itertools.pairwise(dims)
        )
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(num_q, d)) for d in dims[1:])
        self.ln_weight = nn.ParameterList(nn.Parameter(torch.ones(num_q, d)) for d in hidden)
        self.ln_bias = nn.ParameterList(nn.Parameter(torch.zeros(num_q, d)) for d in hidden)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal weights, zero biases, unit LayerNorm gains, zero last layer."""
        for w in self.weight:
            _trunc_normal_(w)
        nn.init.zeros_(self.weight[-1])
        for b in self.bias:
            nn.init.zeros_(b)

    def forward(
        self, x: torch.Tensor, heads: torch.Tensor | None = None, detach: bool = False
    ) -> torch.Tensor:
        """Evaluate the heads.

        Args:
            x: ``(..., in_dim)`` input shared by all heads.
            heads: optional ``(k,)`` long tensor of head indices; None = all ``num_q``.
            detach: use detached parameters (gradients flow only to ``x``).
        Returns:
            ``(k, ..., out_dim)`` outputs of the selected heads, in the order given.
        """
        params = [list(self.weight), list(self.bias), list(self.ln_weight), list(self.ln_bias)]
        if heads is not None:
            params = [[p.index_select(0, heads) for p in group] for group in params]
        if detach:
            params = [[p.detach() for p in group] for group in params]
        weights, biases, ln_weights, ln_biases = params
        batch_shape = x.shape[:-1]
        # (N, in) @ (k, in, out) broadcasts to (k, N, out): one batched matmul per layer.
        h = x.reshape(1, -1, x.shape[-1])
        for i, (w, g, beta) in enumerate(zip(weights[:-1], ln_weights, ln_biases, strict=True)):
            h = torch.baddbmm(biases[i].unsqueeze(1), h.expand(w.shape[0], -1, -1), w)
            if i == 0 and self.training and self.dropout > 0:
                h = h * dropout_keep(h.shape, self.dropout, h.dtype, h.device)
            h = F.layer_norm(h, (self.hidden[i],)) * g.unsqueeze(1) + beta.unsqueeze(1)
            h = self._mish(h)
        h = torch.baddbmm(
            biases[-1].unsqueeze(1), h.expand(weights[-1].shape[0], -1, -1), weights[-1]
        )
        return h.reshape(h.shape[0], *batch_shape, h.shape[-1])

    def extra_repr(self) -> str:
        dims = [self.weight[0].shape[1], *(w.shape[2] for w in self.weight)]
        return f"num_q={self.num_q}, dims={dims}, dropout={self.dropout}"
