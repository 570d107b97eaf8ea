"""``boom profile``: planning latency of a bundle on this machine, or a control run's log.

Two subcommands; the first is the default, so ``boom profile BUNDLE ...`` means
``boom profile bundle BUNDLE ...``::

    boom profile bundle BUNDLE --backend onnx --budget-ms 15      # live sweep
    boom profile report RUN_LOG                                   # telemetry of boom control
"""

from __future__ import annotations

from pathlib import Path

import click

from boom_control.cli.params import CPU_LIST, backend_option


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers, got {text!r}")
    return values


class DefaultGroup(click.Group):
    """A group that runs ``bundle`` when the first argument is not a subcommand."""

    default = "bundle"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup)
def profile() -> None:
    """Planning latency of a bundle (default: `boom profile BUNDLE`), or a control run's
    telemetry (`boom profile report RUN_LOG`)."""


@profile.command("bundle")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@backend_option("onnx", "Planner runtime (the same backends as boom control).")
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0: default).")
@click.option(
    "--cpus", type=CPU_LIST, default=None, help="Pin the process to these CPUs, e.g. 0,1."
)
@click.option("--samples", default="64,128,256,512", show_default=True, help="MPPI samples.")
@click.option("--iterations", default="1,2,4,6,8", show_default=True, help="MPPI iterations.")
@click.option(
    "--precision",
    default="",
    help="fp32 and/or bf16, comma-separated (default: every precision the backend offers).",
)
@click.option(
    "--repeats", type=int, default=1000, show_default=True, help="Repetitions per setting."
)
@click.option("--warmup", type=int, default=20, show_default=True, help="Unrecorded repetitions.")
@click.option(
    "--max-seconds",
    type=float,
    default=300.0,
    show_default=True,
    help="Time cap of the sweep; repetitions per setting are cut to fit (at least 30).",
)
@click.option(
    "--budget-ms",
    type=float,
    multiple=True,
    help="Fit the largest settings whose plan p99 fits margin x budget (repeatable).",
)
@click.option("--margin", type=float, default=0.8, show_default=True, help="Safety margin.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: profile-<bundle>-<backend>-<device>).",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Observation/noise seed.")
def bundle_cmd(
    bundle: Path,
    device: str,
    backend: str,
    threads: int,
    cpus: tuple[int, ...] | None,
    samples: str,
    iterations: str,
    precision: str,
    repeats: int,
    warmup: int,
    max_seconds: float,
    budget_ms: tuple[float, ...],
    margin: float,
    out: Path | None,
    no_plots: bool,
    seed: int,
) -> None:
    """Sweep samples x iterations (x precision) on BUNDLE and time every planning stage.

    Prints p50/p90/p99/p99.9/max per setting and per stage, writes profile.json, raw
    timings, plots and, with --budget-ms, a fitted_<B>ms.yaml of controller settings.
    """
    from boom_control.profile.bundle import format_sweep, profile_bundle
    from boom_control.profile.sweep import PRECISIONS, SweepConfig

    offered = PRECISIONS[backend]
    precisions = tuple(p.strip() for p in precision.split(",") if p.strip()) or offered
    for p in precisions:
        if p not in offered:
            raise click.BadParameter(
                f"{backend} offers {', '.join(offered)}", param_hint="--precision"
            )
    if not 0 < margin <= 1:
        raise click.BadParameter("must be in (0, 1]", param_hint="--margin")
    cfg = SweepConfig(
        samples=_ints(samples),
        iterations=_ints(iterations),
        precisions=precisions,
        repeats=repeats,
        min_repeats=min(30, repeats),
        warmup=warmup,
        max_seconds=max_seconds,
        seed=seed,
    )
    out = out or Path(f"profile-{bundle.resolve().name}-{backend}-{device.replace(':', '')}")

    def progress(cell) -> None:
        plan = cell.times["plan"]
        click.echo(
            f"  {cell.precision} N={cell.samples} I={cell.iterations}: {cell.repeats} reps, "
            f"median {float(sorted(plan)[len(plan) // 2]):.2f} ms",
            err=True,
        )

    result = profile_bundle(
        bundle, backend, device, out, cfg, threads=threads, cpus=cpus,
        budgets=budget_ms, margin=margin, plots=not no_plots, progress=progress,
    )  # fmt: skip
    click.echo(format_sweep(result))
    for b in result["budgets"]:
        if "config" in b:
            click.echo(f"wrote {b['config']}: boom control {bundle} --config {b['config']} ...")
    click.echo(f"wrote {out / 'profile.json'}")
    if result["load"]["high"]:
        click.echo("warning: " + result["load"]["text"], err=True)


@profile.command("report")
@click.argument("run_log", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: <log name>-report next to the log).",
)
@click.option("--no-plots", is_flag=True, help="Skip the PNG figures.")
def report_cmd(run_log: Path, out: Path | None, no_plots: bool) -> None:
    """Statistics and plots of a `boom control --telemetry RUN_LOG` file: stage latency,
    deadline misses, fallback rate, observation age, send jitter, actor divergence."""
    from boom_control.profile.report import format_report, report_run

    out = out or run_log.with_name(run_log.stem + "-report")
    result = report_run(run_log, out, plots=not no_plots)
    click.echo(format_report(result))
    click.echo(f"wrote {out / 'report.json'}")
