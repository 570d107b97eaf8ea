"""``boom eval``: score a checkpoint or a bundle on its task (or another with the same
observation contract) with the planner, the policy alone or the zero action."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from boom_control.errors import ConfigError
from boom_control.evaluation.sources import load_source
from boom_control.train.evaluate import (
    ZeroActor,
    env_capacity,
    episode_stats,
    eval_seeds,
    eval_workers,
)

log = logging.getLogger(__name__)


EVAL_MODES = ("planner", "policy", "zero")
"""What :func:`evaluate_source` can run: the MPPI planner, the policy alone, or the zero
action (a reference)."""


@dataclass(frozen=True)
class EvalScore:
    """Result of :func:`evaluate_source`."""

    kind: str
    """``"checkpoint"`` or ``"bundle"``."""
    source: str
    step: int
    task: str
    device: str
    seeds: list[int]
    """The reset seeds of the episodes (the same for every mode)."""
    scores: dict[str, float]
    """``<mode>_return_mean``/``_std`` and ``<mode>_length_mean``/``_std`` per mode."""


def evaluate_source(
    path: str | Path,
    episodes: int = 10,
    device: str = "auto",
    seed: int | None = None,
    workers: int = 0,
    modes: Sequence[str] = ("planner", "policy"),
    first_seed: int | None = None,
    samples: int | None = None,
    iterations: int | None = None,
    task: str | None = None,
    progress: bool = False,
) -> EvalScore:
    """Load a checkpoint (file or run folder) or a bundle folder and run ``episodes``
    episodes in each of ``modes`` (:data:`EVAL_MODES`), ``workers`` episodes at once (0:
    :func:`default_workers`). ``samples`` / ``iterations``: a bundle's planner size
    instead of its own; ``task``: another task with the same observation contract (see
    :func:`~boom_control.evaluation.sources.load_source`). ``progress``: a progress bar of the
    episodes on a terminal; each mode's result is logged as it finishes either way.

    The reset seeds are the run's evaluation seeds (:func:`eval_seeds` of ``seed``, the
    run's by default), or ``first_seed, first_seed + 1, ...`` when that is given.
    """
    if workers < 0:
        raise ConfigError(f"workers must be >= 0 (0: automatic), got {workers}")
    unknown = [m for m in modes if m not in EVAL_MODES]
    if unknown or not modes:
        raise ConfigError(f"modes must be some of {', '.join(EVAL_MODES)}, got {list(modes)}")
    src = load_source(
        path, device=device, seed=seed, samples=samples, iterations=iterations, task=task
    )
    workers = eval_workers(workers, episodes, src.device, env_capacity(src.env))
    if first_seed is None:
        seeds = eval_seeds(src.seed, episodes)
    else:
        seeds = list(range(first_seed, first_seed + episodes))
    log.info(
        "evaluating %s (step %d) on %s, %d episodes, %d at once",
        src.path,
        src.step,
        src.task,
        episodes,
        workers,
    )
    from tqdm.auto import tqdm

    envs = [src.env]
    scores: dict[str, float] = {"episodes": episodes}
    modes = list(dict.fromkeys(modes))
    bar = tqdm(total=episodes * len(modes), unit="episode", disable=None if progress else True)
    try:
        envs += [src.make_env() for _ in range(workers - 1)]
        for mode in modes:
            bar.set_description(mode)
            actor = ZeroActor(src.env.spec.action_dim) if mode == "zero" else src.actor
            returns, lengths = episode_stats(
                actor,
                envs,
                seeds,
                use_planner=mode == "planner",
                on_episode=lambda ret, n: bar.update(1),
            )
            log.info(
                "%s: return %.1f ± %.1f, length %.1f steps",
                mode,
                returns.mean(),
                returns.std(),
                lengths.mean(),
            )
            scores |= {
                f"{mode}_return_mean": float(returns.mean()),
                f"{mode}_return_std": float(returns.std()),
                f"{mode}_length_mean": float(lengths.mean()),
                f"{mode}_length_std": float(lengths.std()),
            }
    finally:
        bar.close()
        for env in envs:
            env.close()
    return EvalScore(src.kind, src.path, src.step, src.task, src.device, seeds, scores)
