"""Evaluation: run episodes with the planner or the policy alone, and score checkpoints
and bundles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import torch

from boom_control.device import usable_cpus
from boom_control.errors import EpisodeLostError

log = logging.getLogger(__name__)


class Actor(Protocol):
    """What evaluation needs from an agent. ``act`` draws its planning noise from
    ``generator`` when one is given (a generator on ``device``)."""

    device: torch.device

    def initial_plan_state(self) -> Any: ...

    def act(
        self,
        obs: np.ndarray,
        state: Any,
        eval_mode: bool,
        use_planner: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]: ...


def eval_seeds(seed: int, episodes: int) -> list[int]:
    """Fixed reset seeds of the evaluation episodes of a run (the same at every evaluation)."""
    return [int(s) for s in np.random.SeedSequence([seed, 3]).generate_state(episodes)]


def eval_workers(
    requested: int, episodes: int, device: torch.device | str, capacity: int | None = None
) -> int:
    """Episodes to run at once: ``requested`` (0: :func:`default_workers`), never more than
    ``episodes`` nor ``capacity``, the environments that can exist at once (a served task:
    the simulations its server hosts, ``spec.extras["instances"]``; None: no limit)."""
    workers = max(1, min(requested or default_workers(episodes, device), episodes))
    if capacity is not None and workers > capacity:
        if requested > capacity:
            log.warning(
                "%d evaluation workers asked for; the server hosts %d simulations at once: "
                "running %d",
                requested,
                capacity,
                max(1, capacity),
            )
        workers = max(1, capacity)
    return workers


def env_capacity(env: Any) -> int | None:
    """How many environments like ``env`` can exist at once: the simulations its server
    hosts for a served task (``spec.extras["instances"]``), None (no limit) otherwise."""
    capacity = env.spec.extras.get("instances")
    return int(capacity) if isinstance(capacity, int) else None


def default_workers(episodes: int, device: torch.device | str = "cpu") -> int:
    """Episodes to run at once: one per free CPU (CPUs / torch's threads) on CPU, two on a
    GPU (each thread's Python overhead hides the other's), never more than ``episodes``."""
    if torch.device(device).type == "cpu":
        workers = max(1, usable_cpus() // max(1, torch.get_num_threads()))
    else:
        workers = 2
    return max(1, min(workers, episodes))


def episode_generator(agent: Actor, seed: int) -> torch.Generator:
    """The planning-noise generator of the evaluation episode with reset seed ``seed``."""
    g = torch.Generator(device=agent.device)
    g.manual_seed(int(seed))
    return g


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
    the reset (t = 0) and after every step t = 1, 2, ... (e.g. to render a frame).

    The planner draws its noise from :func:`episode_generator`, so an episode's return
    depends only on the weights and ``seed`` (not on other episodes or training)."""
    obs, _ = env.reset(seed=int(seed))
    state = agent.initial_plan_state()
    g = episode_generator(agent, seed) if use_planner else None
    total, done, t = 0.0, False, 0
    if on_step is not None:
        on_step(0)
    while not done:
        action, _, _, state = agent.act(
            obs, state, eval_mode=True, use_planner=use_planner, generator=g
        )
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        t += 1
        if on_step is not None:
            on_step(t)
        done = terminated or truncated or (max_steps is not None and t >= max_steps)
    return total, t


LOST_EPISODE_RETRIES = 2
"""Times an evaluation episode lost by its environment (a served task's server restarted or
did not answer) is run again from its reset seed before the evaluation fails."""


def run_whole_episode(agent: Actor, env: Any, seed: int, use_planner: bool) -> tuple[float, int]:
    """:func:`run_episode`, run again from its seed when the environment loses it
    (:class:`~boom_control.envs.base.EpisodeLostError`; the result depends only on the
    seed and the weights, so the rerun is the episode that was lost)."""
    lost = 0
    while True:
        try:
            return run_episode(agent, env, seed, use_planner)
        except EpisodeLostError as err:
            lost += 1
            if lost > LOST_EPISODE_RETRIES:
                raise
            log.warning("evaluation episode (seed %d) lost: %s; running it again", seed, err)


def run_episodes(
    agent: Actor, envs: Any | Sequence[Any], seeds: Sequence[int], use_planner: bool
) -> np.ndarray:
    """Return of one deterministic (``eval_mode``) episode per reset seed, shape ``(N,)``.

    ``envs``: one environment, or several to run that many episodes at once (one thread
    each); the returns do not depend on how many (see :func:`run_episode`).
    """
    return episode_stats(agent, envs, seeds, use_planner)[0]


def episode_stats(
    agent: Actor,
    envs: Any | Sequence[Any],
    seeds: Sequence[int],
    use_planner: bool,
    on_episode: Callable[[float, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths (steps) of one episode per reset seed, each of shape ``(N,)``
    (see :func:`run_episodes`). ``on_episode(return, length)`` is called as each episode
    ends (from the worker's thread)."""
    envs = list(envs) if isinstance(envs, (list, tuple)) else [envs]
    seeds = [int(s) for s in seeds]
    workers = max(1, min(len(envs), len(seeds)))

    def one(env: Any, seed: int) -> tuple[float, int]:
        result = run_whole_episode(agent, env, seed, use_planner)
        if on_episode is not None:
            on_episode(*result)
        return result

    # Worker k runs episodes k, k + workers, ... on its own env.
    def work(k: int) -> list[tuple[float, int]]:
        return [one(envs[k], s) for s in seeds[k::workers]]

    if workers == 1:
        parts = [work(0)]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="boom-eval") as pool:
            parts = list(pool.map(work, range(workers)))
    returns, lengths = np.empty(len(seeds)), np.empty(len(seeds), dtype=np.int64)
    for k, part in enumerate(parts):
        returns[k::workers] = [r for r, _ in part]
        lengths[k::workers] = [n for _, n in part]
    return returns, lengths


class ZeroActor:
    """The reference actor that always sends the zero action (for H1: hold the default
    pose), to compare a controller with doing nothing."""

    device = torch.device("cpu")

    def __init__(self, action_dim: int) -> None:
        self._zero = np.zeros(action_dim, np.float32)

    def initial_plan_state(self) -> None:
        return None

    def act(
        self,
        obs: np.ndarray,
        state: Any,
        eval_mode: bool,
        use_planner: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
        return self._zero.copy(), self._zero.copy(), self._zero.copy(), None


def evaluate_both(
    agent: Actor, envs: Any | Sequence[Any], seeds: Sequence[int]
) -> dict[str, float]:
    """Mean and std of returns with the planner and with the policy alone (``envs``: one
    environment or several, see :func:`run_episodes`)."""
    planner = run_episodes(agent, envs, seeds, use_planner=True)
    policy = run_episodes(agent, envs, seeds, use_planner=False)
    return summarize_eval(planner, policy)


def summarize_eval(planner: np.ndarray, policy: np.ndarray) -> dict[str, float]:
    """What an evaluation logs, from the returns with the planner and with the policy alone
    (one per evaluation seed, ``(N,)`` each)."""
    return {
        "episodes": len(planner),
        "planner_return_mean": float(np.mean(planner)),
        "planner_return_std": float(np.std(planner)),
        "policy_return_mean": float(np.mean(policy)),
        "policy_return_std": float(np.std(policy)),
    }
