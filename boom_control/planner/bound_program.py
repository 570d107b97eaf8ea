"""A whole MPPI plan in ONNX Runtime over a live torch model's weights (the learner's).

:class:`~boom_control.planner.program.OnnxPrograms` bakes a bundle's fixed weights into each
program. A learner's weights change after every update, so :class:`BoundProgram` exports
the plan once per architecture with the weights as graph *inputs* and, at every call, hands
ONNX Runtime the model's own parameter memory (no copy): an optimiser step in place is seen
by the next plan, and a tensor that was replaced (``load_state_dict`` keeps storage,
``.to()`` does not) is picked up because the pointers are bound per call.

On a CPU one session call per plan removes the per-operator overhead of driving MPPI from
Python: the paper-size 1M plan (512 samples x 8 iterations, humanoid dims, 1 thread) takes
~275-290 ms against ~380-430 ms for eager torch (BENCHMARKS.md). The plan is the same
:func:`~boom_control.planner.program.whole_plan` on the same noise, equal to the torch
planner to float rounding (~1e-6).

Shapes: H horizon, A action dim, L latent dim.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from boom_control.errors import BackendError
from boom_control.planner.mppi import PlanConstants, PlanNoise
from boom_control.planner.program import (
    INPUTS,
    OUTPUTS,
    cache_dir,
    export_program,
    open_program,
    program_digest,
)
from boom_control.planner.types import PlanState

PREFIX = "model."
"""Graph inputs named after the program module's parameters: ``model.<parameter name>``."""


def _architecture_key(model: nn.Module, consts: PlanConstants) -> str:
    """Hash of what a bound program depends on: the model's class, config and tensor
    shapes, the planner constants, the exporter (not the weights' values)."""
    h = hashlib.sha256()
    h.update(f"{type(model).__qualname__}/{getattr(model, 'cfg', None)!r}".encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
    return program_digest(h, consts, consts.iterations, kind="bound")


def export_bound(model: nn.Module, consts: PlanConstants, path: Path) -> None:
    """Write the whole plan of ``model`` (``consts.iterations`` iterations) to ``path`` with
    its parameters and buffers as graph inputs."""
    export_program(model, consts, consts.iterations, path, weights_as_inputs=True)


class BoundProgram:
    """The whole plan of ``model`` (on the CPU) as one ONNX Runtime session call.

    Args:
        model: the world model to plan with; its tensors must stay float32, contiguous and
            on the CPU (they are read at every call, not copied).
        consts: planner constants (``iterations`` of them per plan).
        threads: ONNX Runtime intra-op threads (they do not spin between calls).

    Thread-safe: each call binds its own inputs (evaluation episodes plan concurrently).
    """

    def __init__(self, model: nn.Module, consts: PlanConstants, threads: int = 1) -> None:
        import onnxruntime as ort

        if next(model.parameters()).device.type != "cpu":
            raise BackendError("a bound ONNX plan program needs the model on the CPU")
        self.model, self.consts = model, consts
        path = cache_dir() / f"bound-{_architecture_key(model, consts)}.onnx"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = open_program(path, lambda p: export_bound(model, consts, p), opts)
        names = [i.name for i in self.session.get_inputs()]
        self._inputs = [n for n in names if n in INPUTS]
        self._weights = [n for n in names if n not in INPUTS]
        tensors = self._tensors()
        unknown = [n for n in self._weights if n not in tensors]
        if unknown:
            raise BackendError(f"plan program inputs {unknown} are not tensors of the model")

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {PREFIX + n: p for n, p in self.model.named_parameters()}
        tensors.update({PREFIX + n: b for n, b in self.model.named_buffers()})
        return tensors

    def __call__(self, z: torch.Tensor, state: PlanState, noise: PlanNoise):
        """An eval-mode plan from ``z (1, L)``: ``mu``, ``std`` ``(A,)`` and the next state
        (the training action is drawn around ``mu`` by the caller, see
        :func:`~boom_control.planner.mppi.emit_action`)."""
        io = self.session.io_binding()
        tensors = self._tensors()
        for name in self._weights:
            t = tensors[name].detach()
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
                raise BackendError(f"{name}: a bound plan program reads float32 CPU tensors")
            io.bind_input(name, "cpu", 0, np.float32, list(t.shape), t.data_ptr())
        values = {
            "z": z,
            "mean": state.mean,
            "valid": state.valid,
            "pi_traj": noise.pi_traj,
            "samples": noise.samples,
            "value_pi": noise.value_pi,
            "heads": noise.heads,
            "select": noise.select,
            "explore": noise.action,
        }
        arrays = [np.ascontiguousarray(values[n].detach().cpu().numpy()) for n in self._inputs]
        for name, array in zip(self._inputs, arrays):  # ``arrays`` outlives the run
            io.bind_cpu_input(name, array)
        for name in OUTPUTS:
            io.bind_output(name, "cpu")
        self.session.run_with_iobinding(io)
        _, mu, std, mean = (torch.from_numpy(o) for o in io.copy_outputs_to_cpu())
        return mu, std, PlanState(mean, torch.ones((), dtype=torch.bool))
