"""``boom train``, ``boom eval`` and ``boom plot``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

TRAIN_EPILOG = """\b
Common keys (every key and its value: --print-config):
  task, preset (1M | 5M), steps, seed, device (auto | cpu | cuda[:N])
  eval_freq, eval_episodes, eval_workers, checkpoint_every
  overlap_update=true       update beside the planner (a second core)
  planner.threads=2         planning rollouts on two threads (with overlap: 2 cores busy)
  planner.cuda_graph=true   on CUDA: MPPI iterations replayed from a CUDA graph
  time_limit_minutes=N      stop with a checkpoint after N minutes
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

    boom train task=dmc:cartpole-swingup preset=1M steps=20000 seed=1 device=cpu

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
    click.echo(f"task: {cfg.task}  model: {cfg.model.preset}  steps: {cfg.steps}  seed: {cfg.seed}")
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
    """On CPU, name the speed settings a run leaves off (they are ~4x faster together)."""
    from boom_control.device import usable_cpus

    if device_type != "cpu":
        return None
    off = []
    if not (cfg.planner.compile and cfg.agent.compile and cfg.planner.precision != "fp32"):
        off.append("--preset train_fast")
    if not cfg.overlap_update:
        off.append("overlap_update=true")
    if cfg.planner.threads == 1 and usable_cpus() >= 2:
        off.append("planner.threads=2")
    if not off:
        return None
    return f"hint: on CPU, {' and '.join(off)} train several times faster (BENCHMARKS.md)"


@click.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--episodes", "-n", default=10, show_default=True, help="Episodes per mode.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=None, help="Evaluation seed (default: the run's).")
@click.option("--threads", type=int, default=0, show_default=True, help="CPU threads (0: default).")
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Episodes run at once, one thread each (0: one per free CPU, 2 on a GPU). "
    "Returns do not depend on it.",
)
@click.option(
    "--video",
    type=click.Path(dir_okay=False),
    default=None,
    help="Record one episode (the first evaluation seed) to this .mp4 or .gif instead of scoring.",
)
@click.option(
    "--strip",
    type=click.Path(dir_okay=False),
    default=None,
    help="Image strip (PNG) of evenly spaced frames of the recorded episode.",
)
@click.option("--width", type=int, default=480, show_default=True, help="Frame width (pixels).")
@click.option("--height", type=int, default=360, show_default=True, help="Frame height (pixels).")
@click.option("--camera", default=None, help="Model camera by name (default: tracking view).")
@click.option("--strip-frames", type=int, default=8, show_default=True, help="Frames in the strip.")
@click.option(
    "--max-steps", type=int, default=None, help="Stop the recorded episode after N steps."
)
@click.option("--policy-only", is_flag=True, help="Record the policy alone (no planner).")
@click.option(
    "--mode",
    "modes",
    type=click.Choice(["planner", "policy", "zero"]),
    multiple=True,
    help="What to score, repeatable: the MPPI planner, the policy alone, or the zero "
    "action as a reference [default: planner and policy].",
)
@click.option(
    "--first-seed",
    type=int,
    default=None,
    help="Reset seeds FIRST, FIRST+1, ... instead of the run's evaluation seeds "
    "(--video, --strip: seed FIRST).",
)
@click.option(
    "--samples",
    type=click.IntRange(min=4),
    default=None,
    help="Plan with this many MPPI samples instead of the bundle's (bundles only; e.g. "
    "the size `boom control --fit` picked).",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    help="Plan with this many MPPI iterations instead of the bundle's (bundles only).",
)
@click.option(
    "--task",
    default=None,
    help="Run on this task instead of the source's own; its observations must be the same "
    "(e.g. an h1:stand controller on h1:walk).",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the scores (returns, episode lengths, seeds) to this JSON file.",
)
def evaluate(
    source: str,
    episodes: int,
    device: str,
    seed: int | None,
    threads: int,
    workers: int,
    video: str | None,
    strip: str | None,
    width: int,
    height: int,
    camera: str | None,
    strip_frames: int,
    max_steps: int | None,
    policy_only: bool,
    modes: tuple[str, ...],
    first_seed: int | None,
    samples: int | None,
    iterations: int | None,
    task: str | None,
    json_out: str | None,
) -> None:
    """Evaluate SOURCE with the planner and the policy alone (returns and episode lengths).

    SOURCE is a checkpoint (.pt file or run folder) or an exported bundle folder. With
    --video and/or --strip, one episode is rendered offscreen instead (MuJoCo with EGL, or
    OSMesa on a machine without a GPU; MUJOCO_GL picks one explicitly).
    """
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    if video is not None or strip is not None:
        record = {
            "video": None if video is None else Path(video),
            "strip": None if strip is None else Path(strip),
            "width": width,
            "height": height,
            "camera": camera,
            "strip_frames": strip_frames,
            "max_steps": max_steps,
            "use_planner": not policy_only,
        }
        _record(source, device, seed, episodes, record, samples, iterations, task, first_seed)
        return
    from boom_control.evaluation.score import evaluate_source

    res = evaluate_source(
        source,
        episodes=episodes,
        device=device,
        seed=seed,
        workers=workers,
        modes=modes or ("planner", "policy"),
        first_seed=first_seed,
        samples=samples,
        iterations=iterations,
        task=task,
        progress=True,
    )
    s = res.scores
    click.echo(f"{res.kind}: {res.source} (step {res.step}, task {res.task}, device {res.device})")
    for mode in modes or ("planner", "policy"):
        click.echo(
            f"{mode + ':':<8} return {s[f'{mode}_return_mean']:.1f} ± "
            f"{s[f'{mode}_return_std']:.1f}, length {s[f'{mode}_length_mean']:.1f} ± "
            f"{s[f'{mode}_length_std']:.1f} steps over {episodes} episodes"
        )
    if json_out is not None:
        import json

        payload = {k: getattr(res, k) for k in ("kind", "source", "step", "task", "device")}
        Path(json_out).write_text(json.dumps({**payload, "seeds": res.seeds, **s}, indent=2))
        click.echo(f"wrote {json_out}")


