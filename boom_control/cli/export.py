"""``boom export RUN_DIR_OR_CHECKPOINT --out BUNDLE_DIR``: write a controller bundle."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("export")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="Bundle folder to create."
)
@click.option(
    "--tolerance",
    default=1e-4,
    show_default=True,
    help="Largest parity error (exported vs eager) accepted: absolute below 1, relative to "
    "the largest value of the output row above.",
)
@click.option(
    "--parity-steps",
    default=64,
    show_default=True,
    help="Recorded task observations used for the parity check.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing bundle folder (files it does not list, e.g. TRAINING.md, stay).",
)
def export(source: Path, out: Path, tolerance: float, parity_steps: int, overwrite: bool) -> None:
    """Export a trained run (its latest checkpoint) or a checkpoint file to a bundle.

    The bundle holds every world-model part as ONNX and TorchScript, bundle.json (task,
    observation contract, action mapping, planner defaults, checksums, versions) and a
    parity report. Export fails, writing nothing, when parity exceeds the tolerance.
    """
    from export.exporter import export_run
    from export.parity import format_report

    try:
        bundle = export_run(
            source, out, tolerance=tolerance, parity_steps=parity_steps, overwrite=overwrite
        )
    except FileNotFoundError as err:  # a source path that is not there
        raise click.ClickException(str(err)) from None
    report = json.loads((bundle.root / "parity.json").read_text())
    click.echo(format_report(report))
    click.echo(
        f"bundle {bundle.root}: {bundle.task_id}, obs {bundle.obs_dim}, action "
        f"{bundle.action_dim}, contract {bundle.contract.hash}, step "
        f"{bundle.info.training.step}, {len(bundle.info.files)} files"
    )
