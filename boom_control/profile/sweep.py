"""Live measurement of planning latency: every stage, over samples x iterations x precision.

One *repetition* is what a control tick computes: copy the observation to the device
(``h2d``), ``encode``, the ``policy`` action (the fallback), ``init`` (policy trajectories and
the warm-started sampling distribution), I MPPI iterations, ``select`` (elite choice and
warm-start shift) and the copy of the action back to the host (``d2h``). ``plan`` is the
whole repetition timed end to end. On CUDA every boundary is synchronised
(``torch.cuda.synchronize``) before the clock is read, so a stage's time includes its
kernels, not only their launch. Warm-up repetitions run first and are not recorded; the
plan state is carried from one repetition to the next as in a real controller.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch

from boom_control.control.factory import build_backend
from boom_control.planner.mppi import (
    initial_state,
)
from boom_control.profile.load import LoadMonitor, LoadReport
from boom_control.profile.stats import summarize

log = logging.getLogger(__name__)

STAGES = ("h2d", "encode", "policy", "init", "iteration", "select", "program", "d2h", "plan")
"""Stages recorded per cell (``iteration`` pools every MPPI iteration). ``program`` is the
planning itself, policy trajectories to selection: the sum of ``init``, the iterations and
``select`` on a backend that steps them, one call on a backend with whole-plan programs
(whose ``init``, ``iteration`` and ``select`` are then not measured: empty)."""

PRECISIONS = {
    "torch": ("fp32", "bf16"),
    "cudagraph": ("fp32", "bf16"),
    "torchscript": ("fp32",),
    "onnx": ("fp32",),
}
"""Precisions each backend offers (bf16: autocast of the eager evaluation)."""


@dataclass(frozen=True)
class SweepConfig:
    """What to measure and for how long."""

    samples: tuple[int, ...] = (64, 128, 256, 512)
    """MPPI sample counts N."""
    iterations: tuple[int, ...] = (1, 2, 4, 6, 8)
    """MPPI iteration counts I."""
    precisions: tuple[str, ...] = ("fp32",)
    """Precisions to measure (see :data:`PRECISIONS`)."""
    repeats: int = 1000
    """Recorded repetitions per cell (enough for a p99.9), unless the time cap cuts them."""
    min_repeats: int = 30
    """Fewest recorded repetitions per cell whatever the time cap."""
    warmup: int = 20
    """Unrecorded repetitions before each cell."""
    max_seconds: float = 300.0
    """Time cap of the whole sweep, shared equally by the cells."""
    seed: int = 0
    """Seed of the observations and the pre-drawn planner noise."""


@dataclass
class CellTimings:
    """Raw per-repetition times (ms) of one cell; ``iter`` is ``(repeats, I)``."""

    samples: int
    iterations: int
    precision: str
    repeats: int
    capped: bool
    times: dict[str, np.ndarray] = field(default_factory=dict)

    def stage_times(self, stage: str) -> np.ndarray:
        """Times of a stage; ``iteration`` flattens every iteration of every repetition."""
        if stage == "iteration":
            return self.times["iter"].reshape(-1)
        return self.times[stage]

    def to_json(self) -> dict:
        stages = {s: summarize(self.stage_times(s)) for s in STAGES}
        for k in range(self.iterations):
            stages[f"iter_{k + 1}"] = summarize(self.times["iter"][:, k])
        return {
            "samples": self.samples,
            "iterations": self.iterations,
            "precision": self.precision,
            "repeats": self.repeats,
            "capped": self.capped,
            "stages": stages,
        }


def make_stages(
    bundle, backend: str, device: str, threads: int, precision: str, samples: int,
    iterations: int,
):  # fmt: skip
    """The planner backend measured for one cell: the controller's own
    (:func:`boom_control.control.factory.build_backend`), so the profile measures exactly
    what ``boom control`` runs."""
    return build_backend(
        bundle, backend, device, threads=threads, bf16=precision == "bf16", samples=samples,
        iterations=iterations,
    )  # fmt: skip


def make_clock(device: torch.device) -> Callable[[], float]:
    """A clock in ms that first waits for the device's queued work (CUDA)."""
    if device.type == "cuda":

        def clock() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter_ns() * 1e-6

        return clock
    return lambda: time.perf_counter_ns() * 1e-6


def precision_context(precision: str, device: torch.device) -> AbstractContextManager:
    """Autocast for ``bf16``; nothing for ``fp32``."""
    if precision == "fp32":
        return nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    raise ValueError(f"unknown precision {precision!r}; use fp32 or bf16")


