"""``boom sweep``: a grid of training runs on Ray, and its report.

Two subcommands; the first is the default, so ``boom sweep DIR ...`` means
``boom sweep run DIR ...``::

    boom sweep runs/cmp --task dmc:cartpole-swingup --task dmc:walker-walk --seeds 1,2,3 \\
        --vary agent.align_lambda=0,auto --preset train_fast size=1M steps=100000
    boom sweep report runs/cmp
"""

from __future__ import annotations

from pathlib import Path

import click

from boom_control.cli.profile import DefaultGroup


class _RunByDefault(DefaultGroup):
    default = "run"


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None


@click.group(cls=_RunByDefault)
def sweep() -> None:
    """A grid of training runs on Ray (default: `boom sweep DIR --task ...`), or the report
    of one (`boom sweep report DIR`)."""


def _folder(folder: str, must_exist: bool) -> str | Path:
    """A sweep folder: a URI (``s3://...``) as given, else a local path."""
    from boom_control.sweep.storage import is_uri

    if is_uri(folder):
        return folder
    path = Path(folder)
    if path.is_file():
        raise click.BadParameter(f"{folder} is a file, not a folder", param_hint="FOLDER")
    if must_exist and not path.is_dir():
        raise click.BadParameter(f"{folder} does not exist", param_hint="FOLDER")
    return path


@sweep.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("folder")
@click.argument("overrides", nargs=-1)
@click.option("--task", "tasks", multiple=True, required=True, help="A task id (repeatable).")
@click.option("--seeds", type=_seeds, default="1,2,3", show_default=True, help="Seeds, e.g. 1,2,3.")
@click.option(
    "--vary",
    multiple=True,
    help="KEY=V1,V2,...: one variant per value, crossed with the other --vary (repeatable).",
)
@click.option(
    "--preset", "presets", multiple=True, help="Config preset(s) from configs/ for every run."
)
@click.option(
    "--address",
    default=None,
    help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray on every CPU here).",
)
@click.option(
    "--cpus-per-run", type=click.FloatRange(0.1), default=1.0, show_default=True,
    help="CPUs each run reserves (and its torch threads).",
)  # fmt: skip
@click.option(
    "--gpus-per-run", type=click.FloatRange(0.0), default=0.0, show_default=True,
    help="GPUs each run reserves (fractions share one); runs then train with device=auto.",
)  # fmt: skip
@click.option(
    "--minutes", type=click.FloatRange(0.01), default=None,
    help="Stop each run after this long with a checkpoint; the same command goes on.",
)  # fmt: skip
@click.option("--no-report", is_flag=True, help="Skip the report at the end.")
def run(
    folder: str,
    overrides: tuple[str, ...],
    tasks: tuple[str, ...],
    seeds: tuple[int, ...],
    vary: tuple[str, ...],
    presets: tuple[str, ...],
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
    minutes: float | None,
    no_report: bool,
) -> None:
    """Train every run of the grid TASKS x variants x SEEDS into FOLDER (OVERRIDES,
    key=value, apply to every run). Finished runs are skipped and unfinished ones resumed,
    so repeating the command continues a sweep. FOLDER is a path every node sees or an
    object-store URI such as s3://bucket/sweeps/NAME (runs train in a local mirror and
    upload each checkpoint)."""
    from boom_control.sweep.grid import Grid
    from boom_control.sweep.report import sweep_report
    from boom_control.sweep.run import SweepSettings, run_sweep

    if gpus_per_run == 0 and not any(o.startswith("device=") for o in overrides):
        overrides = (*overrides, "device=cpu")
    grid = Grid(tasks, seeds, Grid.parse_vary(vary), tuple(overrides), tuple(presets))
    settings = SweepSettings(address, cpus_per_run, gpus_per_run, minutes)
    click.echo(
        f"sweep {folder}: {len(tasks)} task(s) x {len(grid.variants())} variant(s) x "
        f"{len(seeds)} seed(s) = {len(grid.runs())} runs"
    )
    run_sweep(grid, _folder(folder, must_exist=False), settings)
    if not no_report:
        report = sweep_report(folder)
        click.echo(report["text"])
        if "plot" in report:
            click.echo(f"wrote {report['plot']}")


@sweep.command("report")
@click.argument("folder")
@click.option("--no-plot", is_flag=True, help="Skip the PNG of the learning curves.")
def report(folder: str, no_plot: bool) -> None:
    """Final and best returns per cell of the sweep in FOLDER (mean and 95% CI over
    seeds), written to FOLDER/report.json, and the learning curves to FOLDER/curves.png."""
    from boom_control.sweep.report import sweep_report

    result = sweep_report(_folder(folder, must_exist=True), plot=not no_plot)
    click.echo(result["text"])
    if "plot" in result:
        click.echo(f"wrote {result['plot']}")
    click.echo(f"wrote {str(folder).rstrip('/')}/report.json")
