"""One MPPI iteration whose rollouts run on several threads.

The N sequences of an iteration never interact until the elites are chosen, so their
values can be computed in row blocks side by side. :class:`SplitIteration` has the
signature of :func:`~boom_control.agent.planner.plan_iteration`: it samples the
sequences, evaluates their row blocks in the calling thread and on worker threads (each
thread takes the next block when it is free), then refits on all N values. Torch's
kernels (and compiled CPU kernels, see :mod:`boom_control.agent.compiled`) release the
GIL, so the blocks run on separate cores.

While a ``spread`` predicate says the cores are taken (an overlapped update running on a
2-core CPU), the calling thread evaluates the blocks alone, so that three busy threads
never share two cores; the workers join at the next block once it says they may. The
blocks are the same whoever runs them, so results do not depend on timing.
Values equal one batched evaluation's up to matmul rounding (the block size can change a
library's kernel choice).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from boom_control.agent.planner import (
    IterState,
    PlanConstants,
    PlanModel,
    estimate_value,
    refit,
    sample_sequences,
)


def block_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ``(start, stop)`` row ranges covering ``range(n)``, sizes
    differing by at most one (the larger ones first)."""
    if not 1 <= parts <= n:
        raise ValueError(f"cannot split {n} rows into {parts} blocks")
    size, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + size + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


class SplitIteration:
    """:func:`plan_iteration` with the value estimate split into row blocks on threads.

    Args:
        threads: threads evaluating blocks (>= 2): the calling one and ``threads - 1``
            workers.
        blocks: row blocks per iteration (default ``threads``: smaller blocks make the
            matmuls less efficient than they gain, measured on 2 cores); threads take the
            next block as they become free, so a thread that joins late still gets work.
        value_fn: :func:`estimate_value` or a compiled version of it.
        refit_fn: :func:`refit` or a compiled version of it.
        context: factory of the context the value runs under (the agent's precision,
            e.g. bf16 autocast); worker threads enter it and ``torch.no_grad`` themselves
            since both are per thread.
        spread: asked before each block the calling thread takes; workers join only once
            it says True.
    """

    def __init__(
        self,
        threads: int,
        blocks: int | None = None,
        value_fn: Callable[..., torch.Tensor] = estimate_value,
        refit_fn: Callable[..., IterState] = refit,
        context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        spread: Callable[[], bool] = lambda: True,
    ) -> None:
        if threads < 2:
            raise ValueError(f"SplitIteration needs threads >= 2, got {threads}")
        self.threads = threads
        self.blocks = threads if blocks is None else blocks
        if self.blocks < 1:
            raise ValueError(f"SplitIteration needs blocks >= 1, got {blocks}")
        self._value_fn, self._refit_fn, self._context = value_fn, refit_fn, context
        self._spread = spread
        self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="boom-plan")
        self._seen: set[tuple[int, ...]] = set()

    def _value(self, *args) -> torch.Tensor:
        with torch.no_grad(), self._context():
            return self._value_fn(*args)

    def __call__(
        self,
        model: PlanModel,
        it: IterState,
        consts: PlanConstants,
        samples_eps: torch.Tensor,
        value_eps: torch.Tensor,
        heads: torch.Tensor,
    ) -> IterState:
        """One MPPI iteration (arguments and result as :func:`plan_iteration`)."""
        actions = sample_sequences(it, samples_eps)  # (H, N, A)
        bounds = block_bounds(actions.shape[1], min(self.blocks, actions.shape[1]))
        blocks = [
            (model, it.z[a:b], actions[:, a:b], consts, value_eps[a:b], heads) for a, b in bounds
        ]
        values: list[torch.Tensor | None] = [None] * len(blocks)
        sizes = tuple(b - a for a, b in bounds)
        if sizes not in self._seen:
            # the first call for these block sizes runs here alone, so that a compiled
            # value_fn is traced once and never by two threads at the same time
            values = [self._value(*block) for block in blocks]
            self._seen.add(sizes)
            return self._refit_fn(it, actions, torch.cat(values), consts)

        queue = itertools.count()  # next block to take; next() is atomic under the GIL

        def drain() -> None:
            while (i := next(queue)) < len(blocks):
                values[i] = self._value(*blocks[i])

        helpers: list[Future] = []
        while True:
            if len(helpers) < self.threads - 1 and self._spread():
                helpers += [self._pool.submit(drain) for _ in range(self.threads - 1)]
            i = next(queue)
            if i >= len(blocks):
                break
            values[i] = self._value(*blocks[i])
        for helper in helpers:
            helper.result()
        return self._refit_fn(it, actions, torch.cat(values), consts)

    def close(self) -> None:
        """Stop the worker threads (the object must not be called afterwards)."""
        self._pool.shutdown()
