"""The planner's GPU checks in one short run, every figure under the card's name.

Steps, each the real program in its own process with its own time cap (the results are
written again after every step, so a run cut short keeps what it measured):

* ``tests``: the tests marked ``gpu`` (``pytest -m gpu``): CUDA graphs of the iteration and
  of whole plans against eager planning, the learner with CUDA graphs (and torch.compile)
  through weight updates, ``boom train`` on CUDA with the default settings, the GPU
  backends against the CPU, the synchronised profile sweep;
* ``plan``: plan latency p50 / p99 per backend at 1M 256 x 4 and 5M 512 x 6
  (``benchmarks/plan_latency.py``), against the targets p99 <= 1 ms and <= 2 ms;
* ``demo``: ``boom demo --no-render`` at the shipped bundle's full size in real time: the
  share of ticks on which MPPI acted (target >= 99.5%);
* ``train``: the learner's agent steps/s (``benchmarks/train_speed.py``): eager, CUDA
  graphs, torch.compile + CUDA graphs, and the defaults of a plain ``boom train``.

    python benchmarks/gpu_suite.py                        # everything, at most 8 minutes
    python benchmarks/gpu_suite.py --steps tests plan     # some of it
    python benchmarks/gpu_suite.py --device cpu --quick   # the same checks on a CPU

Writes ``gpu_suite_<hardware>.json`` and ``gpu_suite_<hardware>.md`` (figures against
targets, then each step's table) to ``--out``; each step's log and files go to ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("tests", "plan", "demo", "train")


@dataclass(frozen=True)
class PlanTarget:
    """A plan-latency target: p99 of the quickest backend at ``size`` ``samples x iterations``."""

    size: str
    samples: int
    iterations: int
    p99_ms: float

    @property
    def setting(self) -> str:
        return f"{self.samples}x{self.iterations}"


PLAN_TARGETS = (PlanTarget("1M", 256, 4, 1.0), PlanTarget("5M", 512, 6, 2.0))
DEMO_PLANNED_SHARE = 0.995
"""Ticks on which MPPI acted, of all ticks, that the demo must reach."""


def slug(name: str) -> str:
    """``NVIDIA H200`` -> ``nvidia-h200`` (file names)."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown"


def run_step(cmd: list[str], log: Path, timeout_s: float, env: dict | None = None) -> dict:
    """Run ``cmd`` with its output both printed and written to ``log``; past ``timeout_s``
    its whole process group is stopped (the demo's sim server too).

    Returns:
        ``{"cmd", "returncode", "seconds", "timed_out", "log_tail"}``.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"\n== {' '.join(cmd)}  (at most {timeout_s:.0f} s)", flush=True)
    start = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )

        def copy() -> None:
            for line in proc.stdout:
                sink.write(line)
                sys.stdout.write(line)
            sys.stdout.flush()

        reader = threading.Thread(target=copy, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop_group(proc)
        reader.join(timeout=10)
    text = log.read_text(errors="replace")
    return {
        "cmd": cmd,
        "returncode": proc.returncode,
        "seconds": round(time.monotonic() - start, 1),
        "timed_out": timed_out,
        "log_tail": text[-3000:],
    }


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def junit_counts(path: Path) -> dict:
    """Passed / failed / errors / skipped and the failed tests' names of a JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    failed = []
    for suite in suites:
        for key in total:
            total[key] += int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{case.get('classname')}::{case.get('name')}")
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return {**total, "passed": passed, "failed": failed}


def gpu_test_files(root: Path = ROOT / "tests") -> list[str]:
    """The test files with tests marked ``gpu`` (collecting only these keeps the suite
    independent of what the other tests import)."""
    return [
        str(p.relative_to(ROOT))
        for p in sorted(root.rglob("test_*.py"))
        if "pytest.mark.gpu" in p.read_text(errors="replace")
    ]


def plan_figures(rows: list[dict], targets=PLAN_TARGETS) -> list[dict]:
    """Each target against the quickest backend's p99 at its size and setting."""
    out = []
    for t in targets:
        cells = [
            r
            for r in rows
            if r["size"] == t.size
            and (r["samples"], r["iterations"]) == (t.samples, t.iterations)
            and not r["backend"].startswith("floor")
        ]
        best = min(cells, key=lambda r: r["p99_ms"], default=None)
        out.append(
            {
                "figure": f"plan p99, {t.size} {t.samples} x {t.iterations}",
                "target": f"<= {t.p99_ms:g} ms",
                "value": None if best is None else round(best["p99_ms"], 3),
                "backend": None if best is None else best["backend"],
                "met": None if best is None else best["p99_ms"] <= t.p99_ms,
            }
        )
    return out


