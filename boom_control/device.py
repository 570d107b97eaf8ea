"""Device selection from config: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; precisions and
compilation."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable

import torch

from boom_control.errors import DeviceError

log = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """Map a config string to a usable :class:`torch.device`.

    ``auto`` picks CUDA when a GPU is visible and the CPU otherwise. Asking for CUDA on a
    machine without one is an error, never a silent fall-back to the CPU.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device={name!r} was asked for but no CUDA device is available "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
                "use device=cpu or device=auto"
            )
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device={name!r}: only {torch.cuda.device_count()} CUDA device(s) present"
            )
        return dev
    raise DeviceError(f"unknown device {name!r}; use one of: auto, cpu, cuda, cuda:N")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware.

    CUDA: compute capability 8.0 or newer (Ampere, Hopper, ...). CPU: AVX512-BF16 or AMX
    instructions. Elsewhere (an AVX2-only CPU, for one) bf16 matmuls are emulated and run
    several times slower than fp32 ones.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` as asked; ``auto`` = bf16 where :func:`native_bf16`, else fp32."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32', 'bf16' or 'auto', got {precision!r}")
    return precision


COMPILE_MIN_STEPS = 100_000
"""Training runs of at least this many agent steps compile with ``compile: auto``: the
minutes torch.compile takes up front are then a few percent of the run at most."""


def resolve_compile(value: bool | str, steps: int | None, device: torch.device) -> bool:
    """Whether to torch.compile: ``value`` when true or false; ``'auto'`` = a training run
    of at least :data:`COMPILE_MIN_STEPS` steps (``steps``; None: not a training run) on a
    CPU with a C++ compiler for inductor's kernels. On CUDA ``'auto'`` leaves it off: the
    CUDA graphs on by default there already remove the launch overhead (``true`` still
    compiles)."""
    if value != "auto":
        return bool(value)
    if steps is None or steps < COMPILE_MIN_STEPS or torch.device(device).type != "cpu":
        return False
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if not compiler:
        log.info("compile=auto: no C++ compiler found, so not compiling")
    return bool(compiler)


def describe_device(device: torch.device) -> str:
    """Human-readable name of a device, for start-up banners."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def hardware_name(device: torch.device) -> str:
    """The card's or processor's name, for figures (``NVIDIA H200``, ``AMD EPYC 9R14 (2
    cores)``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            models = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        name = models[0] if models else name
    except OSError:
        pass
    return f"{name} ({usable_cpus()} cores)"


def precision_context(
    precision: str, device: torch.device, cache: bool = True
) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context that computes in ``precision``: 'fp32' nothing, 'bf16'
    autocast on ``device``'s type (``cache=False`` re-casts weights at every use, as CUDA
    graph replays need)."""
    if precision == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(
        torch.device(device).type, dtype=torch.bfloat16, cache_enabled=cache
    )
