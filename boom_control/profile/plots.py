"""Figures of the profiler (matplotlib with the Agg backend, PNG files).

* :func:`plot_stage_histograms`: latency histogram of every stage with p50/p99/p99.9 lines;
* :func:`plot_p99_heatmap`: p99 of the whole plan over samples x iterations;
* :func:`plot_timeline`: a control run tick by tick: latency, slack, fallbacks, iterations
  and actor divergence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from boom_control.profile.stats import moving_mean, pct_key, percentiles

MARKERS = {50.0: "tab:green", 99.0: "tab:orange", 99.9: "tab:red"}
"""Percentile lines drawn on histograms and their colours."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    _pyplot().close(fig)
    return path


def plot_stage_histograms(
    times: Mapping[str, np.ndarray], path: str | Path, title: str = "", bins: int = 40
) -> Path:
    """One histogram per stage (``stage -> times in ms``), log count axis, with vertical
    lines at p50, p99 and p99.9."""
    plt = _pyplot()
    stages = [s for s, x in times.items() if len(x)]
    cols = min(3, max(len(stages), 1))
    rows = -(-len(stages) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.6 * rows), squeeze=False)
    for ax, stage in zip(axes.flat, stages, strict=False):
        x = np.asarray(times[stage], dtype=float)
        ax.hist(x, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_yscale("log")
        pct = percentiles(x, tuple(MARKERS))
        for q, colour in MARKERS.items():
            v = pct[pct_key(q)]
            ax.axvline(v, color=colour, lw=1.2, label=f"{pct_key(q)} {v:.3g}")
        ax.set_title(f"{stage} (n={len(x)})", fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    for ax in list(axes.flat)[len(stages) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_p99_heatmap(
    cells: Sequence[Mapping], path: str | Path, title: str = "", limit_ms: float | None = None
) -> Path:
    """p99 of the plan (ms) for every (samples, iterations) cell of one precision; cells
    above ``limit_ms`` (margin x the largest budget: no budget fits them) get a cross."""
    plt = _pyplot()
    samples = sorted({c["samples"] for c in cells})
    iters = sorted({c["iterations"] for c in cells})
    grid = np.full((len(samples), len(iters)), np.nan)
    for c in cells:
        grid[samples.index(c["samples"]), iters.index(c["iterations"])] = c["stages"]["plan"][
            pct_key(99.0)
        ]
    fig, ax = plt.subplots(figsize=(1.2 * len(iters) + 2.5, 0.7 * len(samples) + 1.8))
    from matplotlib.colors import LogNorm

    lo, hi = np.nanmin(grid), np.nanmax(grid)
    norm = LogNorm(vmin=lo, vmax=hi) if lo > 0 and hi > lo else None  # p99 spans decades
    im = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto", norm=norm)
    ax.set_xticks(range(len(iters)), [str(i) for i in iters])
    ax.set_yticks(range(len(samples)), [str(s) for s in samples])
    ax.set_xlabel("MPPI iterations")
    ax.set_ylabel("samples")
    for (r, c), v in np.ndenumerate(grid):
        if np.isnan(v):
            continue
        over = limit_ms is not None and v > limit_ms
        ax.text(c, r, f"{v:.1f}" + (" x" if over else ""), ha="center", va="center",
                color="white" if v < np.sqrt(lo * hi) else "black", fontsize=8)  # fmt: skip
    fig.colorbar(im, ax=ax, label="plan p99 (ms)")
    suffix = f" (x: above {limit_ms:.1f} ms)" if limit_ms is not None else ""
    ax.set_title((title or "plan p99") + suffix, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_timeline(arrays: Mapping[str, np.ndarray], header: Mapping, path: str | Path) -> Path:
    """A control run over time (arrays of :func:`report.tick_arrays`)."""
    plt = _pyplot()
    t = arrays["tick"] / float(header.get("rate", 50.0))
    sent, planned, fb = arrays["sent"], arrays["planned"], arrays["fallback"]
    fig, axes = plt.subplots(4, 1, figsize=(9, 8), sharex=True)
    ax = axes[0]
    ax.plot(t, arrays["tick_ms"], lw=0.7, label="encode+policy+plan")
    ax.plot(t[sent], arrays["recv_to_send_ms"][sent], lw=0.7, alpha=0.7, label="recv->send")
    if header.get("budget_ms") is not None:
        ax.axhline(float(header["budget_ms"]), color="tab:red", ls="--", lw=1, label="budget")
    ax.set_ylabel("tick latency (ms)")
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[1]
    ax.plot(t[sent], arrays["slack_ms"][sent], lw=0.7, color="tab:green")
    late = arrays["late"] | ~sent
    ax.scatter(t[late], np.zeros(late.sum()), color="tab:red", s=12, label="late/skipped")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_ylabel("slack (ms)")
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[2]
    ax.step(t, arrays["iterations"], where="post", lw=0.8, label="iterations")
    ax.scatter(t[fb], np.full(fb.sum(), -0.3), marker="|", color="tab:red", s=40,
               label=f"fallback ({fb.mean():.1%})" if len(fb) else "fallback")  # fmt: skip
    ax.set_ylabel("MPPI iterations")
    ax.legend(fontsize=7, loc="upper right")
    ax = axes[3]
    div = arrays["divergence"]
    ax.plot(t[planned], div[planned], lw=0.5, alpha=0.6, label="per tick")
    if planned.any():
        window = max(round(float(header.get("rate", 50.0))), 1)
        ax.plot(t[planned], moving_mean(div[planned], window), lw=1.4, label="1 s mean")
    ax.set_ylabel("|plan - policy|")
    ax.set_xlabel("time (s)")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(
        f"{header.get('task', '')} {header.get('backend', '')} on {header.get('device', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    return _save(fig, path)
