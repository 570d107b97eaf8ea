"""The task options of each family, typed: ``make_env`` checks every option it is given
against these (unknown keys and wrong types are refused by name) before building the task.
Their fields and defaults are those of the families' constructors (a test keeps them so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DMCOptions:
    """``dmc:`` DeepMind Control Suite tasks."""

    action_repeat: int = 2
    """Physics control steps per agent step."""
    episode_length: int | None = None
    """Agent steps per episode (None: the suite's length / action_repeat)."""


@dataclass(frozen=True)
class H1Options:
    """``h1:`` the embedded Unitree H1 tasks."""

    model_path: str | os.PathLike | None = None
    """The H1 MJCF (None: the ``h1`` extra or ``MENAGERIE_ROOT``)."""
    episode_length: int = 1000
    """Agent steps per episode."""
    reset_noise: float = 0.01
    """Scale of the uniform noise added to the initial joint positions."""


@dataclass(frozen=True)
class HumanoidBenchOptions:
    """``hb:`` Humanoid-Bench tasks, where ``humanoid_bench`` is importable."""

    episode_length: int | None = None
    """Agent steps per episode (None: the env's own)."""


@dataclass(frozen=True)
class RemoteOptions:
    """``zmq:`` a task served over the sim bridge."""

    timeout: float = 5.0
    """Seconds to wait for each reply."""
    retries: int = 5
    """Reconnection attempts before giving up."""
    contract_hash: str | None = None
    """Refuse a server whose observation contract differs."""
    task: str | None = None
    """Refuse a server serving another task."""
    curve_server_key: str | None = None
    """The server's CURVE public certificate (encryption)."""
    curve_client_cert: str | None = None
    """This client's CURVE certificate."""
    spin: float = 0.0
    """Seconds spent spinning for each reply before blocking."""
    episode_length: int | None = None
    """End episodes after this many steps when fewer than the server's."""
    keepalive: bool = True
    """Heartbeats while the caller is busy."""


OPTIONS: dict[str, type] = {
    "dmc": DMCOptions,
    "h1": H1Options,
    "hb": HumanoidBenchOptions,
    "zmq": RemoteOptions,
}
"""Family -> its options."""