def _record(
    source: str,
    device: str,
    seed: int | None,
    episodes: int,
    record: dict[str, Any],
    samples: int | None = None,
    iterations: int | None = None,
    task: str | None = None,
    first_seed: int | None = None,
) -> None:
    """``boom eval --video/--strip``: render one episode of SOURCE (``record``: the fields
    of :class:`~boom_control.render.episode.RecordConfig`) from reset seed ``first_seed``
    (default: the source's first evaluation seed)."""
    # The GL backend must be chosen before anything imports mujoco or dm_control.
    from boom_control.errors import RenderError
    from boom_control.render import select_backend

    try:
        backend = select_backend()
        from boom_control.render.episode import RecordConfig

        cfg = RecordConfig(**record)
    except RenderError as err:
        raise click.UsageError(str(err)) from None
    from boom_control.evaluation.sources import load_source
    from boom_control.render.episode import record_episode
    from boom_control.train.evaluate import eval_seeds

    src = load_source(source, device, seed, samples, iterations, task)
    if first_seed is None:
        first_seed = eval_seeds(src.seed, max(episodes, 1))[0]
    click.echo(f"{src.kind}: {src.path} (step {src.step}, task {src.task}, device {src.device})")
    try:
        rec = record_episode(src.actor, src.env, first_seed, cfg)
    except RenderError as err:
        raise click.ClickException(str(err)) from None
    finally:
        src.env.close()
    mode = "planner" if cfg.use_planner else "policy"
    click.echo(
        f"{mode}: return {rec.episode_return:.1f} over {rec.length} steps "
        f"(seed {first_seed}; {rec.frames} frames {cfg.width}x{cfg.height}, {backend})"
    )
    for label, path in (("video", rec.video), ("strip", rec.strip)):
        if path is not None:
            click.echo(f"{label}: {path}")


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
