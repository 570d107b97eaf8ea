"""``boom control BUNDLE``: run a bundle at a fixed rate against a bridge server."""

from __future__ import annotations

import sys
import time

import click

from boom_control.cli.params import backend_option

CONFIG_KEYS = ("samples", "iterations", "budget_ms", "backend", "device", "threads", "bf16")


def _load_config(ctx: click.Context, _param: click.Parameter, path: str | None) -> str | None:
    """``--config FILE``: YAML (e.g. ``boom profile --budget-ms`` output) giving defaults for
    the planner options; flags given on the command line still win."""
    if path is None:
        return None
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as err:
        raise click.BadParameter(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path} must hold a mapping of option: value")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise click.BadParameter(
            f"{path}: unknown key(s) {unknown}; valid keys: {', '.join(CONFIG_KEYS)}"
        )
    ctx.default_map = {**(ctx.default_map or {}), **data}
    return path


@click.command()
@click.argument("bundle", type=click.Path(exists=True))
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    callback=_load_config,
    is_eager=True,
    expose_value=False,
    help="YAML with defaults for samples, iterations, budget_ms, backend, device, threads, "
    "bf16 (e.g. fitted_15ms.yaml from `boom profile --budget-ms 15`); flags win.",
)
@click.option(
    "--connect",
    "endpoint",
    default="tcp://127.0.0.1:5555",
    show_default=True,
    help="Bridge endpoint (boom sim, the gym adapter or a robot).",
)
@click.option("--rate", type=float, default=50.0, show_default=True, help="Control rate (Hz).")
@click.option(
    "--budget-ms",
    type=float,
    default=15.0,
    show_default=True,
    help="Planning budget per tick; the plan's action must be ready by then.",
)
@backend_option("torch", "Planner runtime (add --bf16 to torch for the fastest CPU plan).")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="cpu, cuda, cuda:N or auto (CUDA when a GPU is visible); CUDA asked for and "
    "unavailable is an error.",
)
@click.option(
    "--duration", type=float, default=None, help="Seconds to run (default: until Ctrl-C)."
)
@click.option("--telemetry", type=click.Path(dir_okay=False), default=None, help="Per-tick log.")
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0: default).")
@click.option("--samples", type=int, default=None, help="MPPI samples (default: the bundle's).")
@click.option(
    "--iterations", type=int, default=None, help="MPPI iterations (default: the bundle's)."
)
@click.option(
    "--bf16", is_flag=True, help="Evaluate on a bf16 copy of the weights (torch, cudagraph)."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Planner noise and episode seed."
)
@click.option(
    "--stale-periods",
    type=int,
    default=5,
    show_default=True,
    help="Ticks without a new observation before the neutral (damping) command.",
)
@click.option(
    "--rt-priority",
    type=int,
    default=0,
    show_default=True,
    help="SCHED_FIFO priority of the loop thread (Linux, needs the privilege; 0: off).",
)
@click.option(
    "--planner-rt-priority",
    type=int,
    default=0,
    show_default=True,
    help="SCHED_FIFO priority of the planning thread (below --rt-priority; 0: off).",
)
@click.option(
    "--policy-only",
    is_flag=True,
    help="Send the policy's action on every tick, no MPPI (the baseline of the planner, or "
    "a machine too slow to plan).",
)
@click.option("--quiet-status", is_flag=True, help="No live status line.")
@click.option(
    "--take-over",
    is_flag=True,
    help="Take control of a server another controller holds (its control lease); "
    "without it such a server refuses this one.",
)
def control(
    bundle: str,
    endpoint: str,
    rate: float,
    budget_ms: float,
    backend: str,
    device: str,
    duration: float | None,
    telemetry: str | None,
    threads: int,
    samples: int | None,
    iterations: int | None,
    bf16: bool,
    seed: int,
    stale_periods: int,
    rt_priority: int,
    planner_rt_priority: int,
    policy_only: bool,
    quiet_status: bool,
    take_over: bool,
) -> None:
    """Run BUNDLE at --rate against the bridge at --connect, never sending an action late."""
    from boom_control.control.factory import build_backend
    from boom_control.control.loop import Controller, LoopConfig, stop_on_signals
    from boom_control.control.report import format_summary
    from boom_control.envs.contract import ObservationContract
    from boom_control.telemetry import TelemetryWriter
    from export import load_bundle
    from sim_bridge.client import BridgeClient

    cfg = LoopConfig(
        rate=rate,
        budget_ms=budget_ms,
        duration=duration,
        seed=seed,
        stale_periods=stale_periods,
        rt_priority=rt_priority,
        planner_rt_priority=planner_rt_priority,
        policy_only=policy_only,
    )
    cfg.check()
    b = load_bundle(bundle)
    client = BridgeClient(endpoint, name="boom-control", take_over=take_over)
    try:
        info = client.connect()
        # Checked here (not only by the server) so the error names the differing entry.
        b.check_contract(
            ObservationContract.from_json(info.raw["contract"]),
            where=f"the server at {endpoint} ({info.task_id})",
        )
        warmup_s, t = 0.0, time.monotonic()
        planner = build_backend(
            b, backend, device, threads=threads, bf16=bf16, samples=samples, iterations=iterations
        )
        planner.warmup(b.obs_dim, plan=not policy_only)
        warmup_s = time.monotonic() - t
        click.echo(f"boom control: {b.task_id} from {bundle} -> {endpoint} ({info.mode})", err=True)
        click.echo(
            f"  backend {planner.describe()}" + (" (policy only)" if policy_only else ""),
            err=True,
        )
        click.echo(
            f"  rate {rate:g} Hz, budget {budget_ms:g} ms, warm-up {warmup_s:.2f} s", err=True
        )
        header = {
            "bundle": str(bundle),
            "task": b.task_id,
            "backend": planner.name,
            "device": planner.device_used(),
            "rate": rate,
            "budget_ms": budget_ms,
            "bf16": bf16,
            "mode": info.mode,
            "policy_only": policy_only,
            "planner": {
                "samples": planner.consts.num_samples,
                "iterations": planner.consts.iterations,
                "horizon": planner.consts.horizon,
            },
            "warmup_s": warmup_s,
        }
        writer = TelemetryWriter(telemetry, header) if telemetry else None
        loop = Controller(planner, client, cfg, writer, status=None if quiet_status else sys.stderr)
        with stop_on_signals(loop.stop_event):  # Ctrl-C / SIGTERM: clean stop
            summary = loop.run()
    finally:
        client.close()
    summary["warmup_s"] = warmup_s
    click.echo(f"boom control: stopped ({summary['stop_reason']})", err=True)
    click.echo(format_summary(summary))
