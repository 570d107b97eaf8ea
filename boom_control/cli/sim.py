"""``boom sim TASK``: serve a task over the ZeroMQ bridge (lockstep or real time)."""

from __future__ import annotations

import json

import click


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
@click.argument("task")
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
    default="lockstep",
    show_default=True,
    help="lockstep: one step per action; realtime: wall clock.",
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
    default=10,
    show_default=True,
    help="Real time: periods without any action before the neutral action.",
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
    task: str,
    endpoint: str,
    mode: str,
    seed: int,
    on_late: str,
    watchdog: int,
    allow_remote: bool,
    curve_secret_key: str | None,
    curve_clients: str | None,
    options: tuple[str, ...],
) -> None:
    """Serve TASK (any `boom tasks` id) over the sim bridge until interrupted."""
    from sim_bridge.server import ServerConfig
    from sim_bridge.sim_server import serve_task
    from sim_bridge.transport import BridgeSecurityError, check_bind

    try:
        config = ServerConfig(
            endpoint=endpoint,
            mode=mode,
            on_late=on_late,
            watchdog_periods=watchdog,
            allow_remote=allow_remote,
            curve_secret_key=curve_secret_key,
            curve_clients=curve_clients,
        )
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    try:
        check_bind(endpoint, allow_remote)
        click.echo(f"boom sim: {task} on {endpoint} ({mode})", err=True)
        serve_task(task, config, seed=seed, **_parse_options(options))
    except BridgeSecurityError as err:
        raise click.UsageError(str(err)) from None
