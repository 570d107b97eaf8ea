"""``boom tasks``: every task with its observation/action dims, control rate and episode length."""

from __future__ import annotations

import json

import click
from tqdm import tqdm

from boom_control.envs import TaskError, list_tasks, make_env
from boom_control.envs import humanoid_bench as hb
from boom_control.envs.registry import FAMILIES


@click.command()
@click.option(
    "--family",
    "families",
    multiple=True,
    type=click.Choice([f for f in FAMILIES if f != "zmq"]),
    help="Only these task families (repeatable). Default: all.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per task.")
def tasks(families: tuple[str, ...], as_json: bool) -> None:
    """List every task id this installation can build.

    Each task is instantiated once to read its real dimensions, so the list is exact for
    the installed dm_control / MuJoCo versions.
    """
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
            "(python -m sim_bridge.gym_server ... in its own environment, then task=zmq:...)",
            err=True,
        )
