"""``boom control --config`` takes the planner settings fitted by ``boom profile``."""

from __future__ import annotations

from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.profile.budget import write_control_config
from boom_control.telemetry import read_telemetry
from sim_bridge.testing import ServerProcess, free_tcp_endpoint


def _control(bundle, endpoint, telemetry, *extra):
    return CliRunner().invoke(
        cli,
        [
            "control",
            str(bundle),
            "--connect",
            endpoint,
            "--rate",
            "50",
            "--duration",
            "1",
            "--telemetry",
            str(telemetry),
            "--quiet-status",
            *extra,
        ],
    )


def test_fitted_config_sets_planner_options_and_flags_win(random_bundle, tmp_path):
    fitted = write_control_config(
        {
            "samples": 16,
            "iterations": 1,
            "budget_ms": 9.0,
            "backend": "torchscript",
            "device": "cpu",
            "threads": 1,
        },
        tmp_path / "fitted_9ms.yaml",
        comment="fitted by a test",
    )
    endpoint = free_tcp_endpoint()
    args = ["-m", "boom_control", "sim", "h1:stand", "--bind", endpoint, "--mode", "realtime"]
    with ServerProcess(args, endpoint):
        result = _control(random_bundle, endpoint, tmp_path / "a.jsonl", "--config", str(fitted))
        assert result.exit_code == 0, result.output
        head = read_telemetry(tmp_path / "a.jsonl").header
        assert head["backend"] == "torchscript" and head["budget_ms"] == 9.0
        assert (head["planner"]["samples"], head["planner"]["iterations"]) == (16, 1)
        result = _control(
            random_bundle,
            endpoint,
            tmp_path / "b.jsonl",
            "--config",
            str(fitted),
            "--samples",
            "8",
        )
        assert result.exit_code == 0, result.output
        assert read_telemetry(tmp_path / "b.jsonl").header["planner"]["samples"] == 8


def test_config_with_unknown_key_is_rejected(random_bundle, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("samples: 16\nhorizon: 5\n")
    result = CliRunner().invoke(cli, ["control", str(random_bundle), "--config", str(bad)])
    assert result.exit_code != 0
    assert "unknown config key 'horizon'" in result.output and "budget_ms" in result.output


def test_control_config_loads_like_the_training_config(tmp_path):
    import dataclasses

    import pytest

    from boom_control.control.config import ControlConfig, load_control_config
    from boom_control.errors import ConfigError

    # configs/control.yaml holds exactly the defaults
    assert load_control_config() == ControlConfig()
    fitted = tmp_path / "fitted.yaml"
    fitted.write_text("samples: 16\niterations: 1\nbudget_ms: 9\nbackend: onnx\n")
    cfg = load_control_config(["budget_ms=12", "rate=50"], ["control", fitted])
    assert (cfg.samples, cfg.iterations, cfg.backend) == (16, 1, "onnx")
    assert cfg.budget_ms == 12.0  # overrides win over the file
    assert cfg.loop().budget_ms == 12.0 and cfg.loop().rate == 50.0
    assert dataclasses.replace(cfg, policy_only=True).loop().policy_only
    with pytest.raises(ConfigError, match="unknown config key 'horizon'"):
        load_control_config(["horizon=5"])
    with pytest.raises(ConfigError, match="must stay below the period"):
        load_control_config(["budget_ms=19"])
    with pytest.raises(ConfigError, match="samples must be >= 1"):
        load_control_config(["samples=0"])
    with pytest.raises(ConfigError, match="backend"):
        load_control_config(["backend=tensorrt"])
