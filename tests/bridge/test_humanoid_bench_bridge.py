"""Humanoid-Bench through the bridge, when a Python with ``humanoid_bench`` is at hand (this
one, or the one named by ``BOOM_HB_PYTHON``, e.g. an environment built with
``benchmarks/humanoid_bench_env.sh``): serve h1hand-walk-v0 headless, describe it, train
on it briefly with evaluations mid-episode."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from sim_bridge.testing import ServerProcess

REPO = Path(__file__).resolve().parents[2]


def _hb_python() -> str | None:
    if importlib.util.find_spec("humanoid_bench") is not None:
        return sys.executable
    return os.environ.get("BOOM_HB_PYTHON") or None


HB_PYTHON = _hb_python()
SCRIPT = REPO / "benchmarks" / "humanoid_bench_env.sh"


def test_environment_script_explains_itself_and_checks_what_it_is_given(tmp_path):
    shown = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "does not install Humanoid-Bench itself" in shown.stdout
    assert "Python 3.11" in shown.stdout and "TORCH_SPEC" in shown.stdout
    missing = subprocess.run(
        [SCRIPT, "--check", str(tmp_path / "none")], capture_output=True, text=True, timeout=30
    )
    assert missing.returncode == 1 and "no Python environment" in missing.stderr
    wrong = subprocess.run([SCRIPT, "--bogus"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 2 and "unknown option" in wrong.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    HB_PYTHON is None,
    reason="humanoid_bench is not importable here and BOOM_HB_PYTHON names no Python "
    "that has it (see docs/humanoid_bench.md)",
)
def test_h1hand_walk_served_described_and_trained(tmp_path):
    endpoint = f"ipc://{tmp_path}/hb.sock"
    args = ["-m", "sim_bridge.gym_server", "h1hand-walk-v0", "--import", "humanoid_bench"]
    env = {"PYTHONPATH": str(REPO), "DISPLAY": None, "MUJOCO_GL": None}  # headless
    runner = CliRunner()
    with ServerProcess(
        [*args, "--bind", endpoint], endpoint, timeout=180, env=env, python=HB_PYTHON
    ):
        described = runner.invoke(cli, ["tasks", f"zmq:{endpoint}"])
        assert described.exit_code == 0, described.output
        assert "gym:h1hand-walk-v0" in described.output
        assert "151 floats" in described.output and "61 in [-1, 1]" in described.output
        assert "names from: the MuJoCo state" in described.output
        run = tmp_path / "run"
        overrides = [
            f"task=zmq:{endpoint}",
            f"run_dir={run}",
            "steps=150",
            "seed_steps=100",
            "eval_freq=75",
            "task_options.episode_length=40",
            "log_tensorboard=false",
        ]
        trained = runner.invoke(cli, ["train", "--preset", "train_smoke", *overrides])
        assert trained.exit_code == 0, trained.output
    evals = (run / "eval.csv").read_text().splitlines()
    assert len(evals) == 4  # header + steps 0, 75, 150
