"""Fast reward shaping: the ``tolerance`` function of dm_control, compiled with numba.

Same definition as ``dm_control.utils.rewards.tolerance`` for the ``gaussian``, ``linear``
and ``quadratic`` sigmoids: 1 inside ``[lower, upper]``; outside, a sigmoid of the distance
to the nearest bound divided by ``margin``, equal to ``value_at_margin`` at one margin.
dm_control's version builds numpy arrays for every scalar call (about 10 us each); task
code calls this one several times per control step, so it is compiled once per process.
Hot paths with constant, already-valid arguments call the kernels (``tol_kernel``,
``tol_mean_kernel``) directly; :func:`tolerance` validates its arguments first.
"""

from __future__ import annotations

import math

import numba
import numpy as np

GAUSSIAN, LINEAR, QUADRATIC = 0, 1, 2
SIGMOIDS = {"gaussian": GAUSSIAN, "linear": LINEAR, "quadratic": QUADRATIC}


@numba.njit(cache=True)
def tol_kernel(x: float, lower: float, upper: float, margin: float, kind: int, vam: float) -> float:
    if lower <= x <= upper:
        return 1.0
    if margin == 0.0:
        return 0.0
    d = (lower - x if x < lower else x - upper) / margin
    if kind == GAUSSIAN:
        scale = math.sqrt(-2.0 * math.log(vam))
        return math.exp(-0.5 * (d * scale) ** 2)
    if kind == LINEAR:
        s = d * (1.0 - vam)
        return 1.0 - s if abs(s) < 1.0 else 0.0
    s = d * math.sqrt(1.0 - vam)
    return 1.0 - s * s if abs(s) < 1.0 else 0.0


@numba.njit(cache=True)
def tol_mean_kernel(
    x: np.ndarray, lower: float, upper: float, margin: float, kind: int, vam: float
) -> float:
    total = 0.0
    for v in x:
        total += tol_kernel(v, lower, upper, margin, kind, vam)
    return total / x.size


def _check(sigmoid: str, value_at_margin: float, margin: float) -> int:
    if sigmoid not in SIGMOIDS:
        raise ValueError(f"sigmoid must be one of {sorted(SIGMOIDS)}, got {sigmoid!r}")
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    kind = SIGMOIDS[sigmoid]
    if kind == GAUSSIAN and not 0.0 < value_at_margin < 1.0:
        raise ValueError("gaussian tolerance needs 0 < value_at_margin < 1")
    if not 0.0 <= value_at_margin < 1.0:
        raise ValueError("value_at_margin must be in [0, 1)")
    return kind


def tolerance(
    x: float,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> float:
    """Tolerance of a scalar (see module docstring)."""
    kind = _check(sigmoid, value_at_margin, margin)
    return tol_kernel(
        float(x), float(bounds[0]), float(bounds[1]), float(margin), kind, float(value_at_margin)
    )


def tolerance_mean(
    x: np.ndarray,
    bounds: tuple[float, float] = (0.0, 0.0),
    margin: float = 0.0,
    sigmoid: str = "gaussian",
    value_at_margin: float = 0.1,
) -> float:
    """Mean tolerance of the elements of a 1-D array."""
    kind = _check(sigmoid, value_at_margin, margin)
    arr = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    return tol_mean_kernel(
        arr, float(bounds[0]), float(bounds[1]), float(margin), kind, float(value_at_margin)
    )
