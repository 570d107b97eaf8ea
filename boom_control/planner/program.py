"""A whole MPPI plan as one compiled program, one per iteration count.

Two runtimes: :class:`OnnxPrograms` (ONNX Runtime on a CPU) and :class:`GraphPrograms` (one
CUDA graph replay on a GPU).

:func:`whole_plan` is the planner's own functions composed (policy trajectories, warm start,
``k`` iterations, selection) with the noise of :func:`~boom_control.planner.mppi.draw_noise`
as inputs, so a program computes exactly what the step-by-step planner computes on the
same noise. :class:`OnnxPrograms` exports it for ``k = 1..I`` from a bundle's weights to
ONNX and runs each in one ONNX Runtime session call: on a CPU that removes the per-call
and per-operator overhead of driving the plan from Python (a 1M 16 x 1 plan in ~2.5 ms
instead of ~5 ms on a 2-core EPYC, see BENCHMARKS.md). An anytime planner picks the largest
``k`` whose measured cost fits the time left
(:func:`~boom_control.planner.anytime.plan_anytime`).

Programs are exported once per weights, planner constants and ``k`` and kept in a cache
folder (``$BOOM_CACHE_DIR``, else ``~/.cache/boom-control``); a cache that cannot be
written falls back to a temporary folder.

Shapes: H horizon, N samples, P policy trajectories, E elites, A action dim, L latent dim.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from boom_control.errors import BackendError
from boom_control.planner.cuda_graph import StaticGraph
from boom_control.planner.mppi import (
    PlanConstants,
    PlanModel,
    PlanNoise,
    draw_noise,
    initial_state,
    plan_init,
    plan_iteration,
    plan_select,
)
from boom_control.planner.types import PlanState

log = logging.getLogger(__name__)

OPSET = 17
PROGRAM_VERSION = 2
"""Part of every cached program's key: raise it when what a program computes or is named
changes, so stale cache files are not read."""
INPUTS = ("z", "mean", "valid", "pi_traj", "samples", "value_pi", "heads", "select", "explore")
"""Program inputs: the latent ``(1, L)``, the warm start (``mean (H, A)``, ``valid ()``
bool) and the noise of :class:`PlanNoise` sliced to ``k`` iterations (``explore``: its
``action``). Inputs a program does not read are left out of its graph."""
OUTPUTS = ("action", "mu", "std", "next_mean")
"""Program outputs: the eval-mode action, ``mu`` and ``std`` ``(A,)``, the next warm start
``(H, A)`` (valid)."""


def whole_plan(
    model: PlanModel,
    consts: PlanConstants,
    z: torch.Tensor,
    state: PlanState,
    noise: PlanNoise,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
    """An eval-mode plan of ``k`` iterations from ``z (1, L)`` (noise of at least ``k``)."""
    it = plan_init(model, z, state, consts, noise)
    for i in range(k):
        it = plan_iteration(model, it, consts, noise.samples[i], noise.value_pi[i], noise.heads[i])
    return plan_select(it, consts, noise, eval_mode=True)


class PlanProgram(nn.Module):
    """:func:`whole_plan` of ``k`` iterations as a module with tensor inputs (for export).

    With two Q heads both are read whatever the draw, and their mean does not depend on
    the order: the program reads them as a constant pair (its weights then need no
    per-call gather).
    """

    def __init__(self, model: nn.Module, consts: PlanConstants, k: int) -> None:
        super().__init__()
        self.model, self.consts, self.k = model, consts, k

    def forward(self, z, mean, valid, pi_traj, samples, value_pi, heads, select, explore):
        if self.consts.num_q == 2:
            heads = torch.arange(2).expand(self.k, 2)
        noise = PlanNoise(pi_traj, samples, value_pi, heads, select, explore)
        act, mu, std, nxt = whole_plan(
            self.model, self.consts, z, PlanState(mean, valid), noise, self.k
        )
        return act, mu, std, nxt.mean


def cache_dir() -> Path:
    """The folder of exported plan programs (``$BOOM_CACHE_DIR/plans``, else
    ``~/.cache/boom-control/plans``; a temporary folder when that cannot be written)."""
    root = os.environ.get("BOOM_CACHE_DIR") or Path.home() / ".cache" / "boom-control"
    folder = Path(root) / "plans"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            return folder
    except OSError as err:
        fallback = Path(tempfile.mkdtemp(prefix="boom-plans-"))
        log.warning("plan cache %s is not writable (%s); using %s", folder, err, fallback)
        return fallback


def _key(model: nn.Module, consts: PlanConstants, k: int) -> str:
    """Content hash of what a program depends on: weights, constants, k, exporter."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return program_digest(h, consts, k)


