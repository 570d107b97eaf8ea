"""Evaluation episodes side by side: the returns do not depend on how many run at once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from boom_control.envs import make_env
from boom_control.model.config import ModelConfig
from boom_control.planner.config import PlannerConfig
from boom_control.train.agent import Agent
from boom_control.train.config import AgentConfig, TrainConfig
from boom_control.train.evaluate import (
    default_workers,
    episode_stats,
    eval_seeds,
    eval_workers,
    evaluate_both,
    run_episode,
    run_episodes,
)

TASK = "dmc:cartpole-swingup"
TINY = ModelConfig(enc_dim=32, mlp_dim=32, latent_dim=16, num_q=2)
SMALL_PLAN = PlannerConfig(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2)
EPISODE = {"episode_length": 25}


def _agent(compile_plan: bool = False) -> Agent:
    torch.manual_seed(0)
    env = make_env(TASK, seed=0, **EPISODE)
    spec = env.spec
    env.close()
    plan = dataclasses.replace(SMALL_PLAN, compile=compile_plan)
    return Agent(
        spec.obs_dim,
        spec.action_dim,
        spec.episode_length,
        TINY,
        plan,
        AgentConfig(batch_size=8),
        torch.device("cpu"),
    )


def _envs(n: int) -> list:
    return [make_env(TASK, seed=k, **EPISODE) for k in range(n)]


@pytest.mark.parametrize("compile_plan", [False, True])
def test_returns_do_not_depend_on_the_number_of_workers(compile_plan):
    agent = _agent(compile_plan)
    seeds = eval_seeds(7, 5)
    one, three = _envs(1), _envs(3)
    try:
        alone = run_episodes(agent, one, seeds, use_planner=True)
        torch.manual_seed(123)  # the global RNG is not what evaluation draws from
        together = run_episodes(agent, three, seeds, use_planner=True)
        np.testing.assert_array_equal(alone, together)
        # and each is the episode run on its own, in order
        first = run_episode(agent, one[0], seeds[0], use_planner=True)[0]
        assert alone[0] == first and len(set(alone.tolist())) > 1
        both = evaluate_both(agent, three, seeds)
        assert both["episodes"] == 5
        assert both["planner_return_mean"] == pytest.approx(alone.mean())
        policy = run_episodes(agent, one, seeds, use_planner=False)
        assert both["policy_return_mean"] == pytest.approx(policy.mean())
    finally:
        for env in one + three:
            env.close()


def test_each_finished_episode_is_reported_once():
    """``on_episode`` (what ``boom eval``'s progress bar counts) sees every episode's
    return and length exactly once, from any worker."""
    agent = _agent()
    seeds = eval_seeds(3, 5)
    envs = _envs(2)
    seen: list[tuple[float, int]] = []
    try:
        returns, lengths = episode_stats(
            agent, envs, seeds, use_planner=False, on_episode=lambda r, n: seen.append((r, n))
        )
    finally:
        for env in envs:
            env.close()
    assert sorted(seen) == sorted(zip(returns.tolist(), lengths.tolist(), strict=True))
    assert len(seen) == 5 and set(lengths.tolist()) == {25}


def test_evaluation_leaves_acting_randomness_alone():
    """Evaluation draws from per-episode generators: training's streams are untouched."""
    agent = _agent()
    agent.overlap(seed=3)
    before = agent.act_generator.get_state()
    with make_env(TASK, seed=0, **EPISODE) as env:
        run_episode(agent, env, 11, use_planner=True)
    assert torch.equal(agent.act_generator.get_state(), before)


def test_default_workers():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert 1 <= default_workers(10) <= 10
        assert default_workers(1) == 1
        assert default_workers(10, "cuda") == 2
    finally:
        torch.set_num_threads(threads)
    assert eval_workers(5, 3, "cpu") == 3  # never above the episodes
    assert eval_workers(4, 10, "cpu", capacity=2) == 2  # nor the environments that can exist
    assert eval_workers(4, 10, "cpu", capacity=0) == 1


def test_eval_workers_validated():
    from boom_control.errors import ConfigError

    with pytest.raises(ConfigError, match="eval_workers"):
        TrainConfig(eval_workers=-1)
