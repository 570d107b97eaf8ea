"""``boom eval SOURCE``: score a checkpoint, run or bundle (planner, policy alone, zero
action), or record a video / image strip of one episode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


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