def program_digest(h, consts: PlanConstants, k: int, kind: str = "baked") -> str:
    """Finish the cache key ``h`` (a hashlib object holding what the model contributes)
    with the planner constants, ``k``, the kind of program and the exporter's versions."""
    fields = dataclasses.asdict(consts)
    fields["discounts"] = consts.discounts.tolist()
    h.update(repr(sorted(fields.items())).encode())
    h.update(
        f"{kind}/{k}/{PROGRAM_VERSION}/{OPSET}/{torch.__version__}/{INPUTS}/{OUTPUTS}".encode()
    )
    return h.hexdigest()[:24]


def export_program(
    model: nn.Module, consts: PlanConstants, k: int, path: Path, weights_as_inputs: bool = False
) -> None:
    """Write the ``k``-iteration program of ``model`` (on the CPU) to ``path`` as ONNX.

    ``weights_as_inputs``: the model's parameters and buffers become graph inputs named
    ``model.<name>`` (no constant folding, so each such input is a tensor of the model byte
    for byte) instead of weights baked into the graph. The model's train/eval modes are
    left as they were.
    """
    modes = {m: m.training for m in model.modules()}
    program = PlanProgram(model, consts, k).eval()
    inputs = example_inputs(consts, k, int(model.cfg.latent_dim))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python ints in the unrolled plan
            torch.onnx.export(
                program,
                inputs,
                str(tmp),
                opset_version=OPSET,
                dynamo=False,
                export_params=not weights_as_inputs,
                do_constant_folding=not weights_as_inputs,
                input_names=list(INPUTS),
                output_names=list(OUTPUTS),
            )
        tmp.replace(path)  # whole or nothing: a reader never sees a half-written program
    finally:
        for m, training in modes.items():
            m.train(training)
        tmp.unlink(missing_ok=True)


def open_program(path: Path, export, opts):
    """An ONNX Runtime (CPU) session of the cached program ``path``, written by
    ``export(path)`` first when it is not there, and again when the file is damaged."""
    import onnxruntime as ort

    if not path.is_file():
        log.info("exporting the plan program %s", path)
        export(path)
    cpu = ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), opts, providers=cpu)
    except Exception as err:  # a damaged cache file: export it again
        log.warning("plan program %s unreadable (%s); exporting it again", path, err)
        export(path)
        return ort.InferenceSession(str(path), opts, providers=cpu)


