"""Writing a bundle's model files (format version 2): the weights once, as safetensors; every
part as ONNX whose tensors are external data inside that file; one TorchScript module, a
method per part, saved without its weights.

Sharing works because the parts are exported without constant folding: every ONNX
initializer is then a weight of the model, byte for byte, and is pointed at where
``weights.safetensors`` holds it (ONNX external data: file, offset, length).
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from boom_control.bundle.load import TARGET_PREFIX, TORCHSCRIPT, WEIGHTS
from boom_control.errors import BundleError
from boom_control.model.world_model import WorldModel


def bundle_weights(model: WorldModel) -> dict[str, torch.Tensor]:
    """The state dict a bundle holds: every weight but the training-only target Qs."""
    return {
        k: v.detach().contiguous()
        for k, v in model.state_dict().items()
        if not k.startswith(TARGET_PREFIX)
    }


def write_weights(weights: Mapping[str, torch.Tensor], root: Path) -> dict[tuple, tuple[int, int]]:
    """Write ``root / WEIGHTS``; returns ``(shape, dtype, bytes) -> (offset, length)`` of
    every tensor in the file (offsets from the file's start)."""
    from safetensors.torch import save_file

    path = root / WEIGHTS
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(dict(weights), str(path))
    path.chmod(0o644)  # readable like the other bundle files
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    start = 8 + header_len
    where: dict[tuple, tuple[int, int]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        key = (tuple(info["shape"]), info["dtype"], raw[start + begin : start + end])
        where.setdefault(key, (start + begin, end - begin))
    return where


_ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}


def write_onnx(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    where: Mapping[tuple, tuple[int, int]],
    opset: int,
    **names: Any,
) -> None:
    """Export ``module`` to ``path`` with every initializer as external data in the
    weights file (``where`` from :func:`write_weights`).

    Raises:
        BundleError: an initializer is not one of the weights (nothing is written then).
    """
    import onnx
    from onnx import numpy_helper

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / legacy-exporter notices
        torch.onnx.export(
            module,
            example,
            buffer,
            dynamo=False,
            opset_version=opset,
            do_constant_folding=False,  # keep the initializers the model's own weights
            **names,
        )
    graph = onnx.load_from_string(buffer.getvalue())
    location = Path(WEIGHTS).name
    for tensor in graph.graph.initializer:
        array = numpy_helper.to_array(tensor)
        key = (tuple(array.shape), _ST_DTYPES.get(array.dtype), array.tobytes())
        if key not in where:
            raise BundleError(
                f"{path.name}: initializer {tensor.name!r} {tuple(array.shape)} is not a weight "
                "of the model; it cannot be shared with the weights file"
            )
        offset, length = where[key]
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = tensor.external_data.add()
            entry.key, entry.value = k, v
    onnx.save(graph, str(path))


class _Parts(nn.Module):
    """The parts as one module; :func:`write_torchscript` adds a method per part."""

    def __init__(self, parts: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(dict(parts))


def _method(name: str) -> Callable[..., Any]:
    def call(self: _Parts, *inputs: torch.Tensor) -> Any:
        return self.parts[name](*inputs)

    return call


def write_torchscript(
    model: WorldModel,
    parts: Mapping[str, nn.Module],
    examples: Mapping[str, tuple[torch.Tensor, ...]],
    root: Path,
) -> dict[str, Any]:
    """Trace every part as a method of one module and save it (``root / TORCHSCRIPT``)
    without its weights. Returns the bundle's ``torchscript`` entry: the file and the
    module's parameter names -> the weights' keys."""
    holder = type("BundleParts", (_Parts,), {name: _method(name) for name in parts})(parts)
    keys = {id(p): k for k, p in model.named_parameters()}
    parameters = {name: keys[id(p)] for name, p in holder.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(holder, dict(examples), check_trace=False)
    params = list(traced.named_parameters())
    kept = [p.data for _, p in params]  # the model's own tensors: put back after saving
    try:
        for _, p in params:
            p.data = torch.empty(0, dtype=p.dtype)
        path = root / TORCHSCRIPT
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(traced, str(path))
    finally:
        for (_, p), data in zip(params, kept, strict=True):
            p.data = data
    missing = sorted(set(parameters) - {n for n, _ in params})
    if missing:
        raise BundleError(f"TorchScript module lost parameters {missing[:3]}")
    return {"file": TORCHSCRIPT, "parameters": {n: parameters[n] for n, _ in params}}
