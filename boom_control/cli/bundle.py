"""``boom bundle upgrade OLD NEW``: convert a version-1 bundle to the current format."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def bundle() -> None:
    """Controller bundle tools."""


@bundle.command()
@click.argument("old", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option(
    "--task",
    default=None,
    help="Record the parity observations on this task instead of the bundle's own (same "
    "observation contract; zmq:ENDPOINT for a task served over the bridge).",
)
@click.option(
    "--tolerance",
    type=float,
    default=1e-4,
    show_default=True,
    help="Largest parity error accepted (as `boom export`).",
)
@click.option("--parity-steps", type=int, default=64, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace NEW if it exists.")
def upgrade(
    old: Path, new: Path, task: str | None, tolerance: float, parity_steps: int, overwrite: bool
) -> None:
    """Rewrite the version-1 bundle OLD as a version-2 bundle NEW: the same weights stored
    once (safetensors), ONNX parts sharing them, one TorchScript module; parity is checked
    again on fresh observations of the task. Notes beside OLD (TRAINING.md) are copied."""
    from export.upgrade import upgrade_bundle

    done = upgrade_bundle(
        old, new, task=task, tolerance=tolerance, parity_steps=parity_steps, overwrite=overwrite
    )
    size = sum(p.stat().st_size for p in done.root.rglob("*") if p.is_file())
    click.echo(
        f"bundle {done.root}: version 2, {size / 2**20:.1f} MiB, parity max error "
        f"{done.info.parity_max_error:.2e} (tolerance {tolerance:g})"
    )
