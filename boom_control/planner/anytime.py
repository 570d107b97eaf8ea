"""Anytime MPPI under a deadline, and a worker thread that plans while the loop keeps time.

:func:`plan_anytime` runs the policy trajectories, then MPPI iterations one by one, and
stops before an iteration that the online cost estimate (:class:`CostTracker`) says would
end after the deadline. :class:`PlanWorker` runs it in a thread so the control loop can send
its fallback on time even when a plan overruns; a late result is still handed back (it
warm-starts the next tick).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from boom_control.planner.backends import PlannerBackend
from boom_control.planner.mppi import PlanNoise, initial_state
from boom_control.planner.types import PlanState

log = logging.getLogger(__name__)


class CostTracker:
    """Online estimate of one MPPI iteration's wall time.

    ``estimate = margin * max(EWMA, q-quantile of the last `window` samples)``: the EWMA
    follows drifts, the high quantile guards against the jitter of a shared machine without
    letting a single stall block planning for a whole window.
    """

    def __init__(
        self,
        alpha: float = 0.2,
        window: int = 20,
        quantile: float = 0.9,
        margin: float = 1.1,
        probe_every: int = 10,
    ) -> None:
        self.alpha, self.quantile, self.margin = alpha, quantile, margin
        self.probe_every = self._probe_base = probe_every
        self.ewma: float | None = None
        self.recent: deque[float] = deque(maxlen=window)
        self.starved = 0
        """Consecutive plans in which no iteration fitted; at ``probe_every`` one iteration
        runs anyway so that an estimate inflated by a one-off stall can come down again
        (:meth:`probed` backs off when probes keep overrunning)."""
        self.programs: dict[int, CostTracker] = {}
        """Backends with whole-plan programs: the cost of a plan of k iterations, per k."""

    def add(self, seconds: float) -> None:
        self.ewma = seconds if self.ewma is None else self.ewma + self.alpha * (seconds - self.ewma)
        self.recent.append(seconds)

    def probed(self, fitted: bool, most: int = 500) -> None:
        """After a probe: probe again soon if it fitted, else back off (doubling, up to
        ``most`` plans) so a budget no iteration can fit costs little CPU."""
        self.probe_every = self._probe_base if fitted else min(2 * self.probe_every, most)

    def program(self, k: int) -> CostTracker:
        """The tracker of whole plans of ``k`` iterations (one per ``k``, same settings)."""
        if k not in self.programs:
            self.programs[k] = CostTracker(
                self.alpha, self.recent.maxlen or 20, self.quantile, self.margin
            )
        return self.programs[k]

    def estimate(self) -> float:
        """Seconds one more iteration is expected to take (0 before any sample)."""
        if self.ewma is None:
            return 0.0
        ordered = sorted(self.recent)
        high = ordered[int(self.quantile * (len(ordered) - 1))]
        return self.margin * max(self.ewma, high)


@dataclass
class PlanJob:
    """A plan request: latent ``z (1, L)``, warm start, noise, and the planning deadline."""

    tick: int
    z: torch.Tensor
    state: PlanState
    noise: PlanNoise
    deadline: float


@dataclass
class PlanResult:
    """Outcome of a (possibly partial) plan.

    ``action (A,)`` is None when not even one iteration fitted; ``state`` is the next warm
    start (None then too). Times in milliseconds.
    """

    tick: int
    action: np.ndarray | None
    state: PlanState | None
    iterations: int
    iter_ms: list[float] = field(default_factory=list)
    begin_ms: float = 0.0
    select_ms: float = 0.0
    plan_ms: float = 0.0
    finished_at: float = 0.0


def plan_anytime(backend: PlannerBackend, job: PlanJob, tracker: CostTracker) -> PlanResult:
    """Plan until the deadline: as many iterations as fit, then select.

    A backend with whole-plan programs runs the one of the most iterations whose measured
    cost fits the time left (:func:`plan_program`); the others run the policy trajectories,
    then iterations one by one while the next one's estimate fits. After
    ``tracker.probe_every`` plans without any iteration, one iteration runs regardless of
    the estimate (a probe; in real time it runs in the planning thread, so an overrun costs
    a fallback, never a late send).
    """
    if backend.programs is not None:
        return plan_program(backend, job, tracker)
    clock = time.monotonic
    force_one = tracker.starved >= tracker.probe_every
    t0 = clock()
    run = backend.begin(job.z, job.state, job.noise)
    backend.sync()
    t1 = clock()
    iter_ms = []
    for i in range(backend.consts.iterations):
        start = clock()
        if start + tracker.estimate() > job.deadline and not (force_one and i == 0):
            break
        run = backend.iterate(run, i)
        backend.sync()
        dt = clock() - start
        tracker.add(dt)
        iter_ms.append(dt * 1e3)
        if force_one and i == 0:
            tracker.probed(fitted=clock() <= job.deadline)
    tracker.starved = 0 if run.done else tracker.starved + 1
    if run.done == 0:
        end = clock()
        return PlanResult(job.tick, None, None, 0, [], (t1 - t0) * 1e3, 0.0, (end - t0) * 1e3, end)
    t2 = clock()
    action, _, _, state = backend.select(run)
    action = action.float().cpu().numpy()
    end = clock()
    return PlanResult(
        job.tick,
        action,
        state,
        run.done,
        iter_ms,
        (t1 - t0) * 1e3,
        (end - t2) * 1e3,
        (end - t0) * 1e3,
        end,
    )


def plan_program(backend: PlannerBackend, job: PlanJob, tracker: CostTracker) -> PlanResult:
    """One whole-plan program call: the largest ``k`` whose cost estimate fits the time
    left (``tracker.program(k)``, measured per ``k``), or none (a probe of ``k = 1`` after
    ``tracker.probe_every`` plans without any)."""
    clock = time.monotonic
    t0 = clock()
    k = next(
        (
            k
            for k in range(backend.consts.iterations, 0, -1)
            if t0 + tracker.program(k).estimate() <= job.deadline
        ),
        0,
    )
    probe = k == 0 and tracker.starved >= tracker.probe_every
    if k == 0 and not probe:
        tracker.starved += 1
        end = clock()
        return PlanResult(job.tick, None, None, 0, [], 0.0, 0.0, (end - t0) * 1e3, end)
    k = k or 1
    if not tracker.program(k).recent:
        backend.programs.prepare(k)  # a first use exports or loads it: not the plan's cost
        t0 = clock()
    action, _, _, state = backend.plan_k(job.z, job.state, job.noise, k)
    backend.sync()
    action = action.float().cpu().numpy()
    end = clock()
    tracker.program(k).add(end - t0)
    if probe:
        tracker.probed(fitted=end <= job.deadline)
    tracker.starved = 0
    return PlanResult(job.tick, action, state, k, [], 0.0, 0.0, (end - t0) * 1e3, end)


def measure_programs(backend: PlannerBackend, tracker: CostTracker, obs_dim: int) -> None:
    """Time every program of ``backend`` once into ``tracker`` (after a warm-up), so the
    first real plans already know what fits."""
    z = backend.encode(torch.zeros(1, obs_dim, device=backend.device))
    state = initial_state(backend.consts, backend.device)
    for k in range(1, backend.consts.iterations + 1):
        noise = backend.draw_noise()
        start = time.monotonic()
        backend.plan_k(z, state, noise, k)
        backend.sync()
        tracker.program(k).add(time.monotonic() - start)


class PlanWorker:
    """One planning thread with a single job slot.

    ``submit`` hands a job over when the worker is idle; ``wait(tick, until)`` returns the
    result of that tick's job if it finishes by ``until``; ``take_finished`` returns any
    finished result not collected yet (a late plan). An exception in the worker is raised
    again in the caller by the next call.

    With ``warmup_obs_dim`` the thread first plans once on a zero observation, and the
    constructor returns when it has: the first plan in a new thread pays for per-thread
    state (thread pools and arenas, a CUDA thread's BLAS handle), which otherwise makes
    the first tick's plan late (on an H200 the first tick of a run ended ~50 ms after it
    started, on a CPU its plan missed the deadline).
    """

    def __init__(
        self,
        backend: PlannerBackend,
        tracker: CostTracker,
        rt_priority: int = 0,
        warmup_obs_dim: int | None = None,
    ) -> None:
        self.backend, self.tracker, self.rt_priority = backend, tracker, rt_priority
        self._cv = threading.Condition()
        self._job: PlanJob | None = None
        self._result: PlanResult | None = None
        self._error: BaseException | None = None
        self._busy = False
        self._stop = False
        self._warmup_obs_dim = warmup_obs_dim
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="boom-planner", daemon=True)
        self._thread.start()
        self._ready.wait()
        self._check()

    @property
    def busy(self) -> bool:
        return self._busy

    def _main(self) -> None:
        if self.rt_priority > 0:  # below the loop's: the loop still preempts it
            try:
                os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.rt_priority))
            except (AttributeError, OSError) as err:
                log.warning("planner thread: no real-time priority (%s)", err)
        try:
            if self._warmup_obs_dim is not None:
                self.backend.warmup(self._warmup_obs_dim, rounds=1)
                if self.backend.programs is not None:
                    measure_programs(self.backend, self.tracker, self._warmup_obs_dim)
        except BaseException as err:  # raised in the constructor
            self._error, self._stop = err, True
        finally:
            self._ready.set()
        while True:
            with self._cv:
                while self._job is None and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                job = self._job
            try:
                result = plan_anytime(self.backend, job, self.tracker)
            except BaseException as err:  # handed to the loop thread
                result, self._error = None, err
            with self._cv:
                self._result, self._job, self._busy = result, None, False
                self._cv.notify_all()

    def _check(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError(f"planner failed: {err!r}") from err

    def submit(self, job: PlanJob) -> bool:
        """Start ``job`` if idle; False (nothing done) while a previous plan still runs."""
        self._check()
        with self._cv:
            if self._busy:
                return False
            self._job, self._busy = job, True
            self._cv.notify_all()
            return True

    def wait(self, tick: int, until: float) -> PlanResult | None:
        """The result of ``tick``'s job if it is ready by monotonic time ``until``."""
        with self._cv:
            while self._busy:
                remaining = until - time.monotonic()
                if remaining <= 0:
                    break
                self._cv.wait(remaining)
            self._check()
            if not self._busy and self._result is not None and self._result.tick == tick:
                result, self._result = self._result, None
                return result
            return None

    def take_finished(self) -> PlanResult | None:
        """A finished result not collected yet (e.g. a plan that came too late)."""
        with self._cv:
            self._check()
            if self._busy or self._result is None:
                return None
            result, self._result = self._result, None
            return result

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout)
