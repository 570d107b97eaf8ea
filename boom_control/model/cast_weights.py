"""A world model whose matmul weights are stored pre-cast for low-precision planning.

Under autocast every matmul casts its fp32 weight to the autocast dtype at every call
(on CPU, and in compiled graphs, nothing caches those casts). An MPPI step evaluates the
same weights ~20 times per iteration, so the casts are redone dozens of times per step
although the weights change once per update. :class:`CastWeights` keeps a copy of the
model with the ``nn.Linear`` and Q-ensemble weights already in the autocast dtype and
re-casts them only when the source's parameters have changed. Autocast leaves tensors
that already have its dtype as they are and the cast is the same round-to-nearest either
way, so planning on the copy gives bit-identical results.
"""

from __future__ import annotations

import copy
import threading

import torch
from torch import nn

from boom_control.model.layers import QEnsemble


def _cast_matmul_weights(model: nn.Module, dtype: torch.dtype) -> None:
    """Store the weights and biases the matmuls read (in place) in ``dtype``."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)
        elif isinstance(module, QEnsemble):
            for p in [*module.weight, *module.bias]:
                p.data = p.data.to(dtype)


class CastWeights:
    """A read-only copy of ``source`` with its matmul weights in ``dtype``, kept current.

    :meth:`model` returns the copy after re-copying every tensor of ``source`` that changed
    since the last call (changes are seen through the tensors' version counters, which
    every in-place update, optimiser step and ``load_state_dict`` advances). The copy is in
    eval mode and is meant for autocast regions of ``dtype``; outside one its matmuls would
    mix dtypes. Safe to call from several threads as long as ``source`` is not modified
    meanwhile.
    """

    def __init__(self, source: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        self.source = source
        self.dtype = dtype
        self._copy = copy.deepcopy(source).requires_grad_(False).eval()
        _cast_matmul_weights(self._copy, dtype)
        originals = source.state_dict()  # detached views sharing storage and versions
        self._pairs = [(t, originals[k]) for k, t in self._copy.state_dict().items()]
        self._versions: list[int] | None = None
        self._lock = threading.Lock()

    def model(self) -> nn.Module:
        """The copy, with weights equal (after the cast) to the source's current ones."""
        with self._lock:
            versions = [src._version for _, src in self._pairs]
            if versions != self._versions:
                with torch.no_grad():
                    for dst, src in self._pairs:
                        dst.copy_(src)
                self._versions = versions
        return self._copy
