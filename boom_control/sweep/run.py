"""Run a sweep's grid on Ray: every training run one Ray task with declared resources.

Ray runs locally by default (started and stopped here, dashboard off, every CPU of the
machine) or on an existing cluster (``address``, or ``RAY_ADDRESS``). The sweep folder is
a path every node sees (a local disk, a shared filesystem on a cluster) or a URI of an
object store (``s3://...``, see :mod:`~boom_control.sweep.storage`): each run reads and
writes its own folder there, so a re-run of the same command skips finished runs and
resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from boom_control.errors import RunError
from boom_control.sweep.grid import GRID_FILE, RESULT_FILE, Grid, Run, run_state
from boom_control.sweep.storage import CHECKPOINTS, RemoteFolder, is_uri
from boom_control.train.checkpoint import LATEST
from boom_control.train.config import TrainConfig, load_train_config
from boom_control.train.distributed import require_ray, start_ray, stop_ray

log = logging.getLogger(__name__)

LOG_FILE = "train.log"
"""Each run's log (Python logging of its Ray worker), in its folder."""


def run_config(
    run: Run, root: Path, presets: tuple[str, ...], minutes: float | None
) -> TrainConfig:
    """The :class:`TrainConfig` of one run in the sweep folder ``root`` (resuming it when
    its folder holds a checkpoint)."""
    folder = run.folder(root)
    overrides = [
        f"task={run.task}",
        f"seed={run.seed}",
        f"run_dir={folder}",
        *run.overrides,
    ]
    # a resumed run starts from its saved config: say the limit of this invocation
    overrides.append(f"time_limit_minutes={'null' if minutes is None else minutes}")
    cfg = load_train_config(overrides, presets=("train", *presets))
    if run_state(folder, cfg.steps) == "partial":
        cfg = load_train_config([*overrides, "resume=true"], presets=("train", *presets))
    return cfg


def train_run(run: Run, root: str, presets: tuple[str, ...], minutes: float | None, threads: int):
    """One run, in a Ray worker: train (or resume) until its steps or ``minutes``; returns
    what the driver prints. A run that reaches its steps gets its ``result.json``."""
    import torch

    from boom_control.device import resolve_device
    from boom_control.train.trainer import build_trainer

    torch.set_num_threads(max(1, threads))
    remote = RemoteFolder(root) if is_uri(root) else None
    rel = run.folder(Path("")).as_posix()
    if remote is not None:  # train in this node's mirror of the run's folder
        remote.pull(rel)
    cfg = run_config(run, remote.mirror if remote else Path(root), presets, minutes)
    started = time.monotonic()
    Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(Path(cfg.run_dir) / LOG_FILE)  # the run's log, appended
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root_log = logging.getLogger()
    root_log.addHandler(handler)
    root_log.setLevel(logging.INFO)
    try:
        with build_trainer(cfg, resolve_device(cfg.device)) as trainer:
            if remote is not None:  # every checkpoint goes to the store as it is written
                trainer.on_save = lambda _path: remote.push(rel)
            finished = trainer.run()
        result = {
            "task": run.task,
            "variant": run.variant,
            "seed": run.seed,
            "step": trainer.step,
            "steps": cfg.steps,
            "finished": finished,
            "last_eval": trainer.last_eval,
            "seconds": time.monotonic() - started,
            "stopped_by": trainer.stopped_by,
        }
    except Exception:
        log.exception("the run failed")
        raise
    finally:
        root_log.removeHandler(handler)
        handler.close()
    if finished:
        path = Path(cfg.run_dir) / RESULT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(path)
    if remote is not None:
        remote.push(rel)  # the log, and the result last
    return result


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs (not part of its grid: changing them does not change the runs)."""

    address: str | None = None
    """Ray cluster to join (None: ``RAY_ADDRESS`` or a local instance)."""
    cpus_per_run: float = 1.0
    """CPUs each run reserves (and its torch threads, rounded down, at least 1)."""
    gpus_per_run: float = 0.0
    """GPUs each run reserves (0: CPU runs; the runs' ``device`` should then be cpu)."""
    minutes: float | None = None
    """Stop each run after this long with a checkpoint (run the command again to go on)."""


def run_sweep(
    grid: Grid,
    root: str | Path,
    settings: SweepSettings = SweepSettings(),
    say: Callable[[str], None] = tqdm.write,
) -> list[dict[str, Any]]:
    """Train every run of ``grid`` not finished yet in ``root``; returns the results of the
    runs started now (failed ones with ``error``)."""
    ray = require_ray("boom sweep runs")
    remote = RemoteFolder(str(root)) if is_uri(root) else None
    if remote is not None:  # what is finished: results and configs, not checkpoints
        remote.pull(checkpoints=False)
        local = remote.mirror
    else:
        local = root = Path(root).resolve()
    grid.save(local)
    if remote is not None:
        remote.push(GRID_FILE)
    runs = grid.runs()
    todo = []
    for run in runs:
        cfg = run_config(run, local, grid.presets, settings.minutes)  # checks every config now
        state = run_state(run.folder(local), cfg.steps)
        if state == "new" and remote is not None:
            rel = run.folder(Path("")).as_posix()
            if remote.exists(f"{rel}/{CHECKPOINTS}/{LATEST}"):
                state = "partial"
        if state == "done":
            say(f"done      {run.name}")
        else:
            todo.append(run)
            say(f"{'resume' if state == 'partial' else 'start'}    {run.name}")
    if not todo:
        say(f"every run of {root} is finished")
        return []
    started_here = start_ray(ray, settings.address, os.cpu_count())
    try:
        task = ray.remote(train_run).options(
            num_cpus=settings.cpus_per_run, num_gpus=settings.gpus_per_run, max_retries=0
        )
        threads = int(settings.cpus_per_run)
        refs = {
            task.remote(run, str(root), grid.presets, settings.minutes, threads): run
            for run in todo
        }
        results = []
        bar = tqdm(
            total=len(runs), initial=len(runs) - len(todo), unit="run", desc="sweep", disable=None
        )
        with bar:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                run = refs.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except Exception as err:  # the run failed: the others go on
                    result = {"task": run.task, "variant": run.variant, "seed": run.seed,
                              "error": str(err).strip().splitlines()[-1]}  # fmt: skip
                    say(f"failed    {run.name}: {result['error']}")
                else:
                    state = "finished" if result["finished"] else "stopped "
                    say(
                        f"{state}  {run.name} at step {result['step']}/{result['steps']} "
                        f"({result['seconds'] / 60:.1f} min), last eval {result['last_eval']:.1f}"
                    )
                    bar.update(1 if result["finished"] else 0)
                results.append(result)
    finally:
        if started_here:
            stop_ray(ray)
    failed = [r for r in results if "error" in r]
    if failed:
        raise RunError(
            f"{len(failed)} of {len(todo)} runs failed ({', '.join(_name(r) for r in failed)}); "
            f"each run's log is {LOG_FILE} in its folder; run the command again to retry them"
        )
    return results


def _name(result: dict[str, Any]) -> str:
    return f"{result['task']} {result['variant']} s{result['seed']}"
