"""Live sweep on a tiny bundle: JSON structure, stage bookkeeping, fitted config, plots.

No timing is asserted: only structure and identities that hold on any machine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.profile.sweep import STAGES, make_clock

PCTS = {"n", "mean", "std", "min", "p50", "p90", "p99", "p99.9", "max"}


def test_sweep_cli_writes_json_tables_config_and_plots(random_bundle, tmp_path):
    out = tmp_path / "prof"
    args = [
        "profile", str(random_bundle), "--backend", "onnx", "--threads", "1",
        "--samples", "16,32", "--iterations", "1,3", "--repeats", "12", "--warmup", "2",
        "--budget-ms", "100000", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "profile.json").read_text())
    assert data["backend"] == "onnx" and data["task"] == "h1:stand"
    assert [(c["samples"], c["iterations"]) for c in data["cells"]] == [
        (16, 1), (16, 3), (32, 1), (32, 3)
    ]  # fmt: skip
    for c in data["cells"]:
        assert c["repeats"] == 12 and c["precision"] == "fp32"
        assert set(c["stages"]) == set(STAGES) | {f"iter_{k + 1}" for k in range(c["iterations"])}
        assert all(set(s) == PCTS for s in c["stages"].values())
        st = c["stages"]
        # onnx on a CPU plans with whole-plan programs: one call, no inner stages
        assert st["program"]["n"] == st["plan"]["n"] == 12
        assert st["iteration"]["n"] == st["init"]["n"] == st["select"]["n"] == 0
        assert st["plan"]["p50"] <= st["plan"]["p90"] <= st["plan"]["p99"] <= st["plan"]["max"]
    floor = data["floor"]  # the largest cell against its multiplies alone in ONNX Runtime
    assert (floor["cell"], floor["runtime"]) == ("fp32_N32_I3", "onnx")
    rows = {r["stage"]: r for r in floor["rows"]}
    assert rows["program"]["x_floor"] > 0 and rows["iteration"]["x_floor"] is None
    assert rows["plan"]["mflop"] > rows["program"]["mflop"] > 3 * rows["iteration"]["mflop"] / 2
    assert "against the matmul floor of fp32_N32_I3" in result.output
    # the whole plan is timed end to end; every stage lies inside it
    raw = np.load(out / "timings.npz")
    for name in ("fp32_N16_I1", "fp32_N32_I3"):
        parts = sum(raw[f"{name}_{s}"] for s in ("h2d", "encode", "policy", "program", "d2h"))
        assert np.all(parts <= raw[f"{name}_plan"] + 1e-9)
        assert raw[f"{name}_iter"].shape == (0, int(name[-1]))
    # a huge budget fits the largest setting; the YAML is what boom control takes
    fit = data["budgets"][0]
    assert (fit["fit"]["samples"], fit["fit"]["iterations"]) == (32, 3)
    settings = yaml.safe_load((out / "fitted_100000ms.yaml").read_text())
    assert settings == {"samples": 32, "iterations": 3, "budget_ms": 100000.0,
                        "backend": "onnx", "device": "cpu", "threads": 1}  # fmt: skip
    assert "--samples 32 --iterations 3" in result.output and "p99.9" in result.output
    assert "CPU load" in result.output
    for png in ("heatmap_p99_fp32.png", "hist_fp32_N32_I3.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explicit_subcommand_and_bf16_on_torch(random_bundle, tmp_path):
    out = tmp_path / "prof"
    args = [
        "profile", "bundle", str(random_bundle), "--backend", "torch", "--samples", "16",
        "--iterations", "2", "--repeats", "5", "--warmup", "1", "--no-plots", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "profile.json").read_text())
    assert [c["precision"] for c in data["cells"]] == ["fp32", "bf16"]
    assert not list(out.glob("*.png"))
    for c in data["cells"]:  # stepped: every stage measured, the program is their sum
        st = c["stages"]
        assert st["iteration"]["n"] == 10 and st["init"]["n"] == st["program"]["n"] == 5
    raw = np.load(out / "timings.npz")
    inner = raw["fp32_N16_I2_init"] + raw["fp32_N16_I2_iter"].sum(axis=1)
    assert np.all(inner + raw["fp32_N16_I2_select"] <= raw["fp32_N16_I2_program"] + 1e-9)
    bad = CliRunner().invoke(cli, ["profile", str(random_bundle), "--backend", "onnx",
                                   "--precision", "bf16", "--out", str(out)])  # fmt: skip
    assert bad.exit_code != 0 and "offers fp32" in bad.output


@pytest.mark.gpu
def test_gpu_sweep_synchronises(random_bundle, tmp_path):
    clock = make_clock(torch.device("cuda"))
    x = torch.randn(2048, 2048, device="cuda")
    t0 = clock()
    x @ x
    assert clock() >= t0
    out = tmp_path / "gpu"
    args = [
        "profile", str(random_bundle), "--device", "cuda", "--backend", "torch",
        "--samples", "32", "--iterations", "2", "--repeats", "20", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "profile.json").read_text())
    assert "cuda" in data["device"] and data["cells"][0]["stages"]["plan"]["n"] == 20
