"""Fit planner settings to a latency budget from measured p99s.

A setting (samples N, iterations I) *fits* a budget B with margin m when the p99 of the
whole plan (encode + policy + every iteration + selection + transfers) is at most
``m * B``. Measured p99s are noisy and need not grow with N and I, so fitting uses the
*monotone envelope*: a setting's p99 is the largest p99 of every measured setting with no
more samples and no more iterations. A bigger setting then never fits when a smaller one
does not, and a lucky measurement cannot select it.

Among fitting settings the largest ``N * I`` wins; ties go to more iterations, then more
samples, then the first listed precision (fp32 before bf16).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    """One measured setting: samples, iterations, precision and the plan's p99 (ms)."""

    samples: int
    iterations: int
    p99_ms: float
    precision: str = "fp32"


@dataclass(frozen=True)
class Fit:
    """The settings chosen for a budget.

    Attributes:
        limit_ms: ``margin * budget_ms``, what the envelope p99 must not exceed.
        p99_ms: measured p99 of the chosen cell; envelope_ms: its monotone envelope.
        frontier: for every sample count, the most iterations that fit (``[[N, I], ...]``).
    """

    budget_ms: float
    margin: float
    limit_ms: float
    samples: int
    iterations: int
    precision: str
    p99_ms: float
    envelope_ms: float
    frontier: list[list[int]] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def monotone_envelope(cells: Iterable[Cell]) -> dict[tuple[str, int, int], float]:
    """``(precision, N, I) -> max p99`` over measured cells of that precision with
    ``N' <= N`` and ``I' <= I``."""
    cells = list(cells)
    env = {}
    for c in cells:
        same = [d for d in cells if d.precision == c.precision]
        below = [d.p99_ms for d in same if d.samples <= c.samples and d.iterations <= c.iterations]
        env[(c.precision, c.samples, c.iterations)] = max(below)
    return env


def fit_budget(cells: Sequence[Cell], budget_ms: float, margin: float = 0.8) -> Fit | None:
    """The largest setting whose envelope p99 is within ``margin * budget_ms``.

    Returns None when nothing fits (send the policy action only, or raise the budget).
    Raises:
        ValueError: a non-positive budget or a margin outside (0, 1].
    """
    if budget_ms <= 0:
        raise ValueError(f"budget must be positive, got {budget_ms} ms")
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin}")
    limit = margin * budget_ms
    env = monotone_envelope(cells)
    order = {p: i for i, p in enumerate(dict.fromkeys(c.precision for c in cells))}
    fitting = [c for c in cells if env[(c.precision, c.samples, c.iterations)] <= limit]
    if not fitting:
        return None
    best = max(
        fitting,
        key=lambda c: (c.samples * c.iterations, c.iterations, c.samples, -order[c.precision]),
    )
    frontier: dict[int, int] = {}
    for c in fitting:
        if c.precision == best.precision:
            frontier[c.samples] = max(frontier.get(c.samples, 0), c.iterations)
    return Fit(
        budget_ms=budget_ms,
        margin=margin,
        limit_ms=limit,
        samples=best.samples,
        iterations=best.iterations,
        precision=best.precision,
        p99_ms=best.p99_ms,
        envelope_ms=env[(best.precision, best.samples, best.iterations)],
        frontier=[[n, i] for n, i in sorted(frontier.items())],
    )


def control_settings(fit: Fit, backend: str, device: str, threads: int) -> dict:
    """The controller settings for a fit (keys of ``boom control --config``)."""
    out = {
        "samples": fit.samples,
        "iterations": fit.iterations,
        "budget_ms": fit.budget_ms,
        "backend": backend,
        "device": device,
        "threads": threads,
    }
    if fit.precision == "bf16":
        out["bf16"] = True
    return out


def control_flags(settings: dict) -> str:
    """The equivalent ``boom control`` command-line flags (``True`` values become bare
    flags such as ``--bf16``)."""
    flags = []
    for key, value in settings.items():
        name = "--" + key.replace("_", "-")
        if value is True:
            flags.append(name)
        elif value is not False and value is not None:
            flags.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
    return " ".join(flags)


def write_control_config(settings: dict, path: str | Path, comment: str = "") -> Path:
    """Write ``settings`` as a YAML controller config (``boom control --config PATH``)."""
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    path.write_text(head + yaml.safe_dump(settings, sort_keys=False))
    return path
