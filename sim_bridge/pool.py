"""The simulations a lockstep server hands out: one backend instance per client session.

Each lockstep client gets its own instance at its first ``reset``, so a trainer, its
evaluation workers and a second user never step each other's episodes. An instance goes
back to the pool when its client closes or is forgotten and is reused (reset) by the next
one: building a simulator can take seconds. A pool without a factory holds one instance
(a robot, or an external simulator that can only run once).

No boom_control import (the Gymnasium adapter runs it stand-alone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class InstancePool:
    """Backend instances handed out one per session, at most ``capacity`` at once.

    Args:
        first: an instance built already (the one whose ``describe()`` the server
            announces); it is the first handed out.
        make: builds another instance like ``first``; None: ``first`` is the only one.
        capacity: the most instances alive at once (1 without ``make``).
    """

    def __init__(self, first: Any, make: Callable[[], Any] | None, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity if make is not None else 1
        self._make = make
        self._idle: list[Any] = [first]
        self._busy: set[int] = set()  # id() of the instances handed out
        self._all: list[Any] = [first]

    @property
    def in_use(self) -> int:
        """Instances handed out now."""
        return len(self._busy)

    @property
    def built(self) -> int:
        """Instances built so far (idle or in use)."""
        return len(self._all)

    def acquire(self) -> Any | None:
        """An idle instance, or a new one while under ``capacity``; None when all are in
        use. Building one may raise (the caller reports it to the client)."""
        if self._idle:
            backend = self._idle.pop()
        elif len(self._all) < self.capacity and self._make is not None:
            backend = self._make()
            self._all.append(backend)
            log.info("simulation %d of at most %d built", len(self._all), self.capacity)
        else:
            return None
        self._busy.add(id(backend))
        return backend

    def release(self, backend: Any) -> None:
        """Give ``backend`` back (the next session resets it before use)."""
        if id(backend) in self._busy:
            self._busy.discard(id(backend))
            self._idle.append(backend)

    def close(self) -> None:
        """Close every instance (errors are logged, not raised: closing goes on)."""
        for backend in self._all:
            try:
                backend.close()
            except Exception as err:
                log.warning("closing a simulation failed: %s", err)
        self._all, self._idle = [], []
        self._busy.clear()
