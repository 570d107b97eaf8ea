"""``boom train`` / ``boom eval`` / ``boom plot`` end to end on a tiny run."""

from __future__ import annotations

import csv

import pytest
import torch
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.train.checkpoint import load_checkpoint

pytest.importorskip("dm_control")

TINY = [
    "task=dmc:cartpole-swingup",
    "task_options={episode_length: 40}",
    "size=1M",
    "model.enc_dim=64",
    "model.mlp_dim=64",
    "model.latent_dim=32",
    "model.num_q=2",
    "planner.num_samples=32",
    "planner.num_elites=8",
    "planner.num_pi_trajs=4",
    "planner.iterations=2",
    "agent.batch_size=32",
    "steps=120",
    "seed_steps=50",
    "eval_freq=60",
    "eval_episodes=1",
    "checkpoint_every=60",
    "log_every=10",
    "seed=1",
    "device=cpu",
    "log_tensorboard=false",
]


def test_train_eval_plot_end_to_end(tmp_path):
    torch.set_num_threads(1)
    run_dir = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli, ["train", *TINY, f"run_dir={run_dir}"])
    assert result.exit_code == 0, result.output
    assert f"run dir: {run_dir}" in result.output and "device: cpu" in result.output
    # CPU speed hint: the opt-in settings that use the second core (the others are on)
    assert "hint: on CPU, overlap_update=true and planner.threads=2" in result.output
    assert "train_fast" not in result.output

    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "log.csv", "eval.csv", "checkpoints", "curve.png"} <= names
    with (run_dir / "eval.csv").open(newline="") as f:
        evals = list(csv.DictReader(f))
    assert [int(r["step"]) for r in evals] == [0, 60, 120]
    assert all(float(r["planner_return_mean"]) >= 0 for r in evals)
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ckpts == ["latest.pt", "step_000000060.pt", "step_000000120.pt"]
    state = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert state["config"]["model"]["size"] == "1M" and state["counters"]["updates"] == 120
    assert (run_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"

    result = runner.invoke(
        cli,
        [
            "eval",
            str(run_dir / "checkpoints" / "step_000000120.pt"),
            "--episodes",
            "2",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "planner:" in result.output and "policy:" in result.output
    assert "over 2 episodes" in result.output

    out = tmp_path / "curve2.png"
    result = runner.invoke(cli, ["plot", str(run_dir), "--out", str(out), "--reference", "839"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"

    # the same folder again without resume=true is refused instead of overwritten
    result = runner.invoke(cli, ["train", *TINY, f"run_dir={run_dir}"])
    assert result.exit_code == 2 and "error: " in result.output and "resume=true" in result.output
    # resume extends the run
    result = runner.invoke(cli, ["train", f"run_dir={run_dir}", "resume=true", "steps=130"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run_dir / "checkpoints" / "latest.pt")["step"] == 130


@pytest.mark.gpu
def test_train_on_cuda_with_the_default_speed_settings(tmp_path):
    """The defaults on a GPU: auto precision (bf16 there), CUDA graphs, overlap off; the run
    trains, evaluates and checkpoints, and what it saved plans on the CPU."""
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith("device=")]
    result = CliRunner().invoke(cli, ["train", *args, "device=cuda", f"run_dir={run_dir}"])
    assert result.exit_code == 0, result.output
    assert "device: cuda" in result.output
    state = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert state["step"] == 120
    latest = str(run_dir / "checkpoints" / "latest.pt")
    result = CliRunner().invoke(cli, ["eval", latest, "--episodes", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "planner:" in result.output


def test_print_config_shows_the_resolved_config_and_trains_nothing(tmp_path):
    import yaml

    from boom_control.train.config import load_train_config

    run_dir = tmp_path / "never"
    args = ["train", "--preset", "train_fast", "task=dmc:cartpole-swingup"]
    args += ["overlap_update=true", f"run_dir={run_dir}", "--print-config"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["task"] == "dmc:cartpole-swingup" and shown["overlap_update"] is True
    assert shown["planner"]["compile"] is True and shown["model"]["mish"] == "fast"
    assert not run_dir.exists()
    # what it prints loads back into the same config
    path = tmp_path / "shown.yaml"
    path.write_text(result.output)
    same = load_train_config([], presets=(path,))
    assert same.overlap_update and same.planner.compile and same.run_dir == str(run_dir)


def test_cpu_speed_hint_names_only_what_is_off(monkeypatch):
    import boom_control.device
    from boom_control.cli.train import _cpu_speed_hint
    from boom_control.train.config import load_train_config

    monkeypatch.setattr(boom_control.device, "usable_cpus", lambda: 2)
    fastest = ["overlap_update=true", "planner.threads=2"]
    fast = load_train_config(fastest, presets=("train", "train_fast"))
    assert _cpu_speed_hint(fast, "cpu") is None and _cpu_speed_hint(fast, "cuda") is None
    hint = _cpu_speed_hint(load_train_config([], presets=("train", "train_fast")), "cpu")
    assert "overlap_update=true" in hint and "planner.threads=2" in hint
    assert "train_fast" not in hint
    monkeypatch.setattr(boom_control.device, "usable_cpus", lambda: 1)  # nothing to spread on
    assert (
        _cpu_speed_hint(load_train_config(fastest[:1], presets=("train", "train_fast")), "cpu")
        is None
    )
