"""Latency statistics: percentiles, summaries, histograms and text tables.

Percentiles use linear interpolation between order statistics (numpy's default
``method="linear"``): for sorted values ``x[0..n-1]`` the q-th percentile sits at rank
``(n - 1) * q / 100``. A p99.9 is only resolved with at least 1000 values; summaries say
how many values they rest on (``n``) so a reader can judge the tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
"""Percentiles reported for every stage."""


def pct_key(q: float) -> str:
    """Name of a percentile in summaries: 50 -> ``p50``, 99.9 -> ``p99.9``."""
    return f"p{q:g}"


def percentiles(values: Iterable[float], qs: Sequence[float] = PERCENTILES) -> dict[str, float]:
    """``{"p50": ..., ...}`` of ``values`` (NaN for an empty input)."""
    x = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float)
    if x.size == 0:
        return {pct_key(q): float("nan") for q in qs}
    out = np.percentile(x, list(qs), method="linear")
    return {pct_key(q): float(v) for q, v in zip(qs, out, strict=True)}


def summarize(values: Iterable[float], qs: Sequence[float] = PERCENTILES) -> dict[str, float]:
    """Count, mean, std, min, the percentiles ``qs`` and max of ``values``."""
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    if x.size == 0:
        nan = float("nan")
        return {"n": 0, "mean": nan, "std": nan, "min": nan, **percentiles(x, qs), "max": nan}
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std()),
        "min": float(x.min()),
        **percentiles(x, qs),
        "max": float(x.max()),
    }


def histogram(
    values: Iterable[float], bins: int = 50, value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(counts, edges)`` with ``bins`` equal-width bins over ``value_range`` (default:
    min..max of the values). The last bin includes its right edge."""
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    counts, edges = np.histogram(x, bins=bins, range=value_range)
    return counts, edges


def format_table(
    rows: Sequence[dict[str, object]], columns: Sequence[str], floatfmt: str = "{:.3f}"
) -> str:
    """A fixed-width text table of ``rows`` (dicts) restricted to ``columns``."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else floatfmt.format(v)
        return str(v)

    body = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(lines)


def markdown_table(rows: Sequence[dict[str, object]], columns: Sequence[str]) -> str:
    """The same table as GitHub markdown."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def moving_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start)."""
    if len(x) == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)
