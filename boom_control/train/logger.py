"""Run logs: every metric to ``log.csv``, evaluation returns also to ``eval.csv``.

``log.csv`` is long-format (``step, wall_time, group, name, value``) so metrics can come and
go without rewriting the header; ``eval.csv`` has one row per evaluation. TensorBoard
events are written too when the ``tensorboard`` package is installed.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

LOG_FIELDS = ("step", "wall_time", "group", "name", "value")
EVAL_FIELDS = (
    "step",
    "wall_time",
    "episodes",
    "planner_return_mean",
    "planner_return_std",
    "policy_return_mean",
    "policy_return_std",
)


class RunLogger:
    """Append-only CSV logger for one run folder.

    Args:
        run_dir: folder receiving ``log.csv``, ``eval.csv`` (and ``tb/`` for TensorBoard).
        tensorboard: write TensorBoard events when the package is importable.
        wall_offset: seconds already spent by earlier segments of a resumed run.
    """

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, wall_offset: float = 0.0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "log.csv"
        self.eval_path = self.run_dir / "eval.csv"
        self._t0 = time.monotonic() - wall_offset
        self._log_file, self._log = self._open(self.log_path, LOG_FIELDS)
        self._eval_file, self._eval = self._open(self.eval_path, EVAL_FIELDS)
        self._tb = self._tensorboard() if tensorboard else None

    @staticmethod
    def _open(path: Path, fields: tuple[str, ...]):
        new = not path.exists() or path.stat().st_size == 0
        f = path.open("a", newline="")
        writer = csv.writer(f)
        if new:
            writer.writerow(fields)
            f.flush()
        return f, writer

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed (pip install tensorboard): CSV logs only")
            return None
        return SummaryWriter(str(self.run_dir / "tb"))

    @property
    def wall_time(self) -> float:
        """Seconds since the run started (including earlier segments of a resumed run)."""
        return time.monotonic() - self._t0

    def resume_clock(self, wall_time: float) -> None:
        """Continue the wall clock of a resumed run from ``wall_time`` seconds."""
        self._t0 = time.monotonic() - wall_time

    def log(self, group: str, step: int, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` of ``group`` (train, pretrain, episode, eval...) at ``step``."""
        wall = round(self.wall_time, 3)
        for name, value in metrics.items():
            self._log.writerow((step, wall, group, name, float(value)))
            if self._tb is not None and math.isfinite(float(value)):
                self._tb.add_scalar(f"{group}/{name}", float(value), step)
        self._log_file.flush()

    def log_eval(self, step: int, result: Mapping[str, float]) -> None:
        """Record one evaluation (keys of :data:`EVAL_FIELDS` except step and wall_time)."""
        row = {"step": step, "wall_time": round(self.wall_time, 3), **result}
        self._eval.writerow([row[k] for k in EVAL_FIELDS])
        self._eval_file.flush()
        self.log("eval", step, {k: v for k, v in result.items() if k != "episodes"})

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resumed run redoes the steps after its checkpoint)."""
        for path, attr in ((self.log_path, "_log"), (self.eval_path, "_eval")):
            f = getattr(self, attr + "_file")
            f.close()
            with path.open(newline="") as src:
                rows = list(csv.reader(src))
            keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
            with path.open("w", newline="") as dst:
                csv.writer(dst).writerows(keep)
            fields = LOG_FIELDS if attr == "_log" else EVAL_FIELDS
            new_file, writer = self._open(path, fields)
            setattr(self, attr + "_file", new_file)
            setattr(self, attr, writer)

    def close(self) -> None:
        """Flush and close the files."""
        self._log_file.close()
        self._eval_file.close()
        if self._tb is not None:
            self._tb.close()
