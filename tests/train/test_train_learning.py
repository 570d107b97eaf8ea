"""Learning smoke test: a small BOOM agent learns cartpole-balance within 5000 agent steps.

Slow (minutes on one CPU thread): run with ``pytest -m slow tests/train/test_train_learning.py``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from boom_control.device import resolve_device
from boom_control.envs import make_env
from boom_control.train.config import load_train_config
from boom_control.train.evaluate import eval_seeds
from boom_control.train.trainer import build_trainer

pytest.importorskip("dm_control")

TASK, LENGTH, STEPS, EPISODES = "dmc:cartpole-balance", 200, 5000, 5
MARGIN = 60.0  # random episodes: 174 +- 24; 5-episode means of the trained agent: +- ~15


def random_return(seeds: list[int]) -> float:
    env = make_env(TASK, seed=0, episode_length=LENGTH)
    rng = np.random.default_rng(0)
    returns = []
    for seed in seeds:
        env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.spec.action_dim))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def learning_overrides(run_dir) -> list[str]:
    """The learning test's run: task, agent and planner sizes, schedule."""
    return [
        f"task={TASK}",
        f"task_options={{episode_length: {LENGTH}}}",
        "device=cpu",
        "seed=1",
        f"steps={STEPS}",
        "seed_steps=600",
        f"eval_freq={STEPS}",
        f"eval_episodes={EPISODES}",
        "eval_at_start=false",
        f"checkpoint_every={STEPS}",
        "log_every=500",
        "log_tensorboard=false",
        f"run_dir={run_dir}",
        "model.enc_dim=128",
        "model.mlp_dim=128",
        "model.latent_dim=64",
        "model.num_q=2",
        "planner.num_samples=128",
        "planner.num_elites=16",
        "planner.num_pi_trajs=8",
        "planner.iterations=3",
        "planner.precision=fp32",  # the margins below were measured in fp32
        "agent.precision=fp32",
        "agent.batch_size=64",
    ]


@pytest.mark.slow
def test_small_agent_learns_cartpole_balance(tmp_path):
    torch.set_num_threads(1)
    cfg = load_train_config(learning_overrides(tmp_path))
    baseline = random_return(eval_seeds(cfg.seed, EPISODES))
    start = time.monotonic()
    with build_trainer(cfg, resolve_device("cpu")) as trainer:
        trainer.run()
    result = trainer.last_eval_result  # the evaluation at the last step
    wall = time.monotonic() - start
    print(
        f"\n{TASK} ({LENGTH}-step episodes, max 400): random {baseline:.1f}, after "
        f"{STEPS} steps planner {result['planner_return_mean']:.1f} ± "
        f"{result['planner_return_std']:.1f}, policy {result['policy_return_mean']:.1f} ± "
        f"{result['policy_return_std']:.1f}, {wall:.0f} s"
    )
    assert trainer.step == STEPS and result
    assert result["planner_return_mean"] > baseline + MARGIN
