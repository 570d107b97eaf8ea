"""One MPPI iteration whose rollouts run on several threads.

The N sequences of an iteration never interact until the elites are chosen, so their
values can be computed in row blocks side by side. :class:`SplitIteration` has the
signature of :func:`~boom_control.planner.mppi.plan_iteration`: it samples the
sequences, evaluates their row blocks in the calling thread and on worker threads (each
thread takes the next block when it is free), then refits on all N values. Torch's
kernels (and compiled CPU kernels, see :mod:`boom_control.planner.compiled`) release the
GIL, so the blocks run on separate cores.

While a :class:`CoreGate` is closed (an overlapped update occupies the other core of a
2-core CPU), the calling thread evaluates the blocks alone, so that three busy threads
never share two cores; the workers wait at the gate and take the next free block the
moment it opens, in the middle of an iteration if need be. The blocks are the same
whoever runs them, so results do not depend on timing.
Values equal one batched evaluation's up to matmul rounding (the block size can change a
library's kernel choice).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

from boom_control.planner.mppi import (
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


class CoreGate:
    """Whether the planner's worker threads may use their cores now. Thread-safe.

    :meth:`closed` shuts it for the duration of a ``with`` block (closes nest); when the
    last one ends, threads waiting in :meth:`wait` resume at once. ``opened=False`` makes a
    gate that never opens (fewer cores than threads).
    """

    def __init__(self, opened: bool = True) -> None:
        self._cond = threading.Condition()
        self._closed = 0 if opened else 1

    def is_open(self) -> bool:
        return self._closed == 0

    @contextlib.contextmanager
    def closed(self) -> Iterator[None]:
        """Keep the gate shut while the block runs."""
        with self._cond:
            self._closed += 1
        try:
            yield
        finally:
            with self._cond:
                self._closed -= 1
                self._cond.notify_all()

    def wait(self, give_up: Callable[[], bool]) -> bool:
        """Block until the gate is open (True) or ``give_up()`` holds (False); call
        :meth:`wake` after making ``give_up`` true."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed == 0 or give_up())
            return self._closed == 0

    def wake(self) -> None:
        """Have waiting threads re-check their ``give_up`` condition."""
        with self._cond:
            self._cond.notify_all()


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
        gate: workers take blocks only while it is open (default: always open).
    """

    def __init__(
        self,
        threads: int,
        blocks: int | None = None,
        value_fn: Callable[..., torch.Tensor] = estimate_value,
        refit_fn: Callable[..., IterState] = refit,
        context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        gate: CoreGate | None = None,
    ) -> None:
        if threads < 2:
            raise ValueError(f"SplitIteration needs threads >= 2, got {threads}")
        self.threads = threads
        self.blocks = threads if blocks is None else blocks
        if self.blocks < 1:
            raise ValueError(f"SplitIteration needs blocks >= 1, got {blocks}")
        self._value_fn, self._refit_fn, self._context = value_fn, refit_fn, context
        self._gate = CoreGate() if gate is None else gate
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
        taken = False  # every block has been taken

        def drain() -> None:
            if not self._gate.wait(lambda: taken):
                return
            while (i := next(queue)) < len(blocks):
                values[i] = self._value(*blocks[i])

        helpers = [self._pool.submit(drain) for _ in range(self.threads - 1)]
        try:
            while (i := next(queue)) < len(blocks):
                values[i] = self._value(*blocks[i])
        finally:  # also on an error, so that no worker waits at the gate for ever
            taken = True
            self._gate.wake()
        for helper in helpers:
            helper.result()
        return self._refit_fn(it, actions, torch.cat(values), consts)

    def close(self) -> None:
        """Stop the worker threads (the object must not be called afterwards)."""
        self._pool.shutdown()
