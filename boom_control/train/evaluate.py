"""Evaluation: run episodes with the planner or the policy alone, and score checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
def run_episodes(agent: Actor, env: Any, seeds: Sequence[int], use_planner: bool) -> np.ndarray:
    """Return of one deterministic (``eval_mode``) episode per reset seed, shape ``(N,)``."""
    returns = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        state = agent.initial_plan_state()
        total, done = 0.0, False
        while not done:
            action, _, _, state = agent.act(obs, state, eval_mode=True, use_planner=use_planner)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            done = terminated or truncated
        returns.append(total)
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
class CheckpointScore:
    """Result of :func:`evaluate_checkpoint`."""

    checkpoint: str
    step: int
    task: str
    device: str
    scores: dict[str, float]


def evaluate_checkpoint(
    path: str | Path, episodes: int = 10, device: str = "auto", seed: int | None = None
) -> CheckpointScore:
    """Load a checkpoint (file or run folder) and evaluate it for ``episodes`` episodes each
    with the planner and with the policy alone."""
    from boom_control.config import from_dict
    from boom_control.device import resolve_device
    from boom_control.envs import make_env
    from boom_control.train.checkpoint import load_checkpoint, resolve_checkpoint, seed_everything
    from boom_control.train.config import TrainConfig
    from boom_control.train.trainer import make_agent

    path = resolve_checkpoint(path)
    ckpt = load_checkpoint(path)
    cfg = from_dict(TrainConfig, ckpt["config"])
    dev = resolve_device(device)
    seed = cfg.seed if seed is None else seed
    seed_everything(seed)
    env = make_env(cfg.task, seed=seed, **cfg.task_options)
    agent = make_agent(cfg, env.spec, dev)
    agent.load_state_dict(ckpt["agent"])
    log.info("evaluating %s (step %d) on %s, %d episodes", path, ckpt["step"], cfg.task, episodes)
    scores = evaluate_both(agent, env, eval_seeds(seed, episodes))
    env.close()
    return CheckpointScore(str(path), int(ckpt["step"]), cfg.task, str(dev), scores)
