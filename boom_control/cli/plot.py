"""``boom plot RUN_DIR``: the learning curve of a run."""

from __future__ import annotations

import click


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="PNG path (default RUN_DIR/curve.png).",
)
@click.option("--reference", type=float, default=None, help="Draw a reference return line.")
@click.option("--reference-label", default="reference", show_default=True)
def plot(run_dir: str, out: str | None, reference: float | None, reference_label: str) -> None:
    """Draw the learning curve (planner and policy eval returns) of RUN_DIR."""
    from boom_control.train.plot import plot_run

    path = plot_run(run_dir, out=out, reference=reference, reference_label=reference_label)
    click.echo(f"wrote {path}")
