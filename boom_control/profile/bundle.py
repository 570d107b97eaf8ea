"""``boom profile BUNDLE``: sweep, tables, budget fits, JSON and plots in one call.

Files written to the output folder:

* ``profile.json``: settings, CPU load, per-cell per-stage statistics, budget fits;
* ``timings.npz``: the raw per-repetition times of every cell (``<prec>_N<n>_I<i>_<stage>``);
* ``heatmap_p99_<prec>.png`` and ``hist_<prec>_N<n>_I<i>.png`` (largest cell, fitted cells);
* ``fitted_<B>ms.yaml`` for every budget with a fit: settings for ``boom control``.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from boom_control.control.factory import build_backend
from boom_control.profile.budget import (
    Cell,
    control_flags,
    control_settings,
    fit_budget,
    write_control_config,
)
from boom_control.profile.floor import STAGES as FLOOR_STAGES
from boom_control.profile.floor import floor_table, stage_matmuls
from boom_control.profile.plots import plot_p99_heatmap, plot_stage_histograms
from boom_control.profile.stats import format_table
from boom_control.profile.sweep import (
    STAGES,
    CellTimings,
    SweepConfig,
    SweepResult,
    resolution_note,
    run_sweep,
    set_threads,
)

log = logging.getLogger(__name__)

TABLE_PCTS = ("p50", "p90", "p99", "p99.9", "max")


def cell_name(c: CellTimings | dict) -> str:
    d = c if isinstance(c, dict) else c.to_json()
    return f"{d['precision']}_N{d['samples']}_I{d['iterations']}"


def stage_arrays(cell: CellTimings) -> dict[str, np.ndarray]:
    """Per-stage times of a cell for the histograms (transfers pooled)."""
    out = {s: cell.stage_times(s) for s in STAGES if s not in ("h2d", "d2h")}
    out["transfers"] = cell.times["h2d"] + cell.times["d2h"]
    return out


def fit_budgets(
    cells: Sequence[dict], budgets: Sequence[float], margin: float, backend: str, device: str,
    threads: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Budget fits (JSON-ready) with the controller settings and flags of each."""
    measured = [
        Cell(c["samples"], c["iterations"], c["stages"]["plan"]["p99"], c["precision"])
        for c in cells
    ]
    out = []
    for budget in budgets:
        fit = fit_budget(measured, budget, margin)
        entry: dict[str, Any] = {"budget_ms": budget, "margin": margin, "fit": None}
        if fit is not None:
            settings = control_settings(fit, backend, device, threads)
            entry.update(fit=fit.to_json(), settings=settings, flags=control_flags(settings))
        out.append(entry)
    return out


def format_sweep(result: dict[str, Any]) -> str:
    """Tables of a profile: plan latency of every cell with stage p99s, then every stage of
    the largest cell, the load note and the budget fits."""
    rows = []
    for c in result["cells"]:
        st = c["stages"]
        row = {
            "prec": c["precision"],
            "N": c["samples"],
            "I": c["iterations"],
            "reps": c["repeats"],
        }
        row.update({k: st["plan"][k] for k in TABLE_PCTS})
        row.update(
            {
                "enc p99": st["encode"]["p99"],
                "pol p99": st["policy"]["p99"],
                "iter p99": st["iteration"]["p99"],
                "sel p99": st["select"]["p99"],
                "prog p99": st.get("program", {}).get("p99", float("nan")),
            }
        )
        rows.append(row)
    lines = [
        f"{result['bundle']} ({result['task']}, {result['size']}, "
        f"{result['num_params'] / 1e6:.2f}M params) on {result['backend']}, {result['device']}",
        "plan = whole tick: h2d + encode + policy + program + d2h (ms); program = init + "
        "iterations + select, or one whole-plan call (then those three are not measured)",
        format_table(rows, list(rows[0])),
    ]
    big = result["cells"][result["largest"]]
    srows = [
        {"stage": s, **{k: big["stages"][s][k] for k in TABLE_PCTS}}
        for s in STAGES
        if s in big["stages"]  # profiles saved before a stage existed lack it
    ]
    lines += [f"\nstages of {cell_name(big)} ({big['repeats']} repetitions):"]
    lines += [format_table(srows, ["stage", *TABLE_PCTS])]
    if result.get("floor"):
        lines.append(format_floor(result["floor"]))
    lines += ["", result["load"]["text"], result["resolution"]]
    for b in result["budgets"]:
        if b["fit"] is None:
            lines.append(
                f"budget {b['budget_ms']:g} ms (p99 <= {b['margin'] * b['budget_ms']:.2f} ms): "
                "nothing fits; the controller will send the policy action"
            )
            continue
        f = b["fit"]
        lines.append(
            f"budget {b['budget_ms']:g} ms (p99 <= {f['limit_ms']:.2f} ms): {f['samples']} samples "
            f"x {f['iterations']} iterations {f['precision']} (p99 {f['p99_ms']:.2f} ms); "
            f"boom control BUNDLE {b['flags']}"
        )
    return "\n".join(lines)


