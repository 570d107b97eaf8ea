"""Learning curves: planner and policy evaluation returns of a run, as a PNG."""

from __future__ import annotations

import csv
from pathlib import Path

from boom_control.errors import RunError


def read_eval(run_dir: str | Path) -> dict[str, list[float]]:
    """Columns of a run's ``eval.csv`` as lists of floats."""
    path = Path(run_dir) / "eval.csv"
    if not path.is_file():
        raise RunError(f"no eval.csv in {run_dir}")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{path} holds no evaluations yet")
    return {key: [float(r[key]) for r in rows] for key in rows[0]}


def plot_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
    title: str | None = None,
) -> Path:
    """Draw mean ± std of the planner and policy returns against agent steps.

    Args:
        run_dir: run folder holding ``eval.csv``.
        out: PNG path; default ``<run_dir>/curve.png``.
        reference: optional horizontal line (e.g. a published score).
        reference_label: legend text of that line.
        title: figure title; default the run folder's name.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = read_eval(run_dir)
    out = Path(out) if out is not None else Path(run_dir) / "curve.png"
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    steps = data["step"]
    for key, label, color in (("planner", "planner (MPPI)", "C0"), ("policy", "policy", "C1")):
        mean = data[f"{key}_return_mean"]
        std = data[f"{key}_return_std"]
        ax.plot(steps, mean, color=color, label=label, marker="o" if len(steps) < 30 else None)
        ax.fill_between(
            steps,
            [m - s for m, s in zip(mean, std)],
            [m + s for m, s in zip(mean, std)],
            color=color,
            alpha=0.2,
        )
    if reference is not None:
        ax.axhline(reference, color="k", linestyle="--", linewidth=1, label=reference_label)
    ax.set_xlabel("agent steps")
    ax.set_ylabel("episode return")
    ax.set_title(title or Path(run_dir).resolve().name, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
