"""The fixed-rate control loop: newest observation in, planned (or fallback) action out.

Tick ``k`` starts at ``t0 + k * period`` (absolute deadlines, :class:`~.clock.Ticker`):

1. read the newest observation (lockstep: the step reply). Real time, at the server's
   rate: the loop is phase-locked to the server's ticks, each tick starting ``phase_ms``
   after the server's observation arrives. When none is new at the tick's start the loop
   runs ahead: it waits for the observation (up to the period's slack, so the tick can
   still send) and moves this tick and the later ones to just after it; when one was
   already waiting for long (same-machine clocks), the later ticks move earlier. Without
   that an action planned from a stale observation reaches the server after its next
   tick: one period of extra delay;
2. encode it and compute the policy action ``tanh(mean)`` first: the fallback;
3. hand MPPI to the planning thread, warm-started by the policy trajectories and by the
   last plan shifted by the ticks that really elapsed since it was made;
4. at the planning deadline (``start + budget``) send the plan's action if it is ready,
   else the policy action (a *miss*); the send happens before ``start + budget + margin``
   or not at all (a tick the loop reaches too late is skipped, never sent late);
5. safety (:class:`~.safety.SafetyGuard`), telemetry, live status.

Latency compensation (``compensate``, real time): an action sent in tick ``k`` acts from
the server's next tick on, on the state the server has then. When the observation is
older than that (its ``latency``: age plus the delay the server reports, e.g. a sensor's),
``m = round(latency / period)`` of the actions already sent have acted since it was
produced; the loop predicts the latent through them (oldest first, at most those sent in
this episode, a held command counted again for a tick that sent nothing) and both the
fallback and the plan start from that prediction.

Lockstep bridges get one action per observation, planned in the loop's thread with the
same budget. Noise comes from one generator seeded with ``seed`` (one draw per plan), so a
lockstep run is reproduced by an offline :meth:`PlannerBackend.plan` on the same
observations.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
import torch

from boom_control.control.clock import Ticker
from boom_control.control.report import RunStats, StatusPrinter
from boom_control.control.safety import SafetyGuard, neutral_action
from boom_control.errors import ConfigError
from boom_control.planner.anytime import CostTracker, PlanJob, PlanResult, PlanWorker, plan_anytime
from boom_control.planner.backends import PlannerBackend
from boom_control.planner.mppi import advance, initial_state
from boom_control.planner.types import PlanState
from boom_control.telemetry import TelemetryWriter, TickRecord
from sim_bridge.protocol import ErrorCode

log = logging.getLogger(__name__)


SEND_GUARD_S = 6e-4
"""A send is attempted only if it starts this long before the deadline. It takes ~0.1 ms,
but the loop thread may wait for the GIL at each step of it (the planning thread keeps it
up to the 0.2 ms switch interval at a time): in a 3,000-tick demo run on 2 busy cores its
p99.9 was 0.6 ms (the ``send`` stage of ``boom profile report``)."""
LOCK_TOLERANCE_S = 4e-3
"""Real time: an observation older than ``phase_ms`` plus this at the tick's start moves
the loop's later ticks earlier, to half this after ``phase_ms`` (delivery and wake-up
jitter, ~1 ms, stay below it: the loop does not chase them)."""


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs."""

    rate: float = 50.0
    """Control rate (Hz)."""
    budget_ms: float = 15.0
    """Planning budget from the tick's start; the plan's action must be ready by then."""
    send_margin_ms: float = 1.5
    """After the planning deadline, the send must happen within this margin."""
    phase_ms: float = 1.0
    """Real time: tick starts this long after the server's observation arrives (the loop
    keeps that phase; see the module docstring)."""
    duration: float | None = None
    """Seconds to run (None: until stopped)."""
    max_ticks: int | None = None
    """Ticks to run (None: no limit)."""
    seed: int = 0
    """Seed of the planner's noise generator."""
    policy_only: bool = False
    """Send the policy's action on every tick and never plan: the baseline MPPI is measured
    against, or what a machine runs that cannot plan within any budget."""
    stale_periods: int = 5
    """Ticks without a new observation before the neutral (damping) command."""
    stale_stop_s: float | None = 10.0
    """Stop (cleanly) after this long without any observation (None: never)."""
    status_every: float = 1.0
    """Seconds between live status lines."""
    rt_priority: int = 0
    """Real time: SCHED_FIFO priority of the loop thread (Linux; 0 = normal scheduling)."""
    planner_rt_priority: int = 0
    """SCHED_FIFO priority of the planning thread (0 = normal). Lower than ``rt_priority``;
    it keeps the loop from waiting for the GIL on a planner thread that the OS preempted
    (priority inversion on a loaded machine), at the cost of one core for the planner."""
    compensate: bool = False
    """Real time: plan from the latent predicted forward through the world model's dynamics
    by the actions already sent that act after the observation was produced (as many as
    the observation's measured latency spans periods), instead of from the observation's
    own latent (see the module docstring)."""

    @property
    def period(self) -> float:
        return 1.0 / self.rate

    @property
    def slack(self) -> float:
        """Seconds of a period beyond phase, budget and send margin (> 0 when checked)."""
        return self.period - (self.phase_ms + self.budget_ms + self.send_margin_ms) * 1e-3

    def check(self) -> None:
        """Raise :class:`~boom_control.errors.ConfigError` for settings no tick can keep."""
        if self.planner_rt_priority and self.planner_rt_priority >= self.rt_priority:
            raise ConfigError("the planner's real-time priority must be below the loop's")
        if self.send_margin_ms * 1e-3 <= SEND_GUARD_S:
            raise ConfigError(
                f"the send margin ({self.send_margin_ms:g} ms) must exceed the send guard "
                f"({SEND_GUARD_S * 1e3:g} ms), or no tick could ever send"
            )
        period_ms = 1e3 / self.rate
        used = self.budget_ms + self.send_margin_ms + self.phase_ms
        if self.budget_ms <= 0 or used >= period_ms:
            raise ConfigError(
                f"--budget-ms {self.budget_ms:g} + send margin {self.send_margin_ms:g} + phase "
                f"{self.phase_ms:g} ms must stay below the period ({period_ms:.2f} ms)"
            )


