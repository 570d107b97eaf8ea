"""``boom train``, ``boom eval`` and ``boom plot``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("overrides", nargs=-1)
@click.option(
    "--preset",
    "presets",
    multiple=True,
    help="Extra YAML preset(s) from configs/ applied after train.yaml (e.g. train_smoke).",
)
def train(overrides: tuple[str, ...], presets: tuple[str, ...]) -> None:
    """Train a BOOM agent. OVERRIDES are dotted key=value pairs, e.g.

    boom train task=dmc:cartpole-swingup preset=1M steps=20000 seed=1 device=cpu

    Continue a stopped run with: boom train run_dir=runs/<run> resume=true
    """
    from boom_control.config import ConfigError
    from boom_control.device import describe_device, resolve_device
    from boom_control.train.checkpoint import latest_checkpoint
    from boom_control.train.config import load_train_config
    from boom_control.train.trainer import build_trainer

    cfg = load_train_config(list(overrides), presets=("train", *presets))
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
    click.echo(f"task: {cfg.task}  model: {cfg.model.preset}  steps: {cfg.steps}  seed: {cfg.seed}")
    trainer = build_trainer(cfg, device)
    try:
        trainer.run()
    finally:
        trainer.logger.close()
    click.echo(
        f"done: {trainer.step} steps, {trainer.updates} updates; last eval return "
        f"(planner) {trainer.last_eval:.1f}"
    )
    if (run_dir / "curve.png").is_file():
        click.echo(f"learning curve: {run_dir / 'curve.png'}")


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True))
@click.option("--episodes", "-n", default=10, show_default=True, help="Episodes per mode.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=None, help="Evaluation seed (default: the run's).")
def evaluate(checkpoint: str, episodes: int, device: str, seed: int | None) -> None:
    """Evaluate CHECKPOINT (a .pt file or a run folder) with the planner and the policy."""
    from boom_control.train.evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(checkpoint, episodes=episodes, device=device, seed=seed)
    s = res.scores
    click.echo(
        f"checkpoint: {res.checkpoint} (step {res.step}, task {res.task}, device {res.device})"
    )
    click.echo(
        f"planner: {s['planner_return_mean']:.1f} ± {s['planner_return_std']:.1f} "
        f"over {episodes} episodes"
    )
    click.echo(
        f"policy:  {s['policy_return_mean']:.1f} ± {s['policy_return_std']:.1f} "
        f"over {episodes} episodes"
    )


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
