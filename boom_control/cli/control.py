"""``boom control BUNDLE [KEY=VALUE ...]``: run a bundle at a fixed rate against a bridge
server (the settings: :class:`~boom_control.control.config.ControlConfig`)."""

from __future__ import annotations

import sys
from typing import Any

import click

from boom_control.cli.params import backend_option

EPILOG = """Settings come from configs/control.yaml, then --config FILE, then KEY=VALUE
overrides after the bundle (any ControlConfig key, e.g. rate=25 samples=32), then the flags.
"""


@click.command(epilog=EPILOG)
@click.argument("bundle", type=click.Path(exists=True))
@click.argument("overrides", nargs=-1)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML of controller settings (e.g. fitted_15ms.yaml from `boom profile "
    "--budget-ms 15`); KEY=VALUE overrides and flags win over it.",
)
@click.option(
    "--connect",
    default=None,
    help="Bridge endpoint (boom sim, the gym adapter or a robot). [default: tcp://127.0.0.1:5555]",
)
@click.option("--rate", type=float, default=None, help="Control rate (Hz). [default: 50]")
@click.option(
    "--budget-ms",
    type=float,
    default=None,
    help="Planning budget per tick; the plan's action must be ready by then. [default: 15]",
)
@backend_option(
    None, "Planner runtime (add --bf16 to torch for the fastest CPU plan). [default: torch]"
)
@click.option(
    "--device",
    default=None,
    help="cpu, cuda, cuda:N or auto (CUDA when a GPU is visible); CUDA asked for and "
    "unavailable is an error. [default: auto]",
)
@click.option(
    "--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."
)
@click.option("--telemetry", type=click.Path(dir_okay=False), default=None, help="Per-tick log.")
@click.option("--threads", type=int, default=None, help="CPU threads (0: default).")
@click.option("--samples", type=int, default=None, help="MPPI samples (default: the bundle's).")
@click.option(
    "--iterations", type=int, default=None, help="MPPI iterations (default: the bundle's)."
)
@click.option(
    "--bf16",
    is_flag=True,
    default=None,
    help="Evaluate on a bf16 copy of the weights (torch, cudagraph).",
)
@click.option("--seed", type=int, default=None, help="Planner noise and episode seed. [default: 0]")
@click.option(
    "--stale-periods",
    type=int,
    default=None,
    help="Ticks without a new observation before the neutral (damping) command. [default: 5]",
)
@click.option(
    "--rt-priority",
    type=int,
    default=None,
    help="SCHED_FIFO priority of the loop thread (Linux, needs the privilege; 0: off).",
)
@click.option(
    "--planner-rt-priority",
    type=int,
    default=None,
    help="SCHED_FIFO priority of the planning thread (below --rt-priority; 0: off).",
)
@click.option(
    "--policy-only",
    is_flag=True,
    default=None,
    help="Send the policy's action on every tick, no MPPI (the baseline of the planner, or "
    "a machine too slow to plan).",
)
@click.option(
    "--compensate",
    is_flag=True,
    default=None,
    help="Real time: plan from the latent predicted through the actions already sent that "
    "act after the observation was produced (latency compensation).",
)
@click.option("--quiet-status", is_flag=True, help="No live status line.")
@click.option(
    "--take-over",
    is_flag=True,
    default=None,
    help="Take control of a server another controller holds (its control lease); "
    "without it such a server refuses this one.",
)
def control(
    bundle: str,
    overrides: tuple[str, ...],
    config_file: str | None,
    quiet_status: bool,
    **flags: Any,
) -> None:
    """Run BUNDLE against the bridge at --connect, never sending an action late."""
    from boom_control.config import merge, parse_overrides
    from boom_control.control.config import PRESET, load_control_config
    from boom_control.control.report import format_summary
    from boom_control.control.run import run_controller

    given = {k: v for k, v in flags.items() if v is not None}
    presets = [PRESET, *([config_file] if config_file else [])]
    cfg = load_control_config(merge(parse_overrides(overrides), given), presets)
    summary = run_controller(
        bundle,
        cfg,
        status=None if quiet_status else sys.stderr,
        announce=lambda line: click.echo(line, err=True),
    )
    click.echo(f"boom control: stopped ({summary['stop_reason']})", err=True)
    click.echo(format_summary(summary))
