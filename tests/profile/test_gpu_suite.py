"""``benchmarks/gpu_suite.py``: its steps run the real programs and its figures are read
back correctly; on a CPU (``--device cpu``) the whole suite runs end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from boom_control.device import hardware_name

ROOT = Path(__file__).resolve().parents[2]


def _suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu_suite = _suite()


def test_junit_counts_of_a_real_pytest_report(tmp_path):
    (tmp_path / "test_three.py").write_text(
        "import pytest\n"
        "def test_ok():\n    pass\n"
        "def test_bad():\n    assert 1 == 2\n"
        "@pytest.mark.skip(reason='no')\ndef test_later():\n    pass\n"
    )
    xml = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
         str(tmp_path / "test_three.py")],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip
    counts = gpu_suite.junit_counts(xml)
    assert (counts["tests"], counts["passed"], counts["failures"], counts["skipped"]) == (
        3,
        1,
        1,
        1,
    )
    assert counts["failed"] == ["test_three::test_bad"]


def test_plan_targets_are_judged_on_the_quickest_backend():
    rows = [
        {"size": "1M", "backend": "torch", "samples": 256, "iterations": 4, "p99_ms": 3.0},
        {"size": "1M", "backend": "cudagraph", "samples": 256, "iterations": 4, "p99_ms": 0.8},
        {"size": "1M", "backend": "floor-torch", "samples": 256, "iterations": 4, "p99_ms": 0.1},
        {"size": "5M", "backend": "cudagraph", "samples": 512, "iterations": 6, "p99_ms": 2.5},
    ]
    one, five = gpu_suite.plan_figures(rows)
    assert (one["value"], one["backend"], one["met"]) == (0.8, "cudagraph", True)
    assert (five["value"], five["met"]) == (2.5, False)
    assert gpu_suite.plan_figures(rows[:1])[1] == {
        "figure": "plan p99, 5M 512 x 6",
        "target": "<= 2 ms",
        "value": None,
        "backend": None,
        "met": None,
    }
    assert gpu_suite.slug("NVIDIA H100 80GB HBM3") == "nvidia-h100-80gb-hbm3"


def test_no_cuda_device_is_a_clear_error_and_an_empty_budget_runs_nothing(tmp_path, capsys):
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exc:
            gpu_suite.main(["--out", str(tmp_path)])
        assert exc.value.code == 2 and "no CUDA device here" in capsys.readouterr().err
    args = ["--device", "cpu", "--budget-s", "5", "--out", str(tmp_path), "--work", str(tmp_path)]
    assert gpu_suite.main(args) == 1
    result = json.loads(next(tmp_path.glob("gpu_suite_*.json")).read_text())
    assert set(result["steps"]) == {"tests", "plan", "demo", "train"}
    assert all(s["status"].startswith("not run") for s in result["steps"].values())


@pytest.mark.slow
def test_the_suite_on_a_cpu_measures_and_writes_its_figures(tmp_path):
    out = tmp_path / "out"
    args = [
        "--device", "cpu", "--quick", "--steps", "tests", "plan", "demo",
        "--plan-sizes", "1M", "--plan-settings", "16x1", "256x4", "--repeats", "3",
        "--demo-seconds", "3", "--out", str(out), "--work", str(tmp_path / "work"),
    ]  # fmt: skip
    assert gpu_suite.main(args) == 0
    name = gpu_suite.slug(hardware_name(torch.device("cpu")))
    result = json.loads((out / f"gpu_suite_{name}.json").read_text())
    assert result["hardware"] == hardware_name(torch.device("cpu"))
    steps = result["steps"]
    assert all(s["status"] == "ok" for s in steps.values())
    # without CUDA every gpu test is collected and skipped with its reason
    tests = steps["tests"]
    assert tests["skipped"] == tests["tests"] >= 10 and tests["passed"] == 0
    # the plan step timed both CPU backends at both settings; the 256 x 4 target is judged
    # on the quicker one, the 5M one was not measured
    rows = steps["plan"]["rows"]
    cells = {(r["backend"], r["samples"], r["iterations"]) for r in rows}
    assert cells == {(b, n, i) for b in ("onnx", "torch") for n, i in ((16, 1), (256, 4))}
    one, five = steps["plan"]["targets"]
    assert one["value"] == round(min(r["p99_ms"] for r in rows if r["samples"] == 256), 3)
    assert one["met"] == (one["value"] <= 1.0) and five["value"] is None
    # the demo ran 3 s at 50 Hz in real time; its share is read from its telemetry
    demo = steps["demo"]
    assert 140 <= demo["ticks"] <= 160
    assert demo["planned_share"] == pytest.approx(demo["planned"] / demo["ticks"])
    assert demo["met"] == (demo["planned_share"] >= 0.995)
    md = (out / f"gpu_suite_{name}.md").read_text()
    assert md.startswith(f"# GPU suite on {result['hardware']}")
    assert "| tests marked gpu |" in md and "| 1M | onnx | 256 x 4 |" in md
