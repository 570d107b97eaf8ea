"""Shared fixtures. Each fixture is self-contained; add new ones below the existing ones."""

from __future__ import annotations

import pytest

TINY_BUNDLE_TASK = "h1:stand"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run on a CUDA device and are skipped, with the reason, without
    one (``pytest -m gpu`` selects them all: ``benchmarks/gpu_suite.py`` runs them)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _plan_program_cache(tmp_path_factory):
    """Plan programs exported by the tests go to a temporary cache, not the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOM_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """Path of a bundle exported from a tiny real training run on h1:stand (built once per
    test session: ``boom train --preset train_smoke`` for 120 steps, then ``boom export``;
    the run is ``<bundle>/../run``). Planner settings of the smoke preset: 32 samples x 2
    iterations, horizon 3. For tests of what training hands on; tests of what runs a bundle
    take ``random_bundle``."""
    from click.testing import CliRunner

    from boom_control.cli import cli

    root = tmp_path_factory.mktemp("tiny_bundle")
    run = root / "run"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--preset",
            "train_smoke",
            f"task={TINY_BUNDLE_TASK}",
            "task_options.episode_length=100",
            "steps=120",
            "seed_steps=100",
            "eval_freq=120",
            "checkpoint_every=120",
            "device=cpu",
            f"run_dir={run}",
        ],
    )
    assert result.exit_code == 0, result.output
    out = root / "bundle"
    result = CliRunner().invoke(cli, ["export", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory):
    """Path of a bundle of a randomly initialised model on h1:stand (100-step episodes),
    written by the real exporter (parity checked), built once per test session: the smoke
    preset's sizes and planner (32 samples x 2 iterations, horizon 3), no training run."""
    import torch

    from boom_control.envs import make_env
    from boom_control.model.world_model import WorldModel
    from boom_control.train.agent import discount_for
    from boom_control.train.config import load_train_config
    from export.exporter import export_bundle

    cfg = load_train_config([f"task={TINY_BUNDLE_TASK}"], presets=("train", "train_smoke"))
    env = make_env(TINY_BUNDLE_TASK, seed=0, episode_length=100)
    torch.manual_seed(0)
    spec = env.spec
    model = WorldModel(spec.obs_dim, spec.action_dim, cfg.model, spec.terminates)
    training = {"step": 0, "seed": 0, "eval_return": None, "source": "random initialisation"}
    out = tmp_path_factory.mktemp("random_bundle") / "bundle"
    try:
        gamma = discount_for(spec.episode_length)
        bundle = export_bundle(
            model, env, cfg.planner, gamma, out, size=cfg.model.size, training=training
        )
    finally:
        env.close()
    return bundle.root
