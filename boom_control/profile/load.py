"""CPU load from other processes while a measurement runs (Linux ``/proc/stat``).

Latency measured on a busy machine is unreliable: the planner's threads wait for cores.
:class:`LoadMonitor` samples the system-wide busy CPU time and this process's own CPU time
at start and stop; the difference is what other processes used.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HIGH_OTHER_LOAD = 0.25
"""Fraction of all cores busy with other processes above which results are flagged."""


def _proc_stat() -> tuple[float, float] | None:
    """``(busy, total)`` CPU seconds of all cores since boot, or None off Linux."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [float(v) for v in first[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0.0)  # idle + iowait
    total = sum(ticks[:8])  # guest time is already counted in user
    return (total - idle) / hz, total / hz


def _own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass
class LoadReport:
    """CPU load during a measurement.

    Attributes:
        cpus: logical CPUs of the machine; affinity: CPUs this process may run on.
        loadavg_start, loadavg_end: 1-minute load average at start and stop.
        busy_fraction: share of all cores' time that was busy (every process).
        own_fraction: share of all cores' time used by this process.
        other_fraction: busy minus own: what other processes used.
        high: ``other_fraction`` above :data:`HIGH_OTHER_LOAD` (results unreliable).
    """

    cpus: int
    affinity: int
    loadavg_start: float
    loadavg_end: float
    busy_fraction: float
    own_fraction: float
    other_fraction: float
    seconds: float
    high: bool

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        text = (
            f"CPU load: {self.other_fraction:.0%} of {self.cpus} cores used by other processes "
            f"({self.own_fraction:.0%} by this one), load average {self.loadavg_start:.2f} -> "
            f"{self.loadavg_end:.2f}"
        )
        if self.high:
            text += "; WARNING: the machine was busy, latency figures are unreliable"
        return text


class LoadMonitor:
    """Context manager measuring other processes' CPU use over its block."""

    def __enter__(self) -> LoadMonitor:
        self._t0 = time.monotonic()
        self._stat0 = _proc_stat()
        self._own0 = _own_cpu()
        self._load0 = os.getloadavg()[0]
        self.report: LoadReport | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.report = self.stop()

    def stop(self) -> LoadReport:
        seconds = max(time.monotonic() - self._t0, 1e-9)
        cpus = os.cpu_count() or 1
        stat1 = _proc_stat()
        own = (_own_cpu() - self._own0) / (seconds * cpus)
        if stat1 is None or self._stat0 is None:
            busy = float("nan")
        else:
            total = stat1[1] - self._stat0[1]
            busy = (stat1[0] - self._stat0[0]) / total if total > 0 else float("nan")
        other = max(busy - own, 0.0) if busy == busy else float("nan")
        try:
            affinity = len(os.sched_getaffinity(0))
        except AttributeError:
            affinity = cpus
        return LoadReport(
            cpus=cpus,
            affinity=affinity,
            loadavg_start=self._load0,
            loadavg_end=os.getloadavg()[0],
            busy_fraction=busy,
            own_fraction=own,
            other_fraction=other,
            seconds=seconds,
            high=bool(other > HIGH_OTHER_LOAD),
        )
