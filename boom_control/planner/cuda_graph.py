"""CUDA graphs: a fixed-shape function captured once and replayed.

An MPPI iteration on a GPU is dozens of small kernels whose launches cost more than their
arithmetic. :class:`StaticGraph` captures a function of tensors as one CUDA graph at the
first call and replays it afterwards: each call copies its inputs into the captured input
tensors, replays, and returns copies of the outputs. The same kernels run on the same
data, so results equal the function's. Weights are read from their memory at every replay:
updating parameters in place (optimisers, ``copy_``) is seen; replacing them is not.

:class:`GraphedIteration` is :func:`~boom_control.planner.mppi.plan_iteration` through a
:class:`StaticGraph`, one graph per world model it is called with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch

from boom_control.planner.mppi import IterState, PlanConstants, PlanModel, plan_iteration


def _clone(out: Any) -> Any:
    """Copy a tensor or a (named) tuple of tensors."""
    if isinstance(out, torch.Tensor):
        return out.clone()
    items = [t.clone() for t in out]
    return type(out)(*items) if hasattr(out, "_fields") else tuple(items)


class StaticGraph:
    """``fn(*inputs)`` captured as a CUDA graph at the first call's shapes.

    Args:
        fn: a function of CUDA tensors returning a tensor or a (named) tuple of them, with
            no host synchronisation and no randomness of its own.
        warmup: eager runs on a side stream before capturing (lazy library initialisation
            must happen outside the capture).

    Calls must pass tensors of the first call's shapes, dtypes and device; they run under
    the caller's grad mode and autocast, which must be the same at every call. Not
    thread-safe (one set of static tensors): callers on several threads hold a lock.
    """

    def __init__(self, fn: Callable[..., Any], warmup: int = 3) -> None:
        self._fn = fn
        self._warmup = warmup
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: list[torch.Tensor] = []
        self._outputs: Any = None

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def _capture(self, inputs: Sequence[torch.Tensor]) -> None:
        device = inputs[0].device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need CUDA tensors, got {device}")
        self._inputs = [x.clone() for x in inputs]
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(self._warmup):
                self._fn(*self._inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: another thread's CUDA work (an overlapped update) may run meanwhile
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            self._outputs = self._fn(*self._inputs)
        self._graph = graph

    def __call__(self, *inputs: torch.Tensor) -> Any:
        if self._graph is None:
            self._capture(inputs)
        for static, x in zip(self._inputs, inputs, strict=True):
            static.copy_(x)
        self._graph.replay()
        return _clone(self._outputs)


class GraphedIteration:
    """:func:`plan_iteration` (or a compiled version) replayed from CUDA graphs.

    The graph bakes in the model's weight tensors and the constants, so there is one per
    ``(model, consts)`` pair seen (the learner's and acting's copies); noise slices and the
    iteration state are inputs. Calls from several threads (evaluation workers) take
    turns. Bf16 autocast must not cache weight casts (the planner's precision context
    passes ``cache_enabled=False``), or replays would keep the weights of the capture.
    """

    def __init__(self, iteration: Callable[..., IterState] = plan_iteration) -> None:
        self._iteration = iteration
        self._graphs: dict[tuple[int, int], StaticGraph] = {}
        self._lock = threading.Lock()

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
        key = (id(model), id(consts))
        with self._lock:
            graph = self._graphs.get(key)
            if graph is None:

                def step(*tensors: torch.Tensor) -> IterState:
                    state, (s, v, h) = IterState(*tensors[:6]), tensors[6:]
                    return self._iteration(model, state, consts, s, v, h)

                graph = self._graphs[key] = StaticGraph(step)
            return graph(*it, samples_eps, value_eps, heads)
