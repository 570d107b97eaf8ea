"""`boom profile report` on the telemetry of a real `boom control` run (tiny bundle, the
H1 sim in real time): plots are valid PNGs and the statistics agree with the log."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.envs import make_env
from boom_control.sim.backend import SimBackend
from boom_control.telemetry import read_telemetry
from sim_bridge.server import ServerConfig
from sim_bridge.testing import free_tcp_endpoint, server_thread

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_log(random_bundle, tmp_path_factory):
    """Telemetry of 2 s of `boom control` at 50 Hz against a real-time H1 sim."""
    path = tmp_path_factory.mktemp("control") / "run.jsonl"
    endpoint = free_tcp_endpoint()
    backend = SimBackend(make_env("h1:stand", seed=0))
    with server_thread(backend, ServerConfig(endpoint=endpoint, mode="realtime")):
        args = [
            "control", str(random_bundle), "--connect", endpoint, "--rate", "50",
            "--budget-ms", "12", "--backend", "onnx", "--threads", "1", "--duration", "2",
            "--telemetry", str(path), "--quiet-status",
        ]  # fmt: skip
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return path


def test_report_statistics_agree_with_the_log(run_log, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", "report", str(run_log), "--out", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "report.json").read_text())["stats"]
    log = read_telemetry(run_log)
    ticks = log.ticks
    assert stats["ticks"] == len(ticks) == log.summary["ticks"] == 100
    assert stats["late_sends"] == sum(t.late for t in ticks) == log.summary["late_sends"]
    assert stats["skipped_ticks"] == log.summary["skipped_ticks"]
    assert stats["deadline_misses"] == stats["late_sends"] + stats["skipped_ticks"]
    assert stats["fallback_rate"] == pytest.approx(log.summary["fallback_rate"])
    assert stats["action_sources"] == log.summary["action_sources"]
    planned = [t for t in ticks if t.plan_ms > 0]
    plan = np.array([t.plan_ms for t in planned])
    assert stats["stages"]["plan"]["n"] == len(planned) > 0
    assert stats["stages"]["plan"]["p50"] == pytest.approx(np.percentile(plan, 50))
    assert stats["stages"]["plan"]["p99"] == pytest.approx(log.summary["plan_p99_ms"])
    iters = [x for t in ticks for x in t.iter_ms]
    assert stats["stages"]["iteration"]["n"] == len(iters)
    if iters:
        assert stats["stages"]["iteration"]["max"] == pytest.approx(max(iters))
    else:  # onnx on a CPU plans with whole-plan programs: no per-iteration times
        assert np.isnan(stats["stages"]["iteration"]["max"])
    assert sum(stats["iterations_hist"].values()) == len(planned)
    assert stats["mean_iterations"] == pytest.approx(np.mean([t.iterations for t in planned]))
    sent = [t for t in ticks if t.action_source != "skipped"]
    assert stats["stages"]["send"]["n"] == len(sent) and all(t.send_ms > 0 for t in sent)
    assert stats["stages"]["send"]["max"] == pytest.approx(max(t.send_ms for t in sent))
    dev = np.diff([t.t_send for t in sent]) * 1e3 - np.diff([t.tick for t in sent]) * 20.0
    assert stats["jitter_p99_ms"] == pytest.approx(np.percentile(np.abs(dev), 99))
    ages = [t.obs_age_ms for t in ticks if t.obs_age_ms >= 0]
    assert stats["obs_age_ms"]["max"] == pytest.approx(max(ages))
    assert stats["divergence"]["p50"] == pytest.approx(
        np.percentile([t.divergence for t in planned], 50)
    )
    assert f"deadline misses: {stats['deadline_misses']}" in result.output
    assert "send jitter p99" in result.output


def test_report_plots_are_valid_pngs(run_log, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", "report", str(run_log), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("timeline.png", "hist_stages.png"):
        path = out / name
        assert path.read_bytes()[:8] == PNG
        image = mpimg.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400


def test_report_refuses_a_file_that_is_not_a_log(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"type": "tick"}\n')
    result = CliRunner().invoke(cli, ["profile", "report", str(bad)])
    assert result.exit_code != 0 and "not a telemetry log" in result.output
