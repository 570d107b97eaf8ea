"""Precise waiting on the monotonic clock and a fixed-rate tick schedule.

``sleep_until(t)`` sleeps until ``spin`` seconds before ``t`` and busy-waits the rest, so
the wake-up error is that of the spin loop (microseconds), not of the OS scheduler.
:class:`Ticker` keeps absolute deadlines (``next += period``) and never accumulates drift.
"""

from __future__ import annotations

import time

SPIN_S = 2e-4
"""Seconds spun (busy-waited) before a deadline instead of slept."""


def now() -> float:
    """``time.monotonic()`` seconds."""
    return time.monotonic()


def sleep_until(t: float, spin: float = SPIN_S) -> float:
    """Wait until monotonic time ``t`` (sleep, then spin the last ``spin`` s); returns now."""
    remaining = t - time.monotonic()
    if remaining > spin:
        time.sleep(remaining - spin)
    while (current := time.monotonic()) < t:
        pass
    return current


class Ticker:
    """Tick ``k`` starts at ``t0 + k * period`` (absolute deadlines, no drift).

    Args:
        period: seconds between ticks.
        t0: monotonic start of tick 0 (now if None).
    """

    def __init__(self, period: float, t0: float | None = None) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.period = period
        self.t0 = time.monotonic() if t0 is None else t0
        self.index = 0
        self.skipped = 0
        """Ticks dropped because the loop woke up after their start had passed."""

    @property
    def start(self) -> float:
        """Start of the current tick."""
        return self.t0 + self.index * self.period

    def wait(self) -> float:
        """Wait for the current tick's start and return it.

        If that start is more than one period in the past (the process was stalled), the
        missed ticks are skipped (counted in :attr:`skipped`) instead of being run in a burst.
        """
        current = time.monotonic()
        behind = int((current - self.start) // self.period)
        if behind >= 1:
            self.index += behind
            self.skipped += behind
        sleep_until(self.start)
        return self.start

    def advance(self) -> None:
        """Move to the next tick (``next += period``)."""
        self.index += 1

    def shift(self, seconds: float) -> None:
        """Move this tick and every later one by ``seconds`` (later if positive): the
        phase correction of a loop locked to another clock's ticks."""
        self.t0 += seconds
