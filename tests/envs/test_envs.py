"""Task layer: DMC family checks, the registry's errors, Humanoid-Bench availability."""

from __future__ import annotations

import numpy as np
import pytest

from boom_control.envs import humanoid_bench as hb
from boom_control.envs import make_env
from boom_control.envs.dmc import DMCEnv
from boom_control.errors import ActionError, TaskError

DMC_IDS = ["dmc:cartpole-swingup", "dmc:walker-walk", "dmc:humanoid-walk", "dmc:dog-run"]


def rollout(env, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Observations and rewards of a seeded random-action rollout."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.spec.action_dim))
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.stack(observations), np.asarray(rewards)


@pytest.mark.parametrize("task_id", DMC_IDS)
def test_dmc_spec_matches_arrays_and_no_nan(task_id):
    env = make_env(task_id, seed=0)
    spec = env.spec
    assert spec.task_id == task_id
    obs, rewards = rollout(env, seed=1, steps=40)
    assert obs.dtype == np.float32
    assert obs.shape[1] == spec.obs_dim == spec.contract.dim == len(spec.contract.names)
    assert len(spec.action_mapping.scale) == spec.action_dim
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    assert spec.episode_length == 500
    assert spec.control_period == pytest.approx(spec.physics_dt * spec.substeps)
    assert not spec.terminates


def test_dmc_known_dims():
    humanoid = make_env("dmc:humanoid-walk").spec
    assert (humanoid.obs_dim, humanoid.action_dim) == (67, 21)
    assert humanoid.control_period == pytest.approx(0.05)  # 0.025 s x action repeat 2
    dog = make_env("dmc:dog-run").spec
    assert (dog.obs_dim, dog.action_dim) == (223, 38)


@pytest.mark.parametrize("task_id", ["dmc:cartpole-swingup", "dmc:humanoid-walk"])
def test_dmc_same_seed_same_trajectory(task_id):
    a_obs, a_rew = rollout(make_env(task_id, seed=5), seed=7, steps=30)
    b_obs, b_rew = rollout(make_env(task_id, seed=5), seed=7, steps=30)
    np.testing.assert_array_equal(a_obs, b_obs)
    np.testing.assert_array_equal(a_rew, b_rew)
    c_obs, _ = rollout(make_env(task_id, seed=5), seed=8, steps=30)
    assert not np.array_equal(a_obs[0], c_obs[0])  # another seed, another initial state


def test_dmc_reset_seed_overrides_construction_seed():
    env = make_env("dmc:walker-walk", seed=1)
    first, _ = env.reset(seed=11)
    env.reset(seed=99)
    again, _ = env.reset(seed=11)
    np.testing.assert_array_equal(first, again)


def test_actions_clipped_or_rejected_as_documented():
    env = make_env("dmc:cartpole-swingup", seed=0)
    env.reset(seed=0)
    big, *_ = env.step(np.array([5.0]))
    env.reset(seed=0)
    one, *_ = env.step(np.array([1.0]))
    np.testing.assert_array_equal(big, one)  # out-of-range values are clipped to the bound
    with pytest.raises(ActionError, match="NaN"):
        env.step(np.array([np.nan]))
    with pytest.raises(ActionError, match=r"shape \(1,\)"):
        env.step(np.zeros(2))


def test_episode_truncates_at_length():
    env = make_env("dmc:cartpole-swingup", seed=0, episode_length=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1))


def test_action_repeat_option():
    env = make_env("dmc:cartpole-swingup", seed=0, action_repeat=4)
    assert env.spec.control_period == pytest.approx(0.04)
    assert isinstance(env, DMCEnv)


@pytest.mark.parametrize(
    ("task_id", "options", "message"),
    [
        ("walker-walk", {}, "no family prefix"),
        ("gym:CartPole-v1", {}, "unknown task family 'gym'"),
        ("dmc:walker-flyy", {}, "unknown DMC task 'dmc:walker-flyy'"),
        ("dmc:", {}, "names no task"),
        ("dmc:walker-walk", {"repeat": 2}, "valid options: action_repeat, episode_length"),
        ("dmc:walker-walk", {"action_repeat": 0}, "action_repeat must be a positive integer"),
        ("dmc:walker-walk", {"episode_length": -3}, "episode_length must be a positive"),
    ],
)
def test_bad_ids_and_options_give_clear_errors(task_id, options, message):
    with pytest.raises(TaskError, match=message):
        make_env(task_id, **options)


@pytest.mark.skipif(hb.available(), reason="humanoid_bench is installed here")
def test_humanoid_bench_missing_says_how_to_install_and_bridge():
    with pytest.raises(TaskError) as err:
        make_env("hb:h1hand-walk-v0")
    msg = str(err.value)
    assert "own environment" in msg and "python -m sim_bridge gym" in msg and "zmq:" in msg
    assert hb.hb_tasks() == []


@pytest.mark.skipif(not hb.available(), reason="humanoid_bench not installed")
def test_humanoid_bench_family_when_installed():  # pragma: no cover - optional
    env = make_env("hb:h1hand-walk-v0", seed=0)
    assert (env.spec.obs_dim, env.spec.action_dim) == (151, 61)
    obs, rewards = rollout(env, seed=0, steps=20)
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()


def test_task_options_are_typed_per_family_and_match_the_constructors():
    import dataclasses
    import inspect
    from pathlib import Path

    from boom_control.envs.options import OPTIONS
    from boom_control.envs.registry import _factory

    for family, cls in OPTIONS.items():
        params = inspect.signature(_factory(family)).parameters
        declared = {p.name: p.default for p in params.values() if p.name not in ("name", "seed")}
        typed = {f.name: f.default for f in dataclasses.fields(cls)}
        assert typed == declared, family
    with pytest.raises(TaskError, match="task option 'action_repeat' must be int, got 'x'"):
        make_env("dmc:cartpole-swingup", action_repeat="x")
    with pytest.raises(TaskError, match="valid options: action_repeat, episode_length"):
        make_env("dmc:cartpole-swingup", repeat=2)
    with pytest.raises(TaskError, match="no such file|not found|model"):
        make_env("h1:stand", model_path=Path("/nonexistent/h1.xml"))  # a path is accepted