class Controller:
    """Runs a planner backend against a connected :class:`BridgeClient`.

    Args:
        backend: the planner.
        client: a connected bridge client (lockstep or real time).
        cfg: loop settings.
        telemetry: per-tick log (optional).
        status: stream for the live status line (None: quiet).
        record: keep ``(obs, action)`` of every tick in :attr:`trace` (tests).
    """

    def __init__(
        self,
        backend: PlannerBackend,
        client,
        cfg: LoopConfig,
        telemetry: TelemetryWriter | None = None,
        status: IO[str] | None = sys.stderr,
        record: bool = False,
    ) -> None:
        cfg.check()
        self.backend, self.client, self.cfg = backend, client, cfg
        self.telemetry = telemetry
        self.stats = RunStats()
        self.status = StatusPrinter(status, cfg.status_every)
        info = client.info
        self.realtime = info.mode == "realtime"
        self.action_dim = info.action_dim
        self.guard = SafetyGuard(
            neutral_action(info.raw.get("action_mapping"), info.action_dim), cfg.stale_periods
        )
        self.tracker = CostTracker()
        self.generator = torch.Generator(device=backend.device).manual_seed(cfg.seed)
        self.stop_event = threading.Event()
        self.trace: list[tuple[np.ndarray, np.ndarray]] | None = [] if record else None
        self.stop_reason = ""
        self._record = record
        self._warm: tuple[int, PlanState] | None = None  # (tick planned at, next state)
        self._sent: deque[np.ndarray] = deque(maxlen=64)  # commands in force, oldest first
        self._restarts = client.restarts
        self._errors_seen = getattr(client, "error_count", 0)
        self._episode: int | None = None  # the server's number of the running episode
        self._error_codes: dict[str, int] = {}  # server error replies by code
        self._t0 = time.monotonic()

    # ------------------------------------------------------------------ planning
    def _initial_state(self) -> PlanState:
        return initial_state(self.backend.consts, self.backend.device)

    def _warm_start(self, tick: int) -> PlanState:
        if self._warm is None:
            return self._initial_state()
        made_at, state = self._warm
        return advance(state, tick - made_at - 1)  # plan_select already advanced it one

    def _keep(self, result: PlanResult | None) -> None:
        if result is None or result.state is None:
            return
        if not bool(torch.isfinite(result.state.mean).all()):  # never warm-start from NaN
            return
        if self._warm is None or result.tick >= self._warm[0]:
            self._warm = (result.tick, result.state)

    def _new_episode(self) -> None:
        self._warm = None
        self._sent.clear()

    def _in_force(self, command: np.ndarray | None) -> None:
        """Real time: the command acting from the server's next tick (``None``: nothing
        was sent this tick, the server holds the last one)."""
        if command is not None:
            self._sent.append(np.array(command, dtype=np.float32))
        elif self._sent:
            self._sent.append(self._sent[-1])

    def _compensated(self, z: torch.Tensor, ob, rec: TickRecord) -> torch.Tensor:
        """``z`` predicted through the sent actions that acted after ``ob`` was produced."""
        rec.obs_latency_ms = ob.latency * 1e3
        if not (self.cfg.compensate and self.realtime):
            return z
        m = min(round(ob.latency / self.cfg.period), len(self._sent))
        if m <= 0:
            return z
        acts = np.stack(list(self._sent)[-m:])
        rec.compensated = m
        acts_t = torch.as_tensor(acts, dtype=torch.float32, device=self.backend.device)
        return self.backend.predict(z, acts_t)

    # ------------------------------------------------------------------ one tick
    def _tick(self, k: int, start: float, ob, fresh: bool, worker: PlanWorker | None):
        """Compute the command of tick ``k``; returns (command, guard source, record, missed)."""
        cfg, rel = self.cfg, self._t0
        plan_deadline = start + cfg.budget_ms * 1e-3
        rec = TickRecord(
            tick=k,
            t_deadline=plan_deadline + cfg.send_margin_ms * 1e-3 - rel,
            t_recv=time.monotonic() - rel,
            t_send=0.0,
            obs_age_ms=ob.age * 1e3 if ob is not None else -1.0,
            obs_seq=ob.seq if ob is not None else -1,
            encode_ms=0.0,
            policy_ms=0.0,
        )
        stale = self.guard.observe(fresh)
        obs_ok = ob is not None and self.guard.obs_ok(ob.control_obs)
        candidate, missed = None, False
        if obs_ok and not stale:
            t = time.monotonic()
            obs = torch.tensor(ob.control_obs, dtype=torch.float32, device=self.backend.device)
            z = self._compensated(self.backend.encode(obs.unsqueeze(0)), ob, rec)
            t1 = time.monotonic()
            policy = self.backend.policy_action(z).float().cpu().numpy()
            t2 = time.monotonic()
            rec.encode_ms, rec.policy_ms = (t1 - t) * 1e3, (t2 - t1) * 1e3
            if cfg.policy_only:
                candidate, rec.action_source = policy, "policy"
            else:
                candidate, missed = self._plan(k, z, policy, rec, plan_deadline, worker)
        command, source = self.guard.command(candidate, obs_ok, stale)
        if source != "ok":
            rec.action_source, rec.fallback = source, True
        rec.alarm = self.guard.alarm
        return command, source, rec, missed

    def _plan(
        self,
        k: int,
        z: torch.Tensor,
        policy: np.ndarray,
        rec: TickRecord,
        plan_deadline: float,
        worker: PlanWorker | None,
    ) -> tuple[np.ndarray, bool]:
        """MPPI for tick ``k`` from ``z (1, L)`` by ``plan_deadline``: the plan's action,
        or ``policy (A,)`` when no plan is ready; and whether the plan missed (``rec`` gets
        the plan's timings and the action's source)."""
        if worker is not None:
            self._keep(worker.take_finished())  # a late plan still warm-starts
        job = PlanJob(
            k, z, self._warm_start(k), self.backend.draw_noise(self.generator), plan_deadline
        )
        if worker is None:
            result = plan_anytime(self.backend, job, self.tracker)
        else:
            result = worker.wait(k, plan_deadline) if worker.submit(job) else None
        self._keep(result)
        if result is not None and result.action is not None and np.isfinite(result.action).all():
            rec.iter_ms, rec.iterations = result.iter_ms, result.iterations
            rec.select_ms, rec.plan_ms = result.select_ms, result.plan_ms
            rec.divergence = float(np.linalg.norm(result.action - policy))
            rec.action_source = "plan"
            return result.action, False
        rec.fallback, rec.action_source = True, "policy"
        return policy, result is None

    def _finish(self, rec: TickRecord, missed: bool) -> None:
        self.stats.add(rec, missed)
        if self.telemetry is not None:
            self.telemetry.tick(rec)
        self.status.maybe(self.stats, self.guard.alarm)

    # ------------------------------------------------------------------ loops
    def _done(self, k: int) -> bool:
        cfg = self.cfg
        if self.stop_event.is_set():
            self.stop_reason = self.stop_reason or "stopped"
            return True
        if cfg.max_ticks is not None and k >= cfg.max_ticks:
            return True
        return cfg.duration is not None and k >= round(cfg.duration * cfg.rate)

    def _run_lockstep(self) -> None:
        ob = self.client.reset(seed=self.cfg.seed)
        k = 0
        while not self._done(k):
            start = time.monotonic()
            command, source, rec, missed = self._tick(k, start, ob, True, None)
            if self._record:
                self.trace.append((ob.obs.copy(), command.copy()))
            rec.t_send = time.monotonic() - self._t0
            rec.slack_ms = (rec.t_deadline - rec.t_send) * 1e3
            ob = self.client.step(command)
            self.guard.sent(command, source)
            self.stats.add_reward(ob.reward, ob.terminated or ob.truncated)
            self._finish(rec, missed)
            if ob.terminated or ob.truncated:
                ob = self.client.reset()
                self._new_episode()
            k += 1

    def _first_observation(self):
        """The reset's observation, or a newer one already pushed (a server that ticks
        from the reset on; a simulator holds still until the first action)."""
        first = self.client.reset(seed=self.cfg.seed)
        newer = self.client.latest_observation()
        return newer if newer is not None and newer.seq > first.seq else first

    def _run_realtime(self, worker: PlanWorker | None) -> None:
        cfg = self.cfg
        ob = self._first_observation()
        ticker = Ticker(cfg.period, ob.received_at + cfg.phase_ms * 1e-3)
        # phase locking needs the server's period; at another rate the loop runs free
        lock = math.isclose(self.client.info.control_period, cfg.period, rel_tol=1e-6)
        if not lock:
            log.warning(
                "control: %g Hz against a server ticking every %g s: observations and "
                "actions are not phase-locked",
                cfg.rate,
                self.client.info.control_period,
            )
        last_seq, last_fresh_t, prev_end = -1, time.monotonic(), False
        while not self._done(ticker.index):
            before = ticker.index
            start = ticker.wait()
            k = ticker.index
            for missed_tick in range(before, k):  # the loop woke too late for these
                self._skipped(missed_tick, ticker)
            if time.monotonic() > start + cfg.budget_ms * 1e-3:  # too late for this one too
                self._skipped(k, ticker)
                ticker.advance()
                continue
            ob = self.client.latest_observation()
            if lock and (ob is None or ob.seq == last_seq):  # ahead of the server's ticks
                ob, start = self._catch_up(ticker, start, last_seq, ob)
            elif lock and ob.shared_clock:
                self._lock_phase(ticker, ob.age)
            fresh = ob is not None and ob.seq != last_seq
            if fresh:
                last_seq, last_fresh_t = ob.seq, time.monotonic()
                if "tick" in ob.info:  # episode bookkeeping from the pushed observations
                    self.stats.add_reward(ob.reward, ob.terminated or ob.truncated)
                # A server that starts the next episode itself sends its first observation
                # with the terminal one (control_obs); others send it on the next tick.
                end, told = ob.terminated or ob.truncated, "next_obs" in ob.info
                # a new number without an end seen here: another client reset the server
                renumbered = ob.control_episode not in (None, self._episode)
                if prev_end or (end and told) or (renumbered and self._episode is not None):
                    self._new_episode()
                self._episode = ob.control_episode
                prev_end = end and not told
            command, source, rec, missed = self._tick(k, start, ob, fresh, worker)
            send_deadline = start + (cfg.budget_ms + cfg.send_margin_ms) * 1e-3
            t_start = time.monotonic()
            if t_start + SEND_GUARD_S <= send_deadline:
                self.client.send_action(command, ob.control_episode if ob is not None else None)
                t_send = time.monotonic()
                rec.late, rec.send_ms = t_send > send_deadline, (t_send - t_start) * 1e3
                self.guard.sent(command, source)
                self._in_force(command)
            else:  # never send late: the server holds the previous command
                self._in_force(None)
                self.stats.skipped += 1
                rec.action_source, rec.fallback, t_send = "skipped", True, time.monotonic()
            rec.t_send = t_send - self._t0
            rec.slack_ms = (send_deadline - t_send) * 1e3
            if self._record and ob is not None:
                self.trace.append((ob.control_obs.copy(), command.copy()))
            self._finish(rec, missed)
            self._recover(last_fresh_t)
            self._server_errors()
            ticker.advance()

    def _catch_up(self, ticker: Ticker, start: float, last_seq: int, ob):
        """No new observation at the tick's start: wait for the server's, at most the
        period's slack (period - budget - send margin - phase) from the start, so this tick
        can still plan and send when none comes (a simulator waiting for its episode's
        first action sends nothing new). When one comes, this tick and every later one
        start ``phase_ms`` after it. Returns the observation and the tick's start."""
        wait = self.cfg.slack - (time.monotonic() - start)
        newer = self.client.latest_observation(timeout=max(wait, 0.0))
        if newer is None or newer.seq == last_seq:
            return newer if newer is not None else ob, start
        # from its arrival, not from this thread's wake-up, which a busy CPU delays
        ticker.shift(newer.received_at - start + self.cfg.phase_ms * 1e-3)
        self.stats.phase_shifts += 1
        return newer, ticker.start

    def _lock_phase(self, ticker: Ticker, age: float) -> None:
        """A fresh observation ``age`` seconds old at the tick's start (one clock with the
        server): if it waited much longer than ``phase_ms``, start the later ticks earlier."""
        phase = self.cfg.phase_ms * 1e-3
        if age > phase + min(LOCK_TOLERANCE_S, self.cfg.slack):
            ticker.shift(phase + LOCK_TOLERANCE_S / 2 - age)
            self.stats.phase_shifts += 1

    def _skipped(self, k: int, ticker: Ticker) -> None:
        """Record a tick the loop reached after its send deadline (nothing was sent)."""
        deadline = (
            ticker.t0 + k * ticker.period + (self.cfg.budget_ms + self.cfg.send_margin_ms) * 1e-3
        )
        rec = TickRecord(k, deadline - self._t0, 0.0, 0.0, -1.0, -1, 0.0, 0.0)
        rec.fallback, rec.action_source, rec.alarm = True, "skipped", self.guard.alarm
        self._in_force(None)
        self.stats.skipped += 1
        self._finish(rec, False)

    def _recover(self, last_fresh_t: float) -> None:
        """After a server restart (new session), start a new episode; give up when the
        server has been silent for ``stale_stop_s``."""
        if self.client.restarts != self._restarts:
            self._restarts = self.client.restarts
            log.warning("control: the bridge server restarted; resetting the episode")
            self.client.reset(seed=None)
            self._new_episode()
        silent = time.monotonic() - last_fresh_t
        if self.cfg.stale_stop_s is not None and silent > self.cfg.stale_stop_s:
            self.stop_reason = f"no observation for {silent:.1f} s"
            self.stop_event.set()

    def _server_errors(self) -> None:
        """Errors the server sent back since the last tick: losing the control lease
        stops the loop (another client now commands the robot); the rest are logged."""
        count = getattr(self.client, "error_count", 0)
        new, self._errors_seen = count - self._errors_seen, count
        for err in self.client.errors[-new:] if new > 0 else ():
            if err.code == ErrorCode.LEASE_HELD:
                self.stop_reason = "another client controls the server (lease_held)"
                self.stop_event.set()
                log.warning("control: %s", err.message)
            elif err.code == ErrorCode.STALE_EPISODE:
                log.info("control: %s", err.message)
            elif err.code not in self._error_codes:  # the first of each kind
                log.warning("control: the server refused an action: %s", err)
            self._error_codes[err.code] = self._error_codes.get(err.code, 0) + 1

    def run(self) -> dict:
        """Run until the duration / tick limit / :attr:`stop_event`; returns the summary.

        On any exit (Ctrl-C and errors included) the robot gets the neutral command (real
        time), the planning thread stops and the telemetry is flushed with its summary.
        """
        worker = (
            PlanWorker(
                self.backend,
                self.tracker,
                self.cfg.planner_rt_priority,
                warmup_obs_dim=self.client.info.obs_dim,
            )
            if self.realtime and not self.cfg.policy_only
            else None
        )
        switch = sys.getswitchinterval()
        sys.setswitchinterval(2e-4)  # the loop thread gets the GIL back quickly
        restore = _raise_priority(self.cfg.rt_priority) if self.realtime else None
        self._t0 = time.monotonic()
        try:
            if self.realtime:
                self._run_realtime(worker)
            else:
                self._run_lockstep()
        except KeyboardInterrupt:
            self.stop_reason = "interrupted"
        finally:
            sys.setswitchinterval(switch)
            if restore is not None:
                _restore_priority(restore)
            if self.realtime:
                self._safe_stop()
            if worker is not None:
                worker.close()
            self.status.done()
            summary = {**self.stats.summary(), "alarms": dict(self.guard.alarms)}
            summary["stop_reason"] = self.stop_reason or "done"
            summary["server_errors"] = dict(self._error_codes)
            if self.telemetry is not None:
                self.telemetry.close(summary)
        return summary

    def _safe_stop(self) -> None:
        try:
            self.client.send_action(self.guard.neutral)
        except Exception as err:  # the bridge may be gone; nothing else to do
            log.warning("control: could not send the neutral command at stop: %s", err)


def _raise_priority(priority: int):
    """SCHED_FIFO for the calling thread; returns what to restore (None if unchanged)."""
    if priority <= 0 or not hasattr(os, "sched_setscheduler"):
        return None
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (PermissionError, OSError) as err:
        log.warning(
            "control: cannot use real-time priority %d (%s); running without", priority, err
        )
        return None
    return old


def _restore_priority(old) -> None:
    try:
        os.sched_setscheduler(0, old[0], old[1])
    except OSError as err:
        log.warning("control: could not restore the scheduling policy: %s", err)


@contextlib.contextmanager
def stop_on_signals(event: threading.Event) -> Iterator[None]:
    """SIGINT / SIGTERM set ``event`` (a clean stop) for the duration of the block; only in
    the main thread, handlers restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.signal(sig, lambda *_: event.set()) for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
