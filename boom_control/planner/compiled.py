"""``torch.compile`` as the learner uses it.

Inductor turns a graph into C++ kernels (elementwise work, reductions) around library
matmuls. On CPU, torch 2.x calls those kernels from Python without releasing the GIL, so
while one thread runs them (planning) another thread (the overlapped update) cannot even
start its next matmul. :func:`release_gil_in_cpu_kernels` makes the generated bindings
drop the GIL around each kernel call, after the arguments have been read; the kernels
themselves touch only raw tensor memory, so nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

_STOCK_CALL = "kernel({}); Py_RETURN_NONE;"
"""How inductor's CPU bindings call a kernel (``{}`` = the parsed arguments)."""
_NO_GIL_CALL = (
    "{{ auto bound_kernel = std::bind(kernel, {}); "
    "struct NoGil {{ PyThreadState* state = PyEval_SaveThread(); "
    "~NoGil() {{ PyEval_RestoreThread(state); }} }} no_gil; "
    "bound_kernel(); }} Py_RETURN_NONE;"
)
"""The same call with the arguments parsed first (``std::bind`` evaluates them) and the
GIL released for the kernel alone; the guard takes it back even if the kernel throws."""


def release_gil_in_cpu_kernels() -> bool:
    """Make inductor's CPU kernel bindings release the GIL while a kernel runs.

    Applies to kernels compiled afterwards (the patched source has its own cache key).
    Returns True when the bindings release the GIL, False when this torch's bindings are
    not the ones this was written for (they are then left as they are).
    """
    from torch._inductor import codecache

    bindings = getattr(codecache, "CppPythonBindingsCodeCache", None)
    current = getattr(bindings, "call_entry_function", None)
    if current == _NO_GIL_CALL:
        return True
    if current != _STOCK_CALL:
        log.debug("inductor CPU bindings not recognised; kernels keep the GIL")
        return False
    bindings.call_entry_function = _NO_GIL_CALL
    return True


def compile_fn(fn: Callable) -> Callable:
    """``fn`` through torch.compile (inductor, static shapes), GIL-free CPU kernels.

    Random ops fall back to eager kernels so dropout and policy noise draw exactly what
    the eager code draws.
    """
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    release_gil_in_cpu_kernels()
    # inductor's joint-graph pattern matcher fails on the loss graphs (torch 2.13)
    return torch.compile(fn, dynamic=False, options={"pattern_matcher": False})
