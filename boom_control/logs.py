"""Logging set-up shared by every command."""

from __future__ import annotations

import logging
import os


def setup_logging(verbosity: int = 0) -> None:
    """Configure the root logger once: INFO by default, DEBUG with ``-v``, quieter with ``-q``.

    ``BOOM_LOG_LEVEL`` overrides the level (e.g. ``BOOM_LOG_LEVEL=DEBUG``).
    """
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    level = os.environ.get("BOOM_LOG_LEVEL", logging.getLevelName(level)).upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # dm_control logs its renderer choice and MuJoCo deprecation notes through absl; they
    # are not actionable for users, so only show them when asked for debug output.
    logging.getLogger("absl").setLevel(logging.DEBUG if verbosity > 1 else logging.ERROR)