def _run_reps(stages, noises, observations, clock, reps: int, state, out=None):
    """Run ``reps`` repetitions; record into ``out`` (dict of arrays) when given."""
    k, device, iterations = len(noises), stages.device, stages.consts.iterations
    for r in range(reps):
        noise, obs = noises[r % k], observations[r % k]
        t0 = clock()
        x = torch.from_numpy(obs).to(device).unsqueeze(0)
        t1 = clock()
        z = stages.encode(x)
        t2 = clock()
        stages.policy_action(z)
        t3 = clock()
        if stages.programs is not None:
            action, _, _, state = stages.plan_k(z, state, noise, iterations)
            t6 = clock()
        else:
            run = stages.begin(z, state, noise)
            t4 = clock()
            iters = []
            for i in range(iterations):
                run = stages.iterate(run, i)
                iters.append(clock())
            t5 = clock()
            action, _, _, state = stages.select(run)
            t6 = clock()
        action.float().cpu().numpy()
        t7 = clock()
        if out is not None:
            out["h2d"][r], out["encode"][r], out["policy"][r] = t1 - t0, t2 - t1, t3 - t2
            out["program"][r], out["d2h"][r], out["plan"][r] = t6 - t3, t7 - t6, t7 - t0
            if stages.programs is None:
                out["init"][r] = t4 - t3
                out["iter"][r] = np.diff(np.asarray([t4, *iters]))
                out["select"][r] = t6 - t5
    return state


def measure_cell(
    stages,
    obs_dim: int,
    precision: str,
    repeats: int,
    warmup: int,
    seconds: float,
    min_repeats: int = 30,
    seed: int = 0,
) -> CellTimings:
    """Time ``repeats`` repetitions of a backend (fewer when they would take longer than
    ``seconds``, but at least ``min_repeats``) after ``warmup`` unrecorded ones.

    Args:
        stages: a controller backend (``encode``, ``policy_action``, ``begin``, ``iterate``,
            ``select``, ``draw_noise``, ``consts``, ``device``); obs_dim: observation size.
    """
    device, consts = stages.device, stages.consts
    clock = make_clock(device)
    gen = np.random.default_rng(seed)
    torch.manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed)
    noises = [stages.draw_noise(noise_gen) for _ in range(4)]
    observations = [gen.standard_normal(obs_dim).astype(np.float32) for _ in range(4)]
    state = initial_state(consts, device)
    with torch.inference_mode():
        start = clock()
        state = _run_reps(stages, noises, observations, clock, max(warmup, 1), state)
        per_rep = (clock() - start) / max(warmup, 1)
        fit = int(seconds * 1000.0 / max(per_rep, 1e-6))
        n = max(min(repeats, fit), min(min_repeats, repeats))
        stepped = n if stages.programs is None else 0  # whole plans: no inner stages
        out = {s: np.zeros(n) for s in ("h2d", "encode", "policy", "program", "d2h", "plan")}
        out.update(init=np.zeros(stepped), select=np.zeros(stepped))
        out["iter"] = np.zeros((stepped, consts.iterations))
        _run_reps(stages, noises, observations, clock, n, state, out)
    return CellTimings(consts.num_samples, consts.iterations, precision, n, n < repeats, out)


def set_threads(threads: int, cpus: Sequence[int] | None = None) -> None:
    """Torch intra-op threads (``threads > 0``) and CPU affinity of this process."""
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    if threads > 0:
        torch.set_num_threads(threads)


@dataclass
class SweepResult:
    """Timings of every cell, the CPU load during the sweep and the device really used."""

    cells: list[CellTimings]
    load: LoadReport
    device_used: str


def run_sweep(
    bundle,
    backend: str,
    device: str,
    threads: int,
    cfg: SweepConfig,
    progress: Callable[[CellTimings], None] | None = None,
) -> SweepResult:
    """Measure every (precision, N, I) cell of ``bundle`` on a backend."""
    grid = [(p, n, i) for p in cfg.precisions for n in cfg.samples for i in cfg.iterations]
    per_cell = cfg.max_seconds / max(len(grid), 1)
    cells, used = [], device
    with LoadMonitor() as mon:
        for precision, n, i in grid:
            stages = make_stages(bundle, backend, device, threads, precision, n, i)
            cell = measure_cell(
                stages, bundle.obs_dim, precision, cfg.repeats, cfg.warmup, per_cell,
                cfg.min_repeats, cfg.seed,
            )  # fmt: skip
            cells.append(cell)
            if hasattr(stages, "device_used"):
                used = stages.device_used()
            if progress is not None:
                progress(cell)
    assert mon.report is not None
    return SweepResult(cells, mon.report, used)


def resolution_note(cells: Sequence[CellTimings]) -> str:
    """One line on how far into the tail the repeats resolve."""
    least = min(c.repeats for c in cells)
    if least >= 1000:
        return f"every cell has >= {least} repetitions: p99.9 resolved"
    tail = "p99" if least >= 100 else "p90"
    return (
        f"fewest repetitions in a cell: {least} (time cap); p99.9 is not resolved there "
        f"(it is near the max), {tail} is; raise --max-seconds for more"
    )
