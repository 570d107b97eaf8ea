"""Stop requests from signals: the first Ctrl-C (or SIGTERM) asks a long job to stop at its
next safe point, a second one aborts at once.

    with StopSignals() as stop:
        while working:
            ...
            if stop.requested:      # "SIGINT" / "SIGTERM" after the first signal, else None
                save(); break

Handlers can only be installed from the main thread; elsewhere the context does nothing
and the signals keep their usual effect.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


class StopSignals:
    """Context manager that turns the first of ``signals`` into :attr:`requested`."""

    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)):
        self.signals = signals
        self.requested: str | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: aborting")
        self.requested = signal.Signals(signum).name
        log.warning(
            "%s received: stopping after the current step with a checkpoint "
            "(send it again to abort without one)",
            self.requested,
        )

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()
