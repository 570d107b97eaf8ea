"""A sweep's results: final and best returns per cell with the mean and a 95% confidence
interval over seeds, and the learning curves (mean and band per variant) as a PNG.

Returns are each run's evaluations (``eval.csv``): the planner's mean return over the
evaluation episodes, and the policy's alone. The interval is Student's t over the seeds
that have evaluations: ``mean +- t(0.975, n - 1) * sd / sqrt(n)`` (undefined for one seed).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from boom_control.errors import RunError
from boom_control.profile.stats import format_table
from boom_control.sweep.grid import Grid, load_grid
from boom_control.sweep.storage import RemoteFolder, is_uri
from boom_control.train.plot import read_eval

REPORT_FILE = "report.json"
CURVES_FILE = "curves.png"


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """``(mean, half-width)`` of the ``level`` Student-t interval (half-width NaN below two
    values)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x[0]), math.nan
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean()), float(half)


def collect(root: Path, grid: Grid) -> list[dict[str, Any]]:
    """Per run: its evaluations (``steps``, ``planner``, ``policy``), or none yet."""
    runs = []
    for run in grid.runs():
        try:
            data = read_eval(run.folder(root))
        except (RunError, ValueError):
            data = None
        runs.append({
            "task": run.task,
            "variant": run.variant,
            "seed": run.seed,
            "steps": data["step"] if data else [],
            "planner": data["planner_return_mean"] if data else [],
            "policy": data["policy_return_mean"] if data else [],
        })  # fmt: skip
    return runs


def summarize_cells(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (task, variant): seeds with evaluations, the last evaluation's step, and
    the mean and 95% half-width of final planner, best planner and final policy returns."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r["task"], r["variant"]), []).append(r)
    rows = []
    for (task, variant), members in cells.items():
        have = [r for r in members if r["steps"]]
        row: dict[str, Any] = {
            "task": task,
            "variant": variant,
            "seeds": len(have),
            "of": len(members),
            "step": int(min((r["steps"][-1] for r in have), default=0)),
        }
        for key, pick in (
            ("final", lambda r: r["planner"][-1]),
            ("best", lambda r: max(r["planner"])),
            ("policy_final", lambda r: r["policy"][-1]),
        ):
            mean, half = mean_ci([pick(r) for r in have])
            row[key], row[f"{key}_ci95"] = mean, half
        rows.append(row)
    return rows


def format_cells(rows: list[dict[str, Any]]) -> str:
    """The cells as a text table (``mean +- half-width``)."""

    def pm(mean: float, half: float) -> str:
        if math.isnan(mean):
            return "-"
        return f"{mean:.1f}" + ("" if math.isnan(half) else f" +- {half:.1f}")

    table = [
        {
            "task": r["task"],
            "variant": r["variant"],
            "seeds": f"{r['seeds']}/{r['of']}",
            "step": str(r["step"]),
            "final (planner)": pm(r["final"], r["final_ci95"]),
            "best (planner)": pm(r["best"], r["best_ci95"]),
            "final (policy)": pm(r["policy_final"], r["policy_final_ci95"]),
        }
        for r in rows
    ]
    return format_table(table, list(table[0])) if table else "no runs"


def plot_curves(runs: list[dict[str, Any]], path: Path) -> Path:
    """Planner return against steps: per task a panel, per variant the mean over seeds and
    the 95% band, at the evaluation steps every seed with evaluations reached."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in runs))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.0 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        variants = list(dict.fromkeys(r["variant"] for r in runs if r["task"] == task))
        for color, variant in enumerate(variants):
            have = [r for r in runs if (r["task"], r["variant"]) == (task, variant) and r["steps"]]
            if not have:
                continue
            common = sorted(set.intersection(*(set(r["steps"]) for r in have)))
            stats = [mean_ci([r["planner"][r["steps"].index(s)] for r in have]) for s in common]
            mean = np.array([m for m, _ in stats])
            half = np.nan_to_num(np.array([h for _, h in stats]))
            label = f"{variant} (n={len(have)})"
            ax.plot(common, mean, color=f"C{color}", label=label, marker="o")
            ax.fill_between(common, mean - half, mean + half, color=f"C{color}", alpha=0.2)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("agent steps")
        ax.set_ylabel("planner return (mean, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sweep_report(root: str | Path, plot: bool = True) -> dict[str, Any]:
    """Collect the sweep in ``root`` (a folder or a URI, see
    :mod:`~boom_control.sweep.storage`), write ``report.json`` (and ``curves.png``) there,
    return the report (``cells``, ``runs``, ``text``; ``plot``: the local path of the PNG)."""
    remote = RemoteFolder(str(root)) if is_uri(root) else None
    if remote is not None:  # report from a local copy of everything but the checkpoints
        remote.pull(checkpoints=False)
    folder = remote.mirror if remote is not None else Path(root)
    grid = load_grid(folder)
    runs = collect(folder, grid)
    cells = summarize_cells(runs)
    report = {"root": str(root), "grid": grid.to_json(), "cells": cells, "runs": runs}
    report["text"] = format_cells(cells)
    if plot and any(r["steps"] for r in runs):
        report["plot"] = str(plot_curves(runs, folder / CURVES_FILE))
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=1, default=float) + "\n")
    if remote is not None:  # next to the runs, like a local sweep's
        for name in (REPORT_FILE, CURVES_FILE):
            if (folder / name).is_file():
                remote.push(name)
    return report
