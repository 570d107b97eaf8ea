"""``boom train``, ``boom eval`` and ``boom plot``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

TRAIN_EPILOG = """\b
Common keys (every key and its value: --print-config):
  task, size (1M | 5M), steps, seed, device (auto | cpu | cuda[:N])
  eval_freq, eval_episodes, eval_workers, checkpoint_every
  overlap_update=true       update beside the planner (a second core)
  planner.threads=2         planning rollouts on two threads (with overlap: 2 cores busy)
  planner.cuda_graph=true   on CUDA: MPPI iterations replayed from a CUDA graph
  time_limit_minutes=N      stop with a checkpoint after N minutes
  actors=N                  N Ray actors collect with MPPI, this process learns (docs/scaling.md)
  agent.align_lambda=0      TD-MPC2's policy objective (the baseline)
  run_dir=DIR resume=true   continue a run where it stopped
  init_from=RUN|BUNDLE      start from another run's (or a bundle's) network weights
  seed_actor=planner        with init_from: the seed phase acts with the planner
  agent.freeze_world_model=true  with init_from: only the policy learns (distillation)
  agent.freeze_latent=true  with init_from: encoder and dynamics stay, heads and policy learn
  policy_acts=P             send the policy's action on a fraction P of the steps
  agent.discount=G          fixed discount (default: 0.995 for 1000-step episodes)
\b
Presets (--preset NAME): train_fast (fast Mish, bf16 where native, torch.compile), train_smoke
"""


@click.command(context_settings={"ignore_unknown_options": True}, epilog=TRAIN_EPILOG)
@click.argument("overrides", nargs=-1)
@click.option(
    "--preset",
    "presets",
    multiple=True,
    help="Extra YAML preset(s) from configs/ applied after train.yaml (e.g. train_smoke).",
)
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def train(overrides: tuple[str, ...], presets: tuple[str, ...], print_config: bool) -> None:
    """Train a BOOM agent. OVERRIDES are dotted key=value pairs, e.g.

    boom train task=dmc:cartpole-swingup size=1M steps=20000 seed=1 device=cpu

    Continue a stopped run with: boom train run_dir=runs/<run> resume=true
    """
    from boom_control.config import to_yaml
    from boom_control.device import describe_device, resolve_device
    from boom_control.errors import ConfigError
    from boom_control.train.checkpoint import latest_checkpoint
    from boom_control.train.config import load_train_config
    from boom_control.train.trainer import build_trainer

    cfg = load_train_config(list(overrides), presets=("train", *presets))
    if print_config:
        click.echo(to_yaml(cfg), nl=False)
        return
    device = resolve_device(cfg.device)
    if cfg.run_dir is None:
        cfg = dataclasses.replace(cfg, run_dir=str(cfg.default_run_dir()))
    run_dir = Path(cfg.run_dir)
    if cfg.resume and latest_checkpoint(run_dir) is None:
        raise ConfigError(f"resume=true but {run_dir} holds no checkpoints/latest.pt")
    if not cfg.resume and latest_checkpoint(run_dir) is not None:
        raise ConfigError(
            f"{run_dir} already holds a run; add resume=true to continue it or pick another run_dir"
        )
    click.echo(f"run dir: {run_dir}")
    click.echo(f"device: {describe_device(device)}")
    click.echo(f"task: {cfg.task}  model: {cfg.model.size}  steps: {cfg.steps}  seed: {cfg.seed}")
    hint = _cpu_speed_hint(cfg, device.type)
    if hint:
        click.echo(hint)
    with build_trainer(cfg, device) as trainer:
        finished = trainer.run()
    state = "done" if finished else f"stopped by {trainer.stopped_by} at step {trainer.step}"
    click.echo(
        f"{state}: {trainer.step} steps, {trainer.updates} updates; last eval return "
        f"(planner) {trainer.last_eval:.1f}"
    )
    if not finished:
        click.echo(f"continue with: boom train run_dir={run_dir} resume=true")
    if (run_dir / "curve.png").is_file():
        click.echo(f"learning curve: {run_dir / 'curve.png'}")


def _cpu_speed_hint(cfg: Any, device_type: str) -> str | None:
    """On CPU, name the speed settings a run leaves off: compilation turned off, and the
    opt-in ones that use a second core (the overlapped update, the split plan)."""
    from boom_control.device import usable_cpus

    if device_type != "cpu":
        return None
    off = []
    if cfg.planner.compile is False or cfg.agent.compile is False:
        off.append("--preset train_fast")
    if not cfg.overlap_update and not cfg.actors:
        off.append("overlap_update=true")
    if cfg.planner.threads == 1 and usable_cpus() >= 2:
        off.append("planner.threads=2")
    if not off:
        return None
    return f"hint: on CPU, {' and '.join(off)} train faster (BENCHMARKS.md)"
