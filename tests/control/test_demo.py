"""``boom demo`` (what ``make demo`` runs) against a tiny bundle: sim server + controller
in real time, clean shutdown, complete telemetry, return and latency report."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from boom_control.cli.demo import FIT_MARGIN
from boom_control.telemetry import read_telemetry
from sim_bridge.testing import free_tcp_port


def test_demo_runs_sim_control_and_report(random_bundle, tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "boom_control",
            "demo",
            "--bundle",
            str(random_bundle),
            "--out",
            str(out),
            "--seconds",
            "3",
            "--device",
            "cpu",
            "--fit-seconds",
            "5",
            "--port",
            str(free_tcp_port()),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = read_telemetry(out / "control.jsonl")
    assert 140 <= len(log.ticks) <= 160  # 3 s at 50 Hz, every tick recorded
    assert [t.tick for t in log.ticks] == list(range(len(log.ticks)))
    # late sends are counted, not forbidden: on a busy machine the OS may hold the loop
    # back (tests/control/test_control_loop.py checks that a slow plan never delays a send)
    assert log.summary is not None and "episode_return" in json.dumps(log.summary)
    assert log.summary["late_sends"] == sum(t.late for t in log.ticks)
    report = json.loads((out / "report" / "report.json").read_text())
    assert report  # statistics written
    assert any(p.suffix == ".png" for p in (out / "report").iterdir())
    assert "episode return" in proc.stdout + proc.stderr
    # on CPU the planner was first fitted to the budget, and boom control ran with it
    profile = json.loads((out / "profile" / "profile.json").read_text())
    assert profile["cells"]
    # with headroom for the sim server and the loop that share the CPU in the demo
    assert FIT_MARGIN < 0.8 and profile["budgets"][0]["margin"] == pytest.approx(FIT_MARGIN)
    if (out / "profile" / "fitted_12ms.yaml").is_file():
        assert "fitted_12ms.yaml" in proc.stderr
    # pictures of the policy, when this machine can render offscreen
    if "pictures failed" not in proc.stderr:
        assert (out / "strip.png").stat().st_size > 1000


def test_demo_picks_the_shipped_controller_and_refuses_contradictions(random_bundle):
    from click.testing import CliRunner

    from boom_control.bundles import shipped
    from boom_control.cli import cli
    from boom_control.cli.demo import _shipped_for

    assert _shipped_for("h1:stand") == shipped().get("h1-stand")
    assert _shipped_for("dmc:no-such-task") is None
    result = CliRunner().invoke(cli, ["demo", "--bundle", str(random_bundle), "--train"])
    assert result.exit_code == 2 and "exclude each other" in result.output


def test_demo_plans_with_the_quickest_setting_when_none_fits_at_p99(tmp_path):
    import yaml

    from boom_control.cli.demo import _quickest, _quickest_config

    def cell(samples, iterations, p50, precision="fp32"):
        plan = {"p50": p50, "p99": 2 * p50}
        return {
            "samples": samples,
            "iterations": iterations,
            "precision": precision,
            "stages": {"plan": plan},
        }

    profile = tmp_path / "profile.json"
    cells = [cell(16, 1, 7.5), cell(16, 2, 12.9), cell(32, 1, 8.1), cell(16, 1, 5.0, "bf16")]
    profile.write_text(json.dumps({"cells": cells}))
    assert _quickest(profile) == (16, 1, 7.5)  # fp32 only, least median
    assert _quickest(tmp_path / "missing.json") is None
    # median in time, or not even that (a slow CPU): either way the quickest setting plans,
    # which completes more plans than the bundle's full size would
    for budget in (12.0, 7.0):
        path = _quickest_config(tmp_path, budget, "onnx")
        assert path is not None and path.name == f"quickest_{budget:g}ms.yaml"
        settings = yaml.safe_load(path.read_text())
        assert settings["samples"] == 16 and settings["iterations"] == 1
        assert settings["budget_ms"] == budget and settings["backend"] == "onnx"
    assert _quickest_config(tmp_path / "nothing", 12.0, "onnx") is None
