"""``boom sim TASK``: serve a task over the ZeroMQ bridge (lockstep or real time)."""

from __future__ import annotations

import json

import click

from boom_control.cli.params import CPU_LIST, pin_cpus
from sim_bridge.server import BUSY_POLL_DEFAULT


def _parse_options(pairs: tuple[str, ...]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@click.command()
@click.argument("task", required=False)
@click.option(
    "--bind",
    "endpoint",
    default="tcp://127.0.0.1:5555",
    show_default=True,
    help="ZeroMQ endpoint (tcp://HOST:PORT or ipc://PATH).",
)
@click.option(
    "--mode",
    type=click.Choice(["lockstep", "realtime"]),
    default=None,
    help="lockstep: one step per action; realtime: wall clock. "
    "[default: lockstep; realtime with --driver]",
)
@click.option(
    "--driver",
    metavar="MODULE:CLASS",
    help="Serve a robot through this RobotDriver instead of a simulated TASK "
    "(real time only; e.g. sim_bridge.drivers.mock:MockDriver).",
)
@click.option(
    "--busy-poll",
    type=click.FloatRange(0.0, 1.0),
    default=BUSY_POLL_DEFAULT,
    show_default=True,
    help="Lockstep: seconds the server keeps polling after each reply before it blocks "
    "(lower round trips for a client stepping back to back; 0 blocks at once).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Task seed.")
@click.option(
    "--on-late",
    type=click.Choice(["hold", "damp"]),
    default="hold",
    show_default=True,
    help="Real time: a tick without a new action holds the last "
    "action or applies the neutral (damping) action.",
)
@click.option(
    "--watchdog",
    type=int,
    default=None,
    help="Real time: periods without any action before the neutral action. "
    "[default: 10; 5 with --driver]",
)
@click.option(
    "--cpus",
    type=CPU_LIST,
    default=None,
    help="Pin the server to these CPUs, e.g. 0. A lockstep server and its client on one "
    "shared CPU hand over without cross-CPU wake-ups (busy polling is then off).",
)
@click.option(
    "--lease-timeout",
    type=click.FloatRange(0.0),
    default=None,
    help="Seconds of silence after which another client may take control (the control "
    "lease); 0: no lease, any client may reset and act. [default: 1 in real time, "
    "no lease in lockstep]",
)
@click.option(
    "--max-clients",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Clients admitted at once; a hello past it gets a busy error.",
)
@click.option(
    "--max-instances",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="Lockstep: simulations alive at once, one per client (a trainer and each of its "
    "evaluation workers is a client); a reset past it gets a 'full' error.",
)
@click.option(
    "--client-timeout",
    type=click.FloatRange(0.1, 86400.0),
    default=10.0,
    show_default=True,
    help="Seconds without a message before a client is forgotten and its simulation "
    "given back (clients of the bridge library send heartbeats while busy).",
)
@click.option(
    "--obs-delay-ticks",
    type=click.IntRange(0, 100),
    default=0,
    show_default=True,
    help="Real time, for testing latency compensation: push every observation this many "
    "ticks after it was produced (a sensor latency; the frames say how long they waited).",
)
@click.option("--allow-remote", is_flag=True, help="Allow binding a non-loopback interface.")
@click.option(
    "--curve-secret-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Server certificate with secret key: encrypt with CURVE.",
)
@click.option(
    "--curve-clients",
    type=click.Path(exists=True, file_okay=False),
    help="Directory of authorised client public certificates.",
)
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    help="Task option key=value (JSON values), e.g. -o action_repeat=4.",
)
def sim(
    task: str | None,
    endpoint: str,
    mode: str | None,
    driver: str | None,
    busy_poll: float,
    seed: int,
    on_late: str,
    watchdog: int | None,
    cpus: tuple[int, ...] | None,
    lease_timeout: float | None,
    max_clients: int,
    max_instances: int,
    client_timeout: float,
    obs_delay_ticks: int,
    allow_remote: bool,
    curve_secret_key: str | None,
    curve_clients: str | None,
    options: tuple[str, ...],
) -> None:
    """Serve TASK (any `boom tasks` id) over the sim bridge until interrupted.

    With --driver, serve a robot instead: the same protocol, with the bridge's watchdog,
    action limits and estop in front of the driver.
    """
    from sim_bridge.server import ServerConfig
    from sim_bridge.transport import BridgeSecurityError, check_bind

    if (task is None) == (driver is None):
        raise click.UsageError("give a TASK to simulate or --driver MODULE:CLASS, not both")
    if driver is not None and mode == "lockstep":
        raise click.UsageError("a robot cannot run lockstep: drop --mode or use realtime")
    if driver is not None and options:
        raise click.UsageError("-o/--option sets task options; it does not apply to --driver")
    pin_cpus(cpus)  # before any thread (ZeroMQ's I/O thread included) is started
    mode = mode or ("realtime" if driver else "lockstep")
    watchdog = watchdog if watchdog is not None else (5 if driver else 10)
    try:
        config = ServerConfig(
            endpoint=endpoint,
            mode=mode,
            on_late=on_late,
            watchdog_periods=watchdog,
            allow_remote=allow_remote,
            curve_secret_key=curve_secret_key,
            curve_clients=curve_clients,
            busy_poll=busy_poll,
            lease_timeout=lease_timeout,
            max_clients=max_clients,
            max_instances=max_instances,
            client_timeout=client_timeout,
            obs_delay_ticks=obs_delay_ticks,
        )
        check_bind(endpoint, allow_remote)
    except (ValueError, BridgeSecurityError) as err:
        raise click.UsageError(str(err)) from None
    if driver is not None:
        from dataclasses import replace

        from sim_bridge.hardware import load_driver, serve_driver

        try:
            robot = load_driver(driver)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        click.echo(f"boom sim: robot {robot.name} ({driver}) on {endpoint} (realtime)", err=True)
        serve_driver(robot, replace(config, name=f"robot:{robot.name}"))
        return
    from boom_control.sim.backend import serve_task

    click.echo(f"boom sim: {task} on {endpoint} ({mode})", err=True)
    serve_task(task, config, seed=seed, **_parse_options(options))
