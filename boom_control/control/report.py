"""Run statistics of the controller: live one-line status and the end-of-run summary."""

from __future__ import annotations

import time
from collections import deque
from typing import IO

import numpy as np

from boom_control.telemetry import TickRecord


class RunStats:
    """Counters over every tick, plus a recent window for the live status line."""

    def __init__(self, window: int = 500) -> None:
        self.ticks = 0
        self.late = 0
        self.fallback = 0
        self.misses = 0
        """Plans not ready by the planning deadline (a fallback was sent instead)."""
        self.skipped = 0
        self.phase_shifts = 0
        """Real time: moves of the loop's tick phase onto the server's ticks."""
        self.iterations: list[int] = []
        self.plan_ms: list[float] = []
        self.sources: dict[str, int] = {}
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.episode_return = 0.0
        self.episode_length = 0
        self.rewards_seen = False
        self._recent_plan: deque[float] = deque(maxlen=window)
        self._recent_t: deque[float] = deque(maxlen=window)

    def add(self, rec: TickRecord, missed: bool) -> None:
        self.ticks += 1
        self.late += rec.late
        self.fallback += rec.fallback
        self.misses += missed
        self.iterations.append(rec.iterations)
        if rec.plan_ms > 0:
            self.plan_ms.append(rec.plan_ms)
            self._recent_plan.append(rec.plan_ms)
        self.sources[rec.action_source] = self.sources.get(rec.action_source, 0) + 1
        self._recent_t.append(rec.t_send)

    def add_reward(self, reward: float, episode_end: bool) -> None:
        self.rewards_seen = True
        self.episode_return += reward
        self.episode_length += 1
        if episode_end:
            self.episode_returns.append(self.episode_return)
            self.episode_lengths.append(self.episode_length)
            self.episode_return, self.episode_length = 0.0, 0

    def status_line(self, alarm: str = "") -> str:
        """``rate, ticks, late, fallback, mean iterations, plan p99`` of the recent window."""
        t = self._recent_t
        rate = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
        p99 = float(np.percentile(self._recent_plan, 99)) if self._recent_plan else 0.0
        iters = float(np.mean(self.iterations[-len(t) :])) if t else 0.0
        fb = 100.0 * self.fallback / max(self.ticks, 1)
        return (
            f"{rate:5.1f} Hz | ticks {self.ticks} | late {self.late} | misses {self.misses} | "
            f"fallback {fb:.1f}% | iters {iters:.2f} | plan p99 {p99:.1f} ms"
            + (f" | ALARM {alarm}" if alarm else "")
        )

    def summary(self) -> dict:
        plan = np.asarray(self.plan_ms) if self.plan_ms else np.zeros(1)
        out = {
            "ticks": self.ticks,
            "late_sends": self.late,
            "skipped_ticks": self.skipped,
            "phase_shifts": self.phase_shifts,
            "plan_misses": self.misses,
            "fallback_rate": self.fallback / max(self.ticks, 1),
            "mean_iterations": float(np.mean(self.iterations)) if self.iterations else 0.0,
            "plan_p50_ms": float(np.percentile(plan, 50)),
            "plan_p99_ms": float(np.percentile(plan, 99)),
            "action_sources": dict(self.sources),
        }
        if self.rewards_seen:
            out["episode_returns"] = [*self.episode_returns, self.episode_return]
            out["episode_lengths"] = [*self.episode_lengths, self.episode_length]
            out["episode_return"] = (
                self.episode_return
                if not self.episode_returns
                else float(np.mean(self.episode_returns))
            )
        return out


def format_summary(summary: dict) -> str:
    """The summary as an aligned two-column table."""
    rows = [
        ("ticks", f"{summary['ticks']}"),
        ("late sends", f"{summary['late_sends']}"),
        ("skipped ticks", f"{summary['skipped_ticks']}"),
        ("phase shifts", f"{summary.get('phase_shifts', 0)}"),
        ("plan misses", f"{summary['plan_misses']}"),
        ("fallback rate", f"{100 * summary['fallback_rate']:.1f} %"),
        ("mean iterations", f"{summary['mean_iterations']:.2f}"),
        ("plan p50", f"{summary['plan_p50_ms']:.2f} ms"),
        ("plan p99", f"{summary['plan_p99_ms']:.2f} ms"),
        (
            "action sources",
            ", ".join(f"{k} {v}" for k, v in sorted(summary["action_sources"].items())),
        ),
    ]
    if "episode_return" in summary:
        ended = len(summary["episode_returns"]) - 1
        rows.append(
            (
                "episode return",
                f"{summary['episode_return']:.2f}"
                + (f" (mean of {ended} ended)" if ended else " (running)"),
            )
        )
        rows.append(("episodes", _episodes(summary)))
    if "warmup_s" in summary:
        rows.append(("warm-up", f"{summary['warmup_s']:.2f} s"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _episodes(summary: dict) -> str:
    """Every episode as ``return/steps``; the last one was still running at the stop."""
    returns = summary["episode_returns"]
    lengths = summary["episode_lengths"]
    parts = [f"{r:.1f}/{n}" for r, n in zip(returns, lengths, strict=True)]
    if lengths[-1]:
        parts[-1] += " (running)"
    else:
        parts.pop()
    return "return/steps " + (", ".join(parts) or "none")


class StatusPrinter:
    """Prints :meth:`RunStats.status_line` every ``every`` seconds to ``stream``."""

    def __init__(self, stream: IO[str] | None, every: float = 1.0) -> None:
        self.stream, self.every = stream, every
        self._next = time.monotonic() + every

    def maybe(self, stats: RunStats, alarm: str) -> None:
        if self.stream is None or time.monotonic() < self._next:
            return
        self._next += self.every
        print("\r" + stats.status_line(alarm), end="", file=self.stream, flush=True)

    def done(self) -> None:
        if self.stream is not None:
            print(file=self.stream, flush=True)
