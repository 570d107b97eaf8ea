"""Controller bundles shipped with the package (see ``boom_control/bundles/README.md``).

Each sub-folder is an exported bundle (``boom export``) of a run trained with this
package's own ``boom train``; its ``TRAINING.md`` records the command, steps, wall time and
evaluation returns. ``boom demo`` controls the H1 bundle by default.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def shipped() -> dict[str, Path]:
    """``{name: folder}`` of every shipped bundle (folders holding a ``bundle.json``)."""
    return {p.name: p for p in sorted(ROOT.iterdir()) if (p / "bundle.json").is_file()}


def shipped_bundle(name: str) -> Path:
    """Folder of the shipped bundle ``name`` (e.g. ``h1-stand``).

    Raises:
        KeyError: no such bundle, with the names that exist.
    """
    bundles = shipped()
    if name not in bundles:
        have = ", ".join(bundles) or "none"
        raise KeyError(f"no shipped bundle {name!r} (shipped: {have})")
    return bundles[name]
