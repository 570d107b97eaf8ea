"""Run a bundle's parts on a backend: eager torch, TorchScript or ONNX Runtime.

Every backend is a *runner*: ``runner(part, *tensors) -> tuple of tensors``. On top of a
runner, :class:`PartsModel` offers the heads the MPPI planner calls (``next``, ``reward``,
``termination``, ``pi``, ``Q`` and ``bins``), so the very same planner code runs on every
backend and their plans can be compared on fixed noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from boom_control.errors import BackendError
from boom_control.model.ops import two_hot_inv

log = logging.getLogger(__name__)

Runner = Callable[..., tuple[torch.Tensor, ...]]
BackendName = Literal["torch", "torchscript", "onnx"]


class EagerRunner:
    """Parts as eager ``nn.Module`` objects."""

    def __init__(self, parts: Mapping[str, nn.Module]) -> None:
        self.parts = dict(parts)

    @torch.no_grad()
    def __call__(self, part: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.parts[part](*inputs)
        return out if isinstance(out, tuple) else (out,)


class TorchScriptRunner:
    """Parts as the methods of one TorchScript module (``torch.jit.load``), saved without
    its weights: they are set from the bundle's one weights file.

    Args:
        path: the module (``model/parts.pt``).
        weights: the bundle's state dict (``model/weights.safetensors``).
        parameters: the module's parameter names -> state-dict keys.
    """

    def __init__(
        self,
        path: Path,
        device: torch.device,
        weights: Mapping[str, torch.Tensor],
        parameters: Mapping[str, str],
    ) -> None:
        module = torch.jit.load(str(path), map_location=device).eval()
        for name, param in module.named_parameters():
            if name not in parameters:
                raise BackendError(f"{path}: parameter {name!r} is not mapped to a weight")
            param.data = weights[parameters[name]].to(device)
        self.module = module

    @torch.no_grad()
    def __call__(self, part: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = getattr(self.module, part)(*inputs)
        return out if isinstance(out, tuple) else (out,)


class OnnxRunner:
    """Parts run by ONNX Runtime sessions (CPU or CUDA execution provider).

    Asking for CUDA when the CUDA provider is not really usable raises
    :class:`BackendError` instead of silently running on the CPU.
    """

    def __init__(self, files: Mapping[str, Path], device: torch.device, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError(
                    "ONNX Runtime has no CUDA execution provider here "
                    f"(available: {ort.get_available_providers()}); install onnxruntime-gpu "
                    "with matching CUDA/cuDNN libraries or use --device cpu"
                )
            providers = [("CUDAExecutionProvider", {"device_id": device.index or 0})]
        else:
            providers = ["CPUExecutionProvider"]
        self.sessions = {
            name: ort.InferenceSession(str(path), opts, providers=providers)
            for name, path in files.items()
        }
        for name, sess in self.sessions.items():
            used = sess.get_providers()[0]
            if device.type == "cuda" and used != "CUDAExecutionProvider":
                raise BackendError(
                    f"ONNX part {name!r} fell back to {used} although CUDA was asked"
                )
        self.device = device
        self.input_names = {n: [i.name for i in s.get_inputs()] for n, s in self.sessions.items()}

    def __call__(self, part: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = {
            name: x.detach().cpu().numpy()
            for name, x in zip(self.input_names[part], inputs, strict=True)
        }
        outs = self.sessions[part].run(None, feed)
        return tuple(torch.from_numpy(np.asarray(o)).to(self.device) for o in outs)


class PartsModel:
    """The planner's view of a world model, computed by a backend's parts.

    Args:
        run: a runner (see module docstring).
        bins: ``(K,)`` support of the discrete regression (symlog space).
        terminates: the bundle has a termination part.
    """

    def __init__(self, run: Runner, bins: torch.Tensor, terminates: bool) -> None:
        self.run = run
        self.bins = bins
        self.terminates = terminates

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B,O) -> (B,L)``."""
        return self.run("encoder", obs)[0]

    def next(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``(B,L),(B,A) -> (B,L)``."""
        return self.run("dynamics", z, a)[0]

    def reward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Reward logits ``(B,K)``."""
        return self.run("reward", z, a)[0]

    def termination(self, z: torch.Tensor) -> torch.Tensor:
        """Termination logit ``(B,1)``."""
        return self.run("termination", z)[0]

    def pi(
        self, z: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Policy action ``tanh(mean + exp(log_std) * eps)`` ``(B,A)`` and its parameters."""
        mean, log_std = self.run("policy", z)
        if eps is None:
            eps = torch.randn_like(mean)
        action = torch.tanh(mean + log_std.exp() * eps)
        return action, {"mean": torch.tanh(mean), "log_std": log_std, "eps": eps}

    def Q(  # paper name
        self,
        z: torch.Tensor,
        a: torch.Tensor,
        return_type: str = "avg",
        target: bool = False,
        heads: torch.Tensor | None = None,
        detach: bool = False,
    ) -> torch.Tensor:
        """Q of the given two heads: ``avg``/``min`` -> ``(B,1)``; ``all`` -> logits."""
        if target:
            raise BackendError("bundles hold the online Q heads only")
        if heads is None:
            raise BackendError("exported Q needs explicit head indices")
        logits = self.run("q", z, a, heads)[0]
        if return_type == "all":
            return logits
        q = two_hot_inv(logits, self.bins)
        return q.mean(dim=0) if return_type == "avg" else q.min(dim=0).values

    def rollout_value(
        self, z: torch.Tensor, actions: torch.Tensor, value_eps: torch.Tensor, heads: torch.Tensor
    ) -> torch.Tensor:
        """Fused evaluation of N action sequences ``(H,N,A) -> (N,)`` from ``z (1,L)``."""
        return self.run("rollout_value", z, actions, value_eps, heads)[0]
