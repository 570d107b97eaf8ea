"""``boom eval`` sources: an exported bundle runs on its task built locally, like a checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.bundle.load import Bundle
from boom_control.bundle.task import bundle_env
from boom_control.envs import make_env
from boom_control.errors import BundleError, TaskError
from boom_control.evaluation.sources import is_bundle, load_source
from boom_control.model.config import ModelConfig
from boom_control.planner.config import PlannerConfig


def _fake_meta(task_id: str, **options) -> dict:
    """Bundle metadata of ``task_id`` built with ``options`` (no model files needed)."""
    with make_env(task_id, seed=0, **options) as env:
        spec = env.spec
    return {
        "format_version": 2,
        "task": {**spec.summary(), "observation_contract": spec.contract.to_json()},
        "model": {"config": dataclasses.asdict(ModelConfig()), "size": None, "num_params": 0},
        "planner": {"config": dataclasses.asdict(PlannerConfig()), "gamma": 0.99},
    }


def _fake_bundle(task_id: str, **options) -> Bundle:
    return Bundle(Path("fake"), _fake_meta(task_id, **options))


def test_bundle_env_restores_action_repeat_and_episode_length():
    bundle = _fake_bundle("dmc:cartpole-swingup", action_repeat=4, episode_length=50)
    with bundle_env(bundle, seed=0) as env:
        assert env.spec.control_period == pytest.approx(bundle.info.task.control_period)
        assert env.spec.episode_length == 50
        assert env.spec.contract.hash == bundle.contract.hash


def test_bundle_env_refuses_another_contract():
    meta = _fake_meta("dmc:cartpole-swingup")
    meta["task"]["observation_contract"]["fields"][0]["key"] = "renamed"
    bundle = Bundle(Path("fake"), meta)
    with pytest.raises(BundleError, match="contract mismatch"):
        bundle_env(bundle, seed=0)


def test_bundle_source_acts_like_a_checkpoint(tiny_bundle):
    assert is_bundle(tiny_bundle) and is_bundle(tiny_bundle / "bundle.json")
    src = load_source(tiny_bundle, device="cpu")
    try:
        assert src.kind == "bundle" and src.task == "h1:stand" and src.step > 0
        obs, _ = src.env.reset(seed=0)
        state = src.actor.initial_plan_state()
        for use_planner in (True, False):
            action, mu, std, _ = src.actor.act(obs, state, True, use_planner=use_planner)
            assert action.shape == (19,) and np.isfinite(action).all()
            assert np.abs(action).max() <= 1.0
        np.testing.assert_array_equal(mu, action)  # policy alone: its mean, no spread
        np.testing.assert_array_equal(std, 0.0)
    finally:
        src.env.close()


def test_eval_scores_a_bundle(tiny_bundle):
    from boom_control.cli import cli

    args = ["eval", str(tiny_bundle), "-n", "1", "--device", "cpu", "--threads", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"bundle: {tiny_bundle}" in result.output
    assert "planner:" in result.output and "policy:" in result.output


def test_eval_modes_seeds_lengths_and_json(tiny_bundle, tmp_path):
    """--mode picks what is scored (the zero action as a reference), --first-seed the
    reset seeds; lengths come with returns and the JSON file holds both."""
    import json

    from boom_control.cli import cli

    out = tmp_path / "scores.json"
    args = ["eval", str(tiny_bundle), "-n", "2", "--device", "cpu", "--threads", "1"]
    args += ["--mode", "policy", "--mode", "zero", "--first-seed", "21", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "policy:  return" in result.output and "zero:    return" in result.output
    assert "planner:" not in result.output and "steps over 2 episodes" in result.output
    scores = json.loads(out.read_text())
    assert scores["seeds"] == [21, 22] and scores["task"] == "h1:stand"
    assert "planner_return_mean" not in scores
    # the zero action, replayed here by hand on the same seeds
    lengths, returns = [], []
    with make_env("h1:stand", seed=0) as env:
        for seed in (21, 22):
            env.reset(seed=seed)
            total, steps, done = 0.0, 0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(np.zeros(19))
                total, steps, done = total + reward, steps + 1, terminated or truncated
            lengths.append(steps)
            returns.append(total)
    assert scores["zero_length_mean"] == pytest.approx(np.mean(lengths))
    assert scores["zero_return_mean"] == pytest.approx(np.mean(returns))
    assert scores["policy_length_mean"] >= 1 and np.isfinite(scores["policy_return_std"])

    result = CliRunner().invoke(cli, ["eval", str(tiny_bundle), "--mode", "random"])
    assert result.exit_code != 0 and "random" in result.output


def test_a_bundle_plans_with_another_size_when_asked(tiny_bundle, tmp_path):
    """--samples / --iterations: a bundle scored with the planner size a budget fit picks;
    a checkpoint refuses them with a clear message."""
    import json

    import torch

    from boom_control.cli import cli

    src = load_source(tiny_bundle, device="cpu", samples=8, iterations=1)
    try:
        consts = src.actor.backend.consts
        assert (consts.num_samples, consts.iterations) == (8, 1)
        assert consts.num_elites <= 4 and consts.num_pi_trajs <= 4
        obs, _ = src.env.reset(seed=0)
        action, _, _, _ = src.actor.act(obs, src.actor.initial_plan_state())
        assert action.shape == (19,) and np.isfinite(action).all()
    finally:
        src.env.close()

    out = tmp_path / "small.json"
    args = ["eval", str(tiny_bundle), "-n", "1", "--device", "cpu", "--threads", "1"]
    args += ["--mode", "planner", "--samples", "8", "--iterations", "1", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert np.isfinite(json.loads(out.read_text())["planner_return_mean"])

    ckpt = tmp_path / "not_a_bundle.pt"
    torch.save({}, ckpt)
    result = CliRunner().invoke(cli, ["eval", str(ckpt), "--samples", "8"])
    assert result.exit_code != 0 and "export the checkpoint first" in result.output
    result = CliRunner().invoke(cli, ["eval", str(tiny_bundle), "--samples", "2"])
    assert result.exit_code != 0 and "--samples" in result.output


def test_a_source_runs_on_another_task_with_the_same_observations(tiny_bundle, tmp_path):
    """--task: an h1:stand controller scored on h1:walk (same contract, the walking
    reward); a task that observes differently is refused, for bundles and checkpoints."""
    import json

    from boom_control.cli import cli

    run = tiny_bundle.parent / "run"  # the training run the tiny bundle was exported from
    for source in (tiny_bundle, run):
        src = load_source(source, device="cpu", task="h1:walk")
        try:
            assert src.task == "h1:walk" and src.env.spec.task_id == "h1:walk"
            assert src.env.spec.episode_length == 100  # the source's episode length
        finally:
            src.env.close()
        with pytest.raises((TaskError, BundleError), match="contract|observes differently"):
            load_source(source, device="cpu", task="dmc:cartpole-swingup")

    out = tmp_path / "walk.json"
    args = ["eval", str(tiny_bundle), "-n", "2", "--device", "cpu", "--threads", "1"]
    args += ["--mode", "zero", "--first-seed", "21", "--task", "h1:walk", "--json", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "task h1:walk" in result.output
    scores = json.loads(out.read_text())
    returns = []
    with make_env("h1:walk", seed=0, episode_length=100) as env:
        for seed in (21, 22):
            env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(np.zeros(19))
                total, done = total + reward, terminated or truncated
            returns.append(total)
    assert scores["task"] == "h1:walk"
    assert scores["zero_return_mean"] == pytest.approx(np.mean(returns))

    args = ["eval", str(tiny_bundle), "-n", "1", "--task", "dmc:cartpole-swingup"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "contract mismatch" in result.output