def example_inputs(consts: PlanConstants, k: int, latent: int) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes for a ``k``-iteration program (zeros and fresh noise)."""
    cpu = torch.device("cpu")
    state = initial_state(consts, cpu)
    noise = draw_noise(dataclasses.replace(consts, iterations=k), cpu)
    return (torch.zeros(1, latent), state.mean, state.valid, *noise)


class OnnxPrograms:
    """The programs ``k = 1..consts.iterations`` of a world model in ONNX Runtime (CPU).

    Args:
        model: the eager world model (its weights are exported; Mish is exported in the
            one-sigmoid form, which ONNX Runtime computes several times faster).
        consts: planner constants.
        threads: ONNX Runtime intra-op threads (0: its default).
    """

    def __init__(self, model: nn.Module, consts: PlanConstants, threads: int = 0) -> None:
        model = model.to("cpu").eval().with_mish("fast")
        self.model, self.consts, self._threads = model, consts, threads
        self._folder: Path | None = None
        self._sessions: dict[int, object] = {}
        self._names: dict[int, list[str]] = {}

    @property
    def iterations(self) -> int:
        """The largest ``k``."""
        return self.consts.iterations

    def prepare(self, k: int) -> None:
        """Have the ``k``-iteration program ready (exported or read from the cache), so that
        the next call's time is the plan's own."""
        self.session(k)

    def session(self, k: int):
        """The ONNX Runtime session of the ``k``-iteration program, exported (or read from
        the cache) on first use."""
        if k in self._sessions:
            return self._sessions[k]
        if not 1 <= k <= self.iterations:
            raise BackendError(f"no {k}-iteration program (1..{self.iterations})")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._threads:
            opts.intra_op_num_threads = self._threads
            opts.inter_op_num_threads = 1
        consts = dataclasses.replace(self.consts, iterations=k)  # what the program depends on
        if self._folder is None:
            self._folder = cache_dir()
        path = self._folder / f"plan-{_key(self.model, consts, k)}.onnx"
        sess = open_program(path, lambda p: export_program(self.model, consts, k, p), opts)
        self._sessions[k] = sess
        self._names[k] = [i.name for i in sess.get_inputs()]
        return sess

    def __call__(
        self, k: int, z: torch.Tensor, state: PlanState, noise: PlanNoise
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """The ``k``-iteration plan: action, mu, std ``(A,)`` and the next state."""
        sess = self.session(k)
        values = {
            "z": z,
            "mean": state.mean,
            "valid": state.valid,
            "pi_traj": noise.pi_traj,
            "samples": noise.samples[:k],
            "value_pi": noise.value_pi[:k],
            "heads": noise.heads[:k],
            "select": noise.select,
            "explore": noise.action,
        }
        feed = {n: values[n].detach().cpu().numpy() for n in self._names[k]}
        action, mu, std, mean = (torch.from_numpy(np.asarray(o)) for o in sess.run(None, feed))
        valid = torch.ones((), dtype=torch.bool)
        return action, mu, std, PlanState(mean, valid)


class GraphPrograms:
    """The programs ``k = 1..consts.iterations`` of an eager world model on a GPU, each one
    CUDA graph (:class:`~boom_control.planner.cuda_graph.StaticGraph`) captured at its first
    call (a backend's warm-up calls every ``k``): a plan is one replay instead of the
    encoder-to-selection kernels launched one by one. Not thread-safe per ``k`` (one set
    of static tensors each); the controller plans from one thread.
    """

    def __init__(self, model: PlanModel, consts: PlanConstants) -> None:
        self.model, self.consts = model, consts
        self._graphs: dict[int, StaticGraph] = {}

    @property
    def iterations(self) -> int:
        """The largest ``k``."""
        return self.consts.iterations

    def prepare(self, k: int) -> None:
        """Check ``k``; the graph itself is captured at its first call (it needs inputs)."""
        self._graph(k)

    def _graph(self, k: int) -> StaticGraph:
        if not 1 <= k <= self.iterations:
            raise BackendError(f"no {k}-iteration program (1..{self.iterations})")
        if k not in self._graphs:

            def program(z, mean, valid, pi_traj, samples, value_pi, heads, select, explore):
                noise = PlanNoise(pi_traj, samples, value_pi, heads, select, explore)
                state = PlanState(mean, valid)
                act, mu, std, nxt = whole_plan(self.model, self.consts, z, state, noise, k)
                return act, mu, std, nxt.mean

            self._graphs[k] = StaticGraph(program)
        return self._graphs[k]

    def __call__(
        self, k: int, z: torch.Tensor, state: PlanState, noise: PlanNoise
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, PlanState]:
        """The ``k``-iteration plan: action, mu, std ``(A,)`` and the next state."""
        sliced = (noise.samples[:k], noise.value_pi[:k], noise.heads[:k])
        with torch.inference_mode():
            action, mu, std, mean = self._graph(k)(
                z, state.mean, state.valid, noise.pi_traj, *sliced, noise.select, noise.action
            )
        valid = torch.ones((), dtype=torch.bool, device=mean.device)
        return action, mu, std, PlanState(mean, valid)