def profile_bundle(
    bundle_path: str | Path,
    backend: str,
    device: str,
    out: str | Path,
    cfg: SweepConfig,
    *,
    threads: int = 0,
    cpus: Sequence[int] | None = None,
    budgets: Sequence[float] = (),
    margin: float = 0.8,
    plots: bool = True,
    progress: Callable[[CellTimings], None] | None = None,
) -> dict[str, Any]:
    """Sweep a bundle, write every output file to ``out`` and return the JSON result."""
    from export import load_bundle

    bundle = load_bundle(bundle_path)
    set_threads(threads, cpus)
    sweep: SweepResult = run_sweep(bundle, backend, device, threads, cfg, progress)
    cells = [c.to_json() for c in sweep.cells]
    largest = max(  # the most compute of the first precision
        range(len(cells)),
        key=lambda k: (
            cells[k]["precision"] == cfg.precisions[0],
            cells[k]["samples"] * cells[k]["iterations"],
            cells[k]["iterations"],
        ),
    )
    result: dict[str, Any] = {
        "bundle": str(bundle_path),
        "task": bundle.task_id,
        "size": bundle.info.model.size,
        "num_params": bundle.info.model.num_params,
        "backend": backend,
        "device": sweep.device_used,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "cpus": list(cpus) if cpus else None,
        "sweep": asdict(cfg),
        "load": {**sweep.load.to_json(), "text": sweep.load.describe()},
        "resolution": resolution_note(sweep.cells),
        "largest": largest,
        "cells": cells,
        "budgets": fit_budgets(cells, budgets, margin, backend, device, threads),
        "floor": against_floor(bundle, cells[largest], backend, device, threads),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile.json").write_text(json.dumps(result, indent=1) + "\n")
    raw = {
        f"{cell_name(c)}_{k}": v for c in sweep.cells for k, v in c.times.items()
    }  # fmt: skip
    np.savez_compressed(out / "timings.npz", **raw)
    for b in result["budgets"]:
        if b["fit"] is not None:
            comment = (
                f"boom profile: largest setting with plan p99 <= {b['margin']:g} x "
                f"{b['budget_ms']:g} ms on {sweep.device_used} ({bundle.task_id})\n"
                f"equivalent flags: {b['flags']}"
            )
            b["config"] = str(
                write_control_config(
                    b["settings"], out / f"fitted_{b['budget_ms']:g}ms.yaml", comment
                )
            )
    if plots:
        result["plots"] = write_sweep_plots(result, sweep, out)
    (out / "profile.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def against_floor(
    bundle, cell: dict[str, Any], backend: str, device: str, threads: int
) -> dict[str, Any]:
    """The matmul floor of a cell (:mod:`boom_control.profile.floor`), measured now, beside
    the cell's measured p50 per stage: FLOPs, floor, ``x_floor`` = p50 / floor and the
    achieved matmul rate ``gflops`` = FLOPs / p50. ONNX Runtime's floor for the onnx backend
    on a CPU, torch's otherwise."""
    n, k = cell["samples"], cell["iterations"]
    eager = build_backend(bundle, "torch", device, threads=threads, samples=n, iterations=k)
    runtime = "onnx" if backend == "onnx" and eager.device.type == "cpu" else "torch"
    table = floor_table(
        stage_matmuls(eager, bundle.obs_dim), eager.device, k, runtime=runtime, threads=threads
    )
    inner = ("init", "iteration", "select")
    table["program"] = {
        key: sum(table[s][key] * (k if s == "iteration" else 1) for s in inner)
        for key in ("mflop", "floor_ms")
    }
    rows = []
    for stage in (*FLOOR_STAGES, "program", "plan"):
        f, p50 = table[stage], cell["stages"][stage]["p50"]
        measured = p50 == p50 and p50 > 0  # NaN: not measured (whole-plan programs)
        rows.append({
            "stage": stage,
            "mflop": f["mflop"],
            "floor_ms": f["floor_ms"],
            "p50_ms": p50,
            "x_floor": p50 / f["floor_ms"] if measured and f["floor_ms"] > 0 else None,
            "gflops": f["mflop"] / p50 if measured and f["mflop"] > 0 else None,
        })  # fmt: skip
    return {"cell": cell_name(cell), "runtime": runtime, "rows": rows}


def format_floor(floor: dict[str, Any]) -> str:
    """The floor table of a profile."""
    rows = [
        {
            "stage": r["stage"],
            "MFLOP": r["mflop"],
            "floor ms": r["floor_ms"],
            "p50 ms": r["p50_ms"],
            "x floor": r["x_floor"] if r["x_floor"] is not None else float("nan"),
            "GFLOP/s": r["gflops"] if r["gflops"] is not None else float("nan"),
        }
        for r in floor["rows"]
    ]
    head = (
        f"\nagainst the matmul floor of {floor['cell']} (the plan's multiplies alone in "
        f"{floor['runtime']}, measured now):"
    )
    return head + "\n" + format_table(rows, list(rows[0]))


def write_sweep_plots(result: dict[str, Any], sweep: SweepResult, out: Path) -> list[str]:
    """Heat map per precision; histograms of the largest and the fitted cells."""
    files = []
    limit = max((b["margin"] * b["budget_ms"] for b in result["budgets"]), default=None)
    for prec in dict.fromkeys(c["precision"] for c in result["cells"]):
        cells = [c for c in result["cells"] if c["precision"] == prec]
        title = f"{result['task']} {result['size']} {result['backend']} {prec}: plan p99 (ms)"
        files.append(plot_p99_heatmap(cells, out / f"heatmap_p99_{prec}.png", title, limit))
    wanted = {result["largest"]}
    for b in result["budgets"]:
        if b["fit"] is not None:
            f = b["fit"]
            wanted |= {
                k
                for k, c in enumerate(result["cells"])
                if (c["samples"], c["iterations"], c["precision"])
                == (f["samples"], f["iterations"], f["precision"])
            }
    for k in sorted(wanted):
        cell = sweep.cells[k]
        title = f"{result['task']} {result['backend']} {cell_name(cell)}: stage latency (ms)"
        files.append(
            plot_stage_histograms(stage_arrays(cell), out / f"hist_{cell_name(cell)}.png", title)
        )
    return [str(f) for f in files]
