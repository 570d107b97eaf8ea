"""How far a plan is from the machine's limit: the matrix multiplies of each planning stage,
their FLOPs, and the *floor*: the time of exactly those multiplies (same shapes, same
order, fresh operands) run back to back on the device, measured in the same run as the
plan. ``plan time / floor`` is then a printed number, and ``FLOPs / time`` against
``FLOPs / floor`` the achieved fraction of the measured matmul rate.

The multiplies are recorded from one plan of the eager world model (every ``linear``,
``mm``, ``addmm``, ``bmm``, ``baddbmm`` the stage dispatches); a backend that computes the same plan
(ONNX Runtime, TorchScript, a whole-plan program) performs the same multiplies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from boom_control.planner.backends import PlannerBackend
from boom_control.planner.mppi import initial_state

_aten = torch.ops.aten


def _linear_flops(x: tuple[int, ...], w: tuple[int, ...], *_bias: tuple[int, ...]) -> int:
    return 2 * int(np.prod(x[:-1])) * w[0] * w[1]


MATMULS = {
    _aten.linear.default: _linear_flops,
    _aten.mm.default: lambda a, b: 2 * a[0] * a[1] * b[1],
    _aten.addmm.default: lambda _, a, b: 2 * a[0] * a[1] * b[1],
    _aten.bmm.default: lambda a, b: 2 * a[0] * a[1] * a[2] * b[2],
    _aten.baddbmm.default: lambda _, a, b: 2 * a[0] * a[1] * a[2] * b[2],
}
"""The recorded operators and their FLOPs from the operand shapes."""

STAGES = ("encode", "policy", "init", "iteration", "select")
"""Stages of one plan, as in :mod:`boom_control.profile.sweep` (``iteration``: one)."""


@dataclass(frozen=True)
class Matmul:
    """One recorded multiply: the operator and the shapes and dtype of its operands."""

    op: object
    shapes: tuple[tuple[int, ...], ...]
    dtype: torch.dtype

    @property
    def flops(self) -> int:
        return int(MATMULS[self.op](*self.shapes))


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Matmul] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            shapes = tuple(tuple(t.shape) for t in tensors)
            self.calls.append(Matmul(func, shapes, tensors[-1].dtype))
        return func(*args, **(kwargs or {}))


def record(fn: Callable[[], object]) -> list[Matmul]:
    """The multiplies ``fn()`` dispatches, in order."""
    with _Recorder() as rec:
        fn()
    return rec.calls


def stage_matmuls(backend: PlannerBackend, obs_dim: int) -> dict[str, list[Matmul]]:
    """The multiplies of every planning stage of ``backend``'s plan (an eager backend: the
    ``torch`` one of the same bundle and settings)."""
    dev, consts = backend.device, backend.consts
    state = initial_state(consts, dev)
    noise = backend.draw_noise(torch.Generator(dev).manual_seed(0))
    out: dict[str, list[Matmul]] = {}
    with torch.inference_mode():
        obs = torch.zeros(1, obs_dim, device=dev)
        z = backend.encode(obs)
        out["encode"] = record(lambda: backend.encode(obs))
        out["policy"] = record(lambda: backend.policy_action(z))
        box: dict[str, object] = {}
        out["init"] = record(lambda: box.update(run=backend.begin(z, state, noise)))
        out["iteration"] = record(lambda: box.update(run=backend.iterate(box["run"], 0)))
        out["select"] = record(lambda: backend.select(box["run"]))
    return out


class FloorReplay:
    """The recorded multiplies on fresh random operands, ready to be timed.

    Args:
        calls: what :func:`record` returned.
        device: where to run them.
    """

    def __init__(self, calls: list[Matmul], device: torch.device) -> None:
        gen = torch.Generator(device).manual_seed(0)
        self.calls = [
            (
                c.op,
                [torch.randn(s, generator=gen, device=device, dtype=c.dtype) for s in c.shapes],
            )
            for c in calls
        ]
        self.device = torch.device(device)
        self.flops = sum(c.flops for c in calls)

    def __call__(self) -> None:
        with torch.inference_mode():
            for op, operands in self.calls:
                op(*operands)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time_ms(self, repeats: int = 20, warmup: int = 3) -> float:
        """Median milliseconds of one replay."""
        for _ in range(warmup):
            self()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            self()
            times.append((time.perf_counter() - t) * 1e3)
        return float(np.median(times))


class OnnxFloorReplay(FloorReplay):
    """The recorded multiplies as one ONNX Runtime graph (CPU) of nothing else: ``Gemm``
    for each linear layer, ``MatMul`` + ``Add`` for each batched one, every left operand a
    graph input (nothing constant-folds) and every product a graph output (nothing is
    pruned). The floor of a backend that runs the plan in ONNX Runtime."""

    def __init__(self, calls: list[Matmul], threads: int = 0) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        nodes, inputs, outputs, inits, feed = [], [], [], [], {}
        for i, c in enumerate(calls):
            name = f"y{i}"
            if c.op is _aten.linear.default:
                x, w, *bias = c.shapes
                x2 = (int(np.prod(x[:-1])), x[-1])
                args = [f"x{i}", f"w{i}"] + ([f"b{i}"] if bias else [])
                nodes.append(helper.make_node("Gemm", args, [name], transB=1))
                tensors = {f"w{i}": w, **({f"b{i}": bias[0]} if bias else {})}
                out_shape = (x2[0], w[0])
            else:  # (bias,) a (B, m, k), b (B, k, n)
                *bias, x2, w = c.shapes
                nodes.append(helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"m{i}"]))
                tensors = {f"w{i}": w}
                if bias:
                    nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [name]))
                    tensors[f"b{i}"] = bias[0]
                else:
                    nodes[-1].output[0] = name
                out_shape = (x2[0], x2[1], w[2])
            feed[f"x{i}"] = rng.standard_normal(x2).astype(np.float32)
            inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, list(x2)))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(out_shape)))
            for key, shape in tensors.items():
                value = rng.standard_normal(shape).astype(np.float32)
                inits.append(numpy_helper.from_array(value, key))
        graph = helper.make_graph(nodes, "matmul_floor", inputs, outputs, inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8  # what ONNX Runtime reads for opset 17
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        onnx.checker.check_model(model)
        self._feed = feed
        self.calls = calls
        self.device = torch.device("cpu")
        self.flops = sum(c.flops for c in calls)

    def __call__(self) -> None:
        self._session.run(None, self._feed)


def floor_table(
    matmuls: dict[str, list[Matmul]],
    device: torch.device,
    iterations: int,
    repeats: int = 20,
    runtime: str = "torch",
    threads: int = 0,
) -> dict[str, dict[str, float]]:
    """Per stage (and ``plan``: encode + policy + init + ``iterations`` x iteration +
    select): ``mflop``, ``floor_ms`` and the floor's ``gflops`` rate, measured now with
    ``runtime`` ('torch' on ``device``, or 'onnx': ONNX Runtime on the CPU)."""
    out: dict[str, dict[str, float]] = {}
    for stage in STAGES:
        calls = matmuls[stage]
        if runtime == "onnx" and calls:
            replay: FloorReplay = OnnxFloorReplay(calls, threads)
        else:
            replay = FloorReplay(calls, device)
        ms = replay.time_ms(repeats) if replay.calls else 0.0
        out[stage] = {"mflop": replay.flops / 1e6, "floor_ms": ms}
    weights = {"iteration": iterations}
    out["plan"] = {
        key: sum(out[s][key] * weights.get(s, 1) for s in STAGES) for key in ("mflop", "floor_ms")
    }
    for row in out.values():
        row["gflops"] = row["mflop"] / row["floor_ms"] if row["floor_ms"] > 0 else float("nan")
    return out
