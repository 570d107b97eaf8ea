"""Shared fixtures. Each fixture is self-contained; add new ones below the existing ones."""

from __future__ import annotations

import pytest

TINY_BUNDLE_TASK = "h1:stand"


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """Path of a bundle exported from a tiny real training run on h1:stand (built once per
    test session: ``boom train --preset train_smoke`` for 120 steps, then ``boom export``).
    Planner settings of the smoke preset: 32 samples x 2 iterations, horizon 3."""
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
