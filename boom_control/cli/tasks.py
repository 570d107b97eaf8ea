"""``boom tasks``: every task with its observation/action dims, control rate and episode
length; ``boom tasks zmq:ENDPOINT``: what a bridge server serves."""

from __future__ import annotations

import json

import click
from tqdm import tqdm

from boom_control.envs import humanoid_bench as hb
from boom_control.envs import list_tasks, make_env
from boom_control.envs.registry import FAMILIES
from boom_control.errors import TaskError


@click.command()
@click.argument("served", required=False, metavar="[zmq:ENDPOINT]")
@click.option(
    "--family",
    "families",
    multiple=True,
    type=click.Choice([f for f in FAMILIES if f != "zmq"]),
    help="Only these task families (repeatable). Default: all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per task.")
def tasks(served: str | None, families: tuple[str, ...], as_json: bool) -> None:
    """List every task id this installation can build.

    Each task is instantiated once to read its real dimensions, so the list is exact for
    the installed dm_control / MuJoCo versions. With zmq:ENDPOINT, describe the task a
    bridge server serves there instead (dims, rate, episodes, observation contract,
    simulations hosted) without taking a simulation.
    """
    if served is not None:
        if not served.startswith("zmq:") or served == "zmq:":
            raise click.UsageError(
                f"expected zmq:ENDPOINT, e.g. zmq:tcp://127.0.0.1:5555, got {served!r}"
            )
        _describe_served(served[len("zmq:") :], as_json)
        return
    families = families or ("dmc", "h1", "hb")
    ids = list_tasks(families)
    rows, problems = [], []
    for task_id in tqdm(ids, desc="reading task specs", leave=False, disable=None):
        try:
            env = make_env(task_id, seed=0)
        except TaskError as err:
            problems.append(f"{task_id}: {err}")
            continue
        rows.append(env.spec.summary())
        env.close()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
    else:
        header = f"{'task':34} {'obs':>5} {'act':>4} {'rate Hz':>8} {'episode':>8}  terminates"
        click.echo(header)
        click.echo("-" * len(header))
        for r in rows:
            click.echo(
                f"{r['task_id']:34} {r['obs_dim']:5d} {r['action_dim']:4d} "
                f"{r['control_rate']:8.2f} {r['episode_length']:8d}  "
                f"{'yes' if r['terminates'] else 'no'}"
            )
    for p in problems:
        click.echo(f"unavailable: {p}", err=True)
    if "hb" in families and not hb.available():
        click.echo(
            "hb: Humanoid-Bench is not installed here; reach it through the bridge "
            "(python -m sim_bridge gym ... in its own environment, then task=zmq:...; "
            "see docs/humanoid_bench.md)",
            err=True,
        )


def _describe_served(endpoint: str, as_json: bool) -> None:
    """Print what the server at ``endpoint`` announces in its handshake."""
    from sim_bridge.client import BridgeClient, BridgeError

    client = BridgeClient(endpoint, timeout=2.0, retries=1, name="boom-tasks", keepalive=False)
    try:
        info = client.connect().raw
    except BridgeError as err:
        raise click.ClickException(str(err)) from None
    finally:
        client.close()
    fields = info.get("contract", {}).get("fields", [])
    if as_json:
        keys = ("task_id", "obs_dim", "action_dim", "control_period", "control_rate")
        more = ("episode_length", "terminates", "mode", "server", "instances", "client_timeout")
        row = {k: info.get(k) for k in (*keys, *more, "lease_timeout", "contract_hash")}
        row["observation_names"] = info.get("observation_names")
        row["contract"] = info.get("contract")
        click.echo(json.dumps(row))
        return
    rate = info.get("control_rate") or 1.0 / float(info["control_period"])
    click.echo(f"zmq:{endpoint} serves {info['task_id']} ({info.get('server')}, {info['mode']})")
    click.echo(f"  observation  {info['obs_dim']} floats, contract {info['contract_hash']}")
    for f in fields:
        names = f.get("names", [])
        shown = ", ".join(names[:4]) + (f", ... ({len(names)})" if len(names) > 4 else "")
        click.echo(f"    {f['key']:10} {f['size']:5d}  [{f.get('unit', '1')}]  {shown}")
    if info.get("observation_names"):
        click.echo(f"    names from: {info['observation_names']}")
    mapping = info.get("action_mapping") or {}
    named = " (actuators named)" if mapping.get("names") else ""
    click.echo(f"  action       {info['action_dim']} in [-1, 1]{named}")
    click.echo(
        f"  rate         {rate:g} Hz, episodes of {info.get('episode_length')} steps, "
        f"{'terminating early' if info.get('terminates') else 'never terminating early'}"
    )
    click.echo(
        f"  sessions     {info.get('instances', 1)} simulation(s) at once, clients forgotten "
        f"after {info.get('client_timeout', '?')} s of silence, control lease "
        f"{info.get('lease_timeout') or 'off'}"
    )
