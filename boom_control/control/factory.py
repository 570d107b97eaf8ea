"""Build a :class:`PlannerBackend` from a bundle, a backend name and a device."""

from __future__ import annotations

import torch

from boom_control.bundle.load import Bundle
from boom_control.device import resolve_device
from boom_control.errors import BackendError
from boom_control.planner.backends import (
    BACKENDS,
    CudaGraphBackend,
    OnnxBackend,
    PlannerBackend,
    TorchScriptBackend,
    override_constants,
)
from boom_control.planner.program import GraphPrograms, OnnxPrograms


def build_backend(
    bundle: Bundle,
    backend: str = "torch",
    device: str = "auto",
    *,
    threads: int = 0,
    bf16: bool = False,
    samples: int | None = None,
    iterations: int | None = None,
    pi_trajs: int | None = None,
    whole_plan: bool = True,
) -> PlannerBackend:
    """A planner backend for ``bundle``.

    Args:
        backend: one of :data:`BACKENDS`.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (resolved by
            :func:`boom_control.device.resolve_device`; asking for CUDA without one fails).
        threads: CPU threads for torch / ONNX Runtime (0 = leave the default).
        bf16: evaluation on a bf16 copy of the weights (torch and cudagraph backends).
        samples, iterations, pi_trajs: override the bundle's planner settings (policy
            trajectories: see :func:`override_constants`).
        whole_plan: each plan is one program call per iteration count
            (:mod:`boom_control.planner.program`): onnx on a CPU, an ONNX Runtime session;
            cudagraph (fp32), one CUDA graph replay. False: iteration by iteration.
    Raises:
        BackendError: the backend cannot run on the device, or a part ended up elsewhere.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    dev = resolve_device(device)
    if backend == "cudagraph" and dev.type != "cuda":
        raise BackendError("--backend cudagraph needs a CUDA device; use --device cuda")
    if threads > 0:
        torch.set_num_threads(threads)
    consts = override_constants(bundle.plan_constants(dev), samples, iterations, pi_trajs)
    if bf16 and backend not in ("torch", "cudagraph"):
        raise BackendError("--bf16 needs --backend torch or cudagraph (the eager weights)")
    if backend in ("torch", "cudagraph"):
        model = bundle.eager_model(dev)
        cls = CudaGraphBackend if backend == "cudagraph" else PlannerBackend
        planner = cls(model, consts, dev, bf16=bf16)
        if backend == "cudagraph" and whole_plan and not bf16:
            planner.programs = GraphPrograms(model, consts)
    elif backend == "torchscript":
        planner = TorchScriptBackend(bundle.model("torchscript", dev), consts, dev)
    else:
        parts = bundle.model("onnx", dev, threads=threads)
        programs = None
        if whole_plan and dev.type == "cpu":
            programs = OnnxPrograms(bundle.eager_model("cpu"), consts, threads=threads)
        session = parts.run.sessions["rollout_value"]
        planner = OnnxBackend(parts, consts, dev, session=session, programs=programs)
    _check_device(planner, bundle.obs_dim, dev)
    return planner


def _check_device(planner: PlannerBackend, obs_dim: int, dev: torch.device) -> None:
    """Run one encode and refuse a backend whose outputs are not on the asked device."""
    z = planner.encode(torch.zeros(1, obs_dim, device=dev))
    if z.device.type != dev.type:
        raise BackendError(f"{planner.name} produced its latent on {z.device}, asked for {dev}")