def demo_figures(telemetry: Path) -> dict:
    """The demo's share of ticks planned in time (MPPI acted), from its telemetry."""
    from boom_control.profile.report import report_log

    _, result = report_log(telemetry)
    stats = result["stats"]
    ticks = stats["ticks"]
    planned = stats["action_sources"].get("plan", 0)
    share = planned / ticks if ticks else 0.0
    plan = stats["stages"]["plan"]
    return {
        "ticks": ticks,
        "planned": planned,
        "planned_share": share,
        "late_sends": stats["late_sends"],
        "skipped_ticks": stats["skipped_ticks"],
        "mean_iterations": stats["mean_iterations"],
        "plan_p50_ms": plan.get("p50"),
        "plan_p99_ms": plan.get("p99"),
        "met": share >= DEMO_PLANNED_SHARE,
    }


class Suite:
    """The steps, their caps within the whole run's budget, and the results file."""

    def __init__(
        self, args: argparse.Namespace, argv: list[str], hardware: str, torch_version: str
    ) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.budget_s
        name = slug(hardware)
        self.work = args.work / name
        self.json_path = args.out / f"gpu_suite_{name}.json"
        self.md_path = args.out / f"gpu_suite_{name}.md"
        self.result = {
            "hardware": hardware,
            "device": args.device,
            "torch": torch_version,
            "python": sys.version.split()[0],
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python benchmarks/gpu_suite.py", *argv]),
            "steps": {},
        }

    def cap(self, wanted: float) -> float:
        return max(0.0, min(wanted, self.deadline - time.monotonic()))

    def run(self) -> dict:
        self.work.mkdir(parents=True, exist_ok=True)
        self.args.out.mkdir(parents=True, exist_ok=True)
        for step in self.args.steps:
            cap = self.cap(self.args.cap_s[step])
            if cap < 20:
                self.result["steps"][step] = {"status": "not run: no time left in --budget-s"}
            else:
                self.result["steps"][step] = getattr(self, f"step_{step}")(cap)
            self.save()
        return self.result

    def save(self) -> None:
        self.json_path.write_text(json.dumps(self.result, indent=1, default=str) + "\n")
        self.md_path.write_text(markdown(self.result))

    def _py(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def step_tests(self, cap: float) -> dict:
        xml = self.work / "gpu_tests.xml"
        xml.unlink(missing_ok=True)
        cmd = self._py("-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                       f"--junitxml={xml}", *gpu_test_files())  # fmt: skip
        run = run_step(cmd, self.work / "tests.log", cap)
        if not xml.is_file():
            return {**run, "status": "no test report (see log_tail)"}
        counts = junit_counts(xml)
        failed = counts["failures"] + counts["errors"]
        value = f"{counts['passed']} passed, {failed} failed, {counts['skipped']} skipped"
        check = ("tests marked gpu", value, "all pass", _met(failed == 0 and counts["passed"] > 0))
        status = "ok" if run["returncode"] == 0 else "failed"
        return {**run, **counts, "status": status, "checks": [check]}

    def step_plan(self, cap: float) -> dict:
        out = self.work / "plan_latency.json"
        out.unlink(missing_ok=True)
        cmd = self._py(
            "benchmarks/plan_latency.py", "--task", "h1:stand", "--device", self.args.device,
            "--threads", "1", "--no-reference", "--sizes", *self.args.plan_sizes,
            "--settings", *self.args.plan_settings, "--backends", *self.args.plan_backends,
            "--repeats", str(self.args.repeats), "--out", str(out),
        )  # fmt: skip
        run = run_step(cmd, self.work / "plan.log", cap)
        if not out.is_file():
            return {**run, "status": "no results (see log_tail)"}
        rows = json.loads(out.read_text())["rows"]
        status = "ok" if run["returncode"] == 0 else "failed"
        targets = plan_figures(rows)
        checks = [
            (
                t["figure"],
                "not measured" if t["value"] is None else f"{t['value']:.3f} ms ({t['backend']})",
                t["target"],
                _met(t["met"]),
            )
            for t in targets
        ]
        return {**run, "status": status, "rows": rows, "targets": targets, "checks": checks}

    def step_demo(self, cap: float) -> dict:
        from sim_bridge.testing import free_tcp_port

        folder = self.work / "demo"
        telemetry = folder / "control.jsonl"
        telemetry.unlink(missing_ok=True)
        cmd = self._py(
            "-m", "boom_control", "demo", "--device", self.args.device, "--no-render",
            "--seconds", f"{self.args.demo_seconds:g}", "--out", str(folder),
            "--port", str(free_tcp_port()), "--fit-seconds", "10" if self.args.quick else "30",
        )  # fmt: skip
        run = run_step(cmd, self.work / "demo.log", cap)
        if not telemetry.is_file():
            return {**run, "status": "no telemetry (see log_tail)"}
        status = "ok" if run["returncode"] == 0 else "failed"
        demo = demo_figures(telemetry)
        value = (
            f"{demo['planned']:,} of {demo['ticks']:,} ({100 * demo['planned_share']:.2f}%), "
            f"plan p99 {_ms(demo['plan_p99_ms'])}, {demo['late_sends']} late sends"
        )
        target = f">= {100 * DEMO_PLANNED_SHARE:g}%"
        check = ("demo: ticks MPPI acted on", value, target, _met(demo["met"]))
        return {**run, "status": status, **demo, "checks": [check]}

    def step_train(self, cap: float) -> dict:
        out = self.work / "train_speed.json"
        out.unlink(missing_ok=True)
        cmd = self._py(
            "benchmarks/train_speed.py", "--devices", self.args.device, "--task", "h1:stand",
            "--sizes", "1M", "--threads", "1", "--variants", *self.args.train_variants,
            "--quick", "--out", str(out),
        )  # fmt: skip
        run = run_step(cmd, self.work / "train.log", cap)
        if not out.is_file():
            return {**run, "status": "no results (see log_tail)"}
        rows = json.loads(out.read_text())["rows"]
        return {**run, "status": "ok" if run["returncode"] == 0 else "failed", "rows": rows}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _met(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def headline(result: dict) -> list[tuple[str, str, str, str]]:
    """``(figure, value, target, met)`` rows of the checks with targets, step by step."""
    return [tuple(c) for step in result["steps"].values() for c in step.get("checks", [])]


def markdown(result: dict) -> str:
    """The results as Markdown: the checks against targets, then each step's table."""
    lines = [
        f"# GPU suite on {result['hardware']}",
        "",
        f"`{result['command']}` (device `{result['device']}`, torch {result['torch']}, "
        f"Python {result['python']}, started {result['started']})",
        "",
        "| check | value | target | met |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in headline(result)),
    ]
    plan = result["steps"].get("plan", {})
    if plan.get("rows"):
        lines += ["", "| size | backend | samples x iterations | p50 ms | p99 ms |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for r in plan["rows"]:
            lines.append(
                f"| {r['size']} | {r['backend']} | {r['samples']} x {r['iterations']} | "
                f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} |"
            )
    train = result["steps"].get("train", {})
    if train.get("rows"):
        lines += [
            "",
            "| size | variant | agent steps/s | ms/update | ms/plan |",
            "|---|---|---|---|---|",
        ]
        for r in train["rows"]:
            lines.append(
                f"| {r['size']} | {r['variant']} | {r['steps_per_s']:.2f} | "
                f"{r['ms_per_update']:.1f} | {r['ms_per_plan']:.1f} |"
            )
    for name, step in result["steps"].items():
        if step.get("status") not in (None, "ok"):
            lines += ["", f"`{name}`: {step['status']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    ap.add_argument("--budget-s", type=float, default=480.0, help="the whole run's time cap")
    ap.add_argument("--quick", action="store_true", help="fewer repeats, a shorter demo")
    ap.add_argument("--repeats", type=int, default=None, help="plans timed per cell")
    ap.add_argument("--demo-seconds", type=float, default=None)
    ap.add_argument("--plan-sizes", nargs="+", default=["1M", "5M"])
    ap.add_argument("--plan-settings", nargs="+", default=[t.setting for t in PLAN_TARGETS])
    ap.add_argument("--plan-backends", nargs="+", default=None)
    ap.add_argument("--train-variants", nargs="+", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "gpu_suite")
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device here (--device cpu runs the same checks on the CPU)")
    cuda = args.device.startswith("cuda")
    args.repeats = args.repeats or (30 if args.quick else 300 if cuda else 50)
    args.demo_seconds = args.demo_seconds or (15.0 if args.quick else 30.0)
    args.plan_backends = args.plan_backends or (
        ["cudagraph", "torch", "torch+bf16", "onnx"] if cuda else ["onnx", "torch"]
    )
    args.train_variants = args.train_variants or (
        ["eager", "fast+graph", "fast+compile+graph", "defaults"] if cuda else ["eager", "defaults"]
    )
    args.cap_s = {
        "tests": 180.0,
        "plan": 150.0,
        "demo": args.demo_seconds + 90.0,
        "train": 180.0,
    }
    from boom_control.device import hardware_name

    suite = Suite(args, argv, hardware_name(torch.device(args.device)), torch.__version__)
    result = suite.run()
    print("\n" + markdown(result))
    print(f"wrote {suite.json_path} and {suite.md_path}")
    failed = [n for n, s in result["steps"].items() if s.get("status") not in ("ok",)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
