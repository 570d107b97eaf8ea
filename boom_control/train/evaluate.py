"""Evaluation: run episodes with the planner or the policy alone, and score checkpoints
and bundles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

log = logging.getLogger(__name__)


class Actor(Protocol):
    """What evaluation needs from an agent."""

    def initial_plan_state(self) -> Any: ...

    def act(
        self, obs: np.ndarray, state: Any, eval_mode: bool, use_planner: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]: ...


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Fixed reset seeds of the evaluation episodes of a run (the same at every evaluation)."""
    return [int(s) for s in np.random.SeedSequence([seed, 3]).generate_state(episodes)]


@torch.no_grad()
def run_episode(
    agent: Actor,
    env: Any,
    seed: int,
    use_planner: bool,
    max_steps: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> tuple[float, int]:
    """Return and length of one deterministic (``eval_mode``) episode from reset seed
    ``seed``, stopped after ``max_steps`` steps when given. ``on_step(t)`` is called after
    the reset (t = 0) and after every step t = 1, 2, ... (e.g. to render a frame)."""
    obs, _ = env.reset(seed=int(seed))
    state = agent.initial_plan_state()
    total, done, t = 0.0, False, 0
    if on_step is not None:
        on_step(0)
    while not done:
        action, _, _, state = agent.act(obs, state, eval_mode=True, use_planner=use_planner)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        t += 1
        if on_step is not None:
            on_step(t)
        done = terminated or truncated or (max_steps is not None and t >= max_steps)
    return total, t


def run_episodes(agent: Actor, env: Any, seeds: Sequence[int], use_planner: bool) -> np.ndarray:
    """Return of one deterministic (``eval_mode``) episode per reset seed, shape ``(N,)``."""
    returns = [run_episode(agent, env, seed, use_planner)[0] for seed in seeds]
    return np.asarray(returns, dtype=np.float64)


def evaluate_both(agent: Actor, env: Any, seeds: Sequence[int]) -> dict[str, float]:
    """Mean and std of returns with the planner and with the policy alone."""
    planner = run_episodes(agent, env, seeds, use_planner=True)
    policy = run_episodes(agent, env, seeds, use_planner=False)
    return {
        "episodes": len(seeds),
        "planner_return_mean": float(planner.mean()),
        "planner_return_std": float(planner.std()),
        "policy_return_mean": float(policy.mean()),
        "policy_return_std": float(policy.std()),
    }


@dataclass(frozen=True)
class EvalScore:
    """Result of :func:`evaluate_source`."""

    kind: str
    """``"checkpoint"`` or ``"bundle"``."""
    source: str
    step: int
    task: str
    device: str
    scores: dict[str, float]


def evaluate_source(
    path: str | Path, episodes: int = 10, device: str = "auto", seed: int | None = None
) -> EvalScore:
    """Load a checkpoint (file or run folder) or a bundle folder and evaluate it for
    ``episodes`` episodes each with the planner and with the policy alone."""
    from boom_control.train.sources import load_source

    src = load_source(path, device=device, seed=seed)
    log.info("evaluating %s (step %d) on %s, %d episodes", src.path, src.step, src.task, episodes)
    try:
        scores = evaluate_both(src.actor, src.env, eval_seeds(src.seed, episodes))
    finally:
        src.env.close()
    return EvalScore(src.kind, src.path, src.step, src.task, src.device, scores)
