"""BOOM training over the bridge on a task whose episodes end early (h1:walk falls), with
evaluations in the middle of training episodes: the same run as on the local task, and, on
a server hosting one simulation, evaluations on the training session between episodes."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from sim_bridge.testing import ServerProcess

TINY = """
steps: 240
seed_steps: 100
eval_freq: 70
eval_episodes: 2
checkpoint_every: 240
log_every: 40
device: cpu
log_tensorboard: false
task_options: {episode_length: 60}
model: {size: tiny, enc_dim: 32, mlp_dim: 32, latent_dim: 16, num_q: 2}
planner: {iterations: 2, num_samples: 32, num_elites: 8, num_pi_trajs: 4}
agent: {batch_size: 16}
"""


def _train(tmp_path: Path, task: str, name: str) -> Path:
    preset = tmp_path / "tiny.yaml"
    preset.write_text(TINY)
    run = tmp_path / name
    result = CliRunner().invoke(
        cli, ["train", "--preset", str(preset), f"task={task}", f"run_dir={run}"]
    )
    assert result.exit_code == 0, result.output
    return run


def _rows(path: Path, drop: tuple[str, ...] = ("wall_time",)) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def _episodes(run: Path) -> list[dict[str, str]]:
    return [r for r in _rows(run / "log.csv") if r["group"] == "episode"]


@pytest.mark.slow
def test_training_over_the_bridge_is_the_local_run(tmp_path):
    endpoint = f"ipc://{tmp_path}/h1.sock"
    with ServerProcess(["-m", "boom_control", "sim", "h1:walk", "--bind", endpoint], endpoint):
        remote = _train(tmp_path, f"zmq:{endpoint}", "remote")
    local = _train(tmp_path, "h1:walk", "local")
    episodes = _episodes(local)
    lengths = [float(r["value"]) for r in episodes if r["name"] == "length"]
    assert min(lengths) < 60  # some episodes ended early (the robot fell)
    evals = _rows(local / "eval.csv")
    assert [int(r["step"]) for r in evals] == [0, 70, 140, 210]  # mid-episode evaluations
    assert _rows(remote / "eval.csv") == evals
    assert _episodes(remote) == episodes


@pytest.mark.slow
def test_a_single_simulation_server_evaluates_between_training_episodes(tmp_path, caplog):
    endpoint = f"ipc://{tmp_path}/h1.sock"
    args = ["-m", "boom_control", "sim", "h1:walk", "--bind", endpoint, "--max-instances", "1"]
    with ServerProcess(args, endpoint), caplog.at_level(logging.INFO):
        run = _train(tmp_path, f"zmq:{endpoint}", "shared")
    assert "hosts a single simulation: evaluations run on the training session" in caplog.text
    steps = [int(r["step"]) for r in _rows(run / "eval.csv")]
    assert len(steps) == 4 and steps[0] == 0
    # each evaluation ran when the training episode under way at its step had ended
    ends = {int(r["step"]) for r in _episodes(run) if r["name"] == "length"}
    for due, done in zip((70, 140, 210), steps[1:], strict=True):
        assert done >= due and (done in ends or done == 240)
