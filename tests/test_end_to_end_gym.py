"""A Gymnasium env served by the stand-alone adapter, end to end: train over the bridge on
an env whose episodes end early, with evaluations mid-episode; export the run; evaluate the
bundle with two workers on two simulations of the server; control the env in real time."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.telemetry import read_telemetry
from sim_bridge.testing import ServerProcess

ENV_ID = "InvertedPendulum-v5"  # terminates when the pole falls; 25 Hz

TINY = """
steps: 260
seed_steps: 200
eval_freq: 130
eval_episodes: 1
checkpoint_every: 260
log_every: 50
device: cpu
model: {size: tiny, enc_dim: 32, mlp_dim: 32, latent_dim: 16, num_q: 2}
planner: {iterations: 2, num_samples: 32, num_elites: 8, num_pi_trajs: 4}
agent: {batch_size: 16}
"""


@pytest.mark.slow
def test_train_export_eval_control_through_the_gym_adapter(tmp_path):
    preset = tmp_path / "tiny.yaml"
    preset.write_text(TINY)
    lockstep = f"ipc://{tmp_path}/lockstep.sock"
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    runner = CliRunner()
    server = ["-m", "sim_bridge.gym_server", ENV_ID, "--seed", "0"]
    with ServerProcess([*server, "--bind", lockstep, "--mode", "lockstep"], lockstep):
        result = runner.invoke(
            cli, ["train", "--preset", str(preset), f"task=zmq:{lockstep}", f"run_dir={run}"]
        )
        assert result.exit_code == 0, result.output
        assert (run / "checkpoints" / "latest.pt").is_file()
        evals = (run / "eval.csv").read_text().splitlines()
        assert len(evals) == 4  # header + evaluations at steps 0, 130 and 260
        result = runner.invoke(cli, ["export", str(run), "--out", str(bundle)])
        assert result.exit_code == 0, result.output
    meta = json.loads((bundle / "bundle.json").read_text())
    assert meta["task"]["task_id"] == f"gym:{ENV_ID}"
    assert meta["task"]["served"]["server"] == "gym-server"
    assert meta["parity"]["passed"]

    # the bundle's task is served, not built here: boom eval says how to reach it
    result = runner.invoke(cli, ["eval", str(bundle), "--episodes", "1"])
    assert result.exit_code != 0
    assert "served over the sim bridge" in result.output and "--task zmq:" in result.output
    # two episodes at once really run on two simulations of the server
    server_log = tmp_path / "eval-server.log"
    with ServerProcess([*server, "--bind", lockstep], lockstep, log=server_log):
        args = ["eval", str(bundle), "--task", f"zmq:{lockstep}", "--episodes", "4"]
        result = runner.invoke(cli, [*args, "--workers", "2", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    text = server_log.read_text()
    assert "simulation 2 of at most 8 built" in text and "simulation 3" not in text

    realtime = f"ipc://{tmp_path}/realtime.sock"
    telemetry = tmp_path / "control.jsonl"
    with ServerProcess([*server, "--bind", realtime, "--mode", "realtime"], realtime):
        result = runner.invoke(
            cli,
            [
                "control",
                str(bundle),
                "--connect",
                realtime,
                "--rate",
                "25",
                "--budget-ms",
                "20",
                "--duration",
                "3",
                "--device",
                "cpu",
                "--telemetry",
                str(telemetry),
                "--quiet-status",
            ],
        )
    assert result.exit_code == 0, result.output
    log = read_telemetry(telemetry)
    assert log.header["task"] == f"gym:{ENV_ID}" and log.header["mode"] == "realtime"
    assert log.header["device"].startswith("cpu")
    assert 55 <= len(log.ticks) <= 85  # 3 s at 25 Hz
    assert log.summary is not None  # late sends counted (see tests/control/test_control_loop.py)
    assert log.summary["late_sends"] == sum(t.late for t in log.ticks)
