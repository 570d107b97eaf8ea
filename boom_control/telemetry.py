"""Per-tick telemetry of the real-time controller: one JSON-lines file per run.

The first line is a header (``{"type": "header", ...}``: bundle, task, backend, device,
rate, budget, planner settings); then one ``{"type": "tick", ...}`` line per control tick
(:class:`TickRecord`); the last line is a ``{"type": "summary", ...}`` written when the run
stops (absent if the process was killed). ``boom profile report`` replays such a file.

All times are milliseconds; absolute times are ``time.monotonic()`` seconds of the
controller process (``t_*`` fields), relative to the run start.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from boom_control.errors import TelemetryError

TELEMETRY_VERSION = 1


@dataclass
class TickRecord:
    """What happened in one control tick.

    Attributes:
        tick: tick index from 0.
        t_deadline: the tick's send deadline (s since run start).
        t_recv: when the newest observation was read (s since run start).
        t_send: when the action was sent (s since run start).
        obs_age_ms: age of the observation when it was read.
        obs_seq: sequence number of the observation (-1 when none).
        encode_ms, policy_ms: stage times.
        iter_ms: time of every MPPI iteration completed in this tick.
        select_ms: action selection (elite choice, warm-start shift).
        plan_ms: total planning time (0 when no plan ran).
        iterations: MPPI iterations done.
        fallback: the policy action was sent instead of the plan's.
        late: the send happened after the deadline (must stay 0).
        slack_ms: deadline minus send time (negative = late).
        divergence: L2 distance between the planner's and the policy's action.
        alarm: safety state ('' when normal; e.g. 'nan_obs', 'stale_obs').
        action_source: 'plan', 'policy', 'hold', 'damp' or 'skipped'.
        send_ms: how long the send took (it started ``send_ms`` before ``t_send``).
        obs_latency_ms: how long ago the observation was produced (its age plus the delay
            the server reports; -1 when none).
        compensated: actions already sent that the latent was predicted through before
            planning (``compensate``; 0: planned from the observation as it is).
    """

    tick: int
    t_deadline: float
    t_recv: float
    t_send: float
    obs_age_ms: float
    obs_seq: int
    encode_ms: float
    policy_ms: float
    iter_ms: list[float] = field(default_factory=list)
    select_ms: float = 0.0
    plan_ms: float = 0.0
    iterations: int = 0
    fallback: bool = False
    late: bool = False
    slack_ms: float = 0.0
    divergence: float = 0.0
    alarm: str = ""
    action_source: str = "plan"
    send_ms: float = 0.0
    obs_latency_ms: float = -1.0
    compensated: int = 0


class TelemetryWriter:
    """Append-only JSON-lines writer; flushes every ``flush_every`` ticks and on close."""

    def __init__(self, path: str | Path, header: dict[str, Any], flush_every: int = 50) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = self.path.open("w")
        self._flush_every = flush_every
        self._n = 0
        self._write({"type": "header", "version": TELEMETRY_VERSION, **header})

    def _write(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def tick(self, rec: TickRecord) -> None:
        self._write({"type": "tick", **asdict(rec)})
        self._n += 1
        if self._n % self._flush_every == 0:
            self._f.flush()

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if self._f.closed:
            return
        if summary is not None:
            self._write({"type": "summary", **summary})
        self._f.flush()
        self._f.close()

    def __enter__(self) -> TelemetryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class TelemetryLog:
    """A telemetry file read back: header, tick records and summary (if written)."""

    header: dict[str, Any]
    ticks: list[TickRecord]
    summary: dict[str, Any] | None


def iter_lines(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a telemetry file; a truncated last line (killed process) is skipped."""
    with Path(path).open() as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return


def read_telemetry(path: str | Path) -> TelemetryLog:
    """Read a telemetry file written by :class:`TelemetryWriter`."""
    header: dict[str, Any] | None = None
    ticks: list[TickRecord] = []
    summary = None
    for obj in iter_lines(path):
        kind = obj.pop("type", None)
        if kind == "header":
            header = obj
        elif kind == "tick":
            ticks.append(TickRecord(**obj))
        elif kind == "summary":
            summary = obj
    if header is None:
        raise TelemetryError(f"{path} is not a telemetry log (no header line)")
    if header.get("version") != TELEMETRY_VERSION:
        raise TelemetryError(f"{path}: telemetry version {header.get('version')} is not supported")
    return TelemetryLog(header, ticks, summary)
