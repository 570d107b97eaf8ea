"""A sweep's grid: tasks x variants x seeds, each cell one training run in its own folder.

A *variant* is one combination of the varied settings (``agent.align_lambda=0,auto`` gives
two); the runs of a sweep live in ``DIR/<task>/<variant>/s<seed>`` and the grid itself in
``DIR/sweep.json``, so re-running the same command finds what is finished, resumes what is
not, and ``boom sweep report DIR`` knows every cell.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from boom_control.errors import ConfigError
from boom_control.train.checkpoint import latest_checkpoint

GRID_FILE = "sweep.json"


@dataclass(frozen=True)
class Run:
    """One cell: a task, a variant (its overrides) and a seed."""

    task: str
    variant: str
    seed: int
    overrides: tuple[str, ...]

    def folder(self, root: Path) -> Path:
        """``root/<task>/<variant>/s<seed>`` (':' and '/' in the task id become '-')."""
        task = self.task.replace(":", "-").replace("/", "-")
        return Path(root) / task / self.variant / f"s{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.task} {self.variant} s{self.seed}"


@dataclass(frozen=True)
class Grid:
    """What a sweep trains.

    Attributes:
        tasks: task ids.
        seeds: seeds of every (task, variant).
        vary: ``key -> values`` crossed into variants, in order.
        overrides: ``key=value`` settings every run shares.
        presets: config presets (``configs/<name>.yaml``) every run applies.
    """

    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    vary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.tasks or not self.seeds:
            raise ConfigError("a sweep needs at least one task and one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds repeat: {list(self.seeds)}")
        for key in ("task", "seed", "run_dir", "resume"):
            if key in self.vary or any(o.split("=", 1)[0] == key for o in self.overrides):
                raise ConfigError(f"{key} is set by the sweep for each run; do not pass it")

    @staticmethod
    def parse_vary(specs: list[str] | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
        """``["agent.align_lambda=0,auto"]`` -> ``{"agent.align_lambda": ("0", "auto")}``."""
        vary: dict[str, tuple[str, ...]] = {}
        for spec in specs:
            key, sep, values = spec.partition("=")
            items = tuple(v.strip() for v in values.split(",") if v.strip())
            if not sep or not key or not items:
                raise ConfigError(f"--vary {spec!r}: use KEY=VALUE1,VALUE2,...")
            if key in vary:
                raise ConfigError(f"--vary names {key} twice")
            vary[key] = items
        return vary

    def variants(self) -> list[tuple[str, tuple[str, ...]]]:
        """``(name, overrides)`` of every variant (``base`` when nothing varies)."""
        if not self.vary:
            return [("base", ())]
        keys = list(self.vary)
        out = []
        for values in itertools.product(*(self.vary[k] for k in keys)):
            pairs = [f"{k}={v}" for k, v in zip(keys, values, strict=True)]
            name = ",".join(
                f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values, strict=True)
            )
            out.append((name.replace("/", "-"), tuple(pairs)))
        return out

    def runs(self) -> list[Run]:
        """Every cell, task-major then variant then seed."""
        return [
            Run(task, name, seed, (*self.overrides, *pairs))
            for task in self.tasks
            for name, pairs in self.variants()
            for seed in self.seeds
        ]

    def to_json(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Grid:
        return cls(
            tasks=tuple(data["tasks"]),
            seeds=tuple(int(s) for s in data["seeds"]),
            vary={k: tuple(v) for k, v in data.get("vary", {}).items()},
            overrides=tuple(data.get("overrides", ())),
            presets=tuple(data.get("presets", ())),
        )

    def save(self, root: Path) -> None:
        """Write ``root/sweep.json``; a sweep folder holding another grid is refused."""
        root = Path(root)
        path = root / GRID_FILE
        if path.is_file():
            saved = load_grid(root)
            if saved != self:
                raise ConfigError(
                    f"{root} holds another sweep ({path}); pick another folder or repeat "
                    "its command (the same tasks, seeds, --vary, overrides and presets)"
                )
            return
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        tmp.replace(path)


def load_grid(root: Path) -> Grid:
    """The grid of the sweep in ``root``."""
    path = Path(root) / GRID_FILE
    if not path.is_file():
        raise ConfigError(f"{root} is not a sweep folder (no {GRID_FILE})")
    return Grid.from_json(json.loads(path.read_text()))


RESULT_FILE = "result.json"
"""Written into a run's folder when the sweep's run of it reached its steps."""


def run_state(folder: Path, steps: int) -> str:
    """``"done"`` (its result says it reached ``steps``), ``"partial"`` (a checkpoint to
    resume from) or ``"new"``."""
    result = Path(folder) / RESULT_FILE
    if result.is_file():
        with contextlib.suppress(ValueError, OSError):
            if int(json.loads(result.read_text()).get("step", -1)) >= steps:
                return "done"
    return "partial" if latest_checkpoint(folder) is not None else "new"
