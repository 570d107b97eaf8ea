"""The bundles shipped in ``boom_control/bundles``: intact, in parity, and better than nothing.

Every shipped bundle must load (checksums verified), pass a fresh parity check of its
ONNX and TorchScript parts against the eager model on observations recorded from its task,
and its policy alone must do better on its task than the zero action: stay up longer
(h1:stand) or earn more of the task's reward (h1:walk and the DeepMind Control tasks).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from boom_control.bundle.load import load_bundle
from boom_control.bundles import shipped, shipped_bundle
from boom_control.envs import make_env
from export.parity import parity_report

BUNDLES = sorted(shipped())
SEEDS = (101, 102, 103)  # not among the seeds the shipped checkpoint was picked on


def test_at_least_one_h1_controller_is_shipped() -> None:
    assert any(load_bundle(shipped()[n]).task_id.startswith("h1:") for n in BUNDLES)
    with pytest.raises(KeyError, match="shipped"):
        shipped_bundle("no-such-bundle")


def _episode_length(env, act, seed: int) -> tuple[int, float]:
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        total += reward
        steps += 1
        if terminated or truncated:
            return steps, total


def _policy_action(model, action_dim: int):
    """The policy mean of ``model`` (a bundle's eager torch model) as a function of one
    observation: (obs_dim,) -> (action_dim,)."""

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        z = model.encode(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))
        return model.pi(z, torch.zeros(1, action_dim))[1]["mean"][0].numpy()

    return act


@pytest.mark.parametrize("name", BUNDLES)
def test_shipped_bundle_loads_and_is_in_parity(name: str) -> None:
    bundle = load_bundle(shipped_bundle(name))  # verifies every checksum
    # written when the model size was called 'preset' in bundle.json: read as today's 'size'
    assert bundle.info.model.size == bundle.info.model.config.size == "1M"
    env = make_env(bundle.task_id, seed=0)
    model = bundle.model("torch")
    act = _policy_action(model, bundle.action_dim)
    obs, _ = env.reset(seed=5)
    recorded = []
    for _ in range(32):  # observations of the policy's own trajectory
        recorded.append(obs)
        obs, _, terminated, truncated, _ = env.step(act(obs))
        if terminated or truncated:
            obs, _ = env.reset(seed=6)
    obs_t = torch.as_tensor(np.stack(recorded), dtype=torch.float32)
    report = parity_report(model, bundle.root, bundle.meta, obs_t, bundle.plan_constants(), 1e-4)
    assert report["passed"], report["failures"]


@pytest.mark.parametrize("name", [n for n in BUNDLES if n.startswith("h1-")])
def test_shipped_h1_policy_does_better_than_zero_action(name: str) -> None:
    """A standing controller must stay up 1.2x as long as the zero action and earn more
    reward; a walking one (whose reward is standing x upright x forward speed) must earn
    twice the zero action's reward and not fall sooner on average (5% slack)."""
    bundle = load_bundle(shipped_bundle(name))
    policy = _policy_action(bundle.model("torch"), bundle.action_dim)
    env = make_env(bundle.task_id, seed=0)
    zeros = np.zeros(bundle.action_dim)

    trained = [_episode_length(env, policy, s) for s in SEEDS]
    idle = [_episode_length(env, lambda _: zeros, s) for s in SEEDS]
    trained_len, idle_len = np.mean([n for n, _ in trained]), np.mean([n for n, _ in idle])
    trained_ret, idle_ret = np.mean([r for _, r in trained]), np.mean([r for _, r in idle])
    if bundle.task_id == "h1:stand":
        assert trained_len > 1.2 * idle_len, (trained, idle)
        assert trained_ret > idle_ret, (trained, idle)
    else:
        assert trained_ret > 2.0 * idle_ret, (trained, idle)
        assert trained_len > 0.95 * idle_len, (trained, idle)


@pytest.mark.parametrize("name", [n for n in BUNDLES if n.startswith("dmc-")])
def test_shipped_dmc_policy_earns_more_than_zero_action(name: str) -> None:
    """DeepMind Control episodes never end early, so the policy alone must earn twice the
    zero action's return on held-out seeds."""
    bundle = load_bundle(shipped_bundle(name))
    assert bundle.task_id.startswith("dmc:")
    policy = _policy_action(bundle.model("torch"), bundle.action_dim)
    env = make_env(bundle.task_id, seed=0)
    zeros = np.zeros(bundle.action_dim)

    trained = np.mean([_episode_length(env, policy, s)[1] for s in SEEDS])
    idle = np.mean([_episode_length(env, lambda _: zeros, s)[1] for s in SEEDS])
    assert trained > 2.0 * idle, (trained, idle)
