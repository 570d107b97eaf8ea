"""Real-time control runs against `boom sim` for several planning budgets.

For each budget a fresh real-time ``boom sim TASK`` process is started and the
controller (``run_controller``, what ``boom control`` runs) runs TICKS ticks at RATE Hz
with telemetry in this process; the table reports late sends, skipped ticks, fallback
rate, mean MPPI iterations per tick and plan p50/p99.

    python benchmarks/control_run.py BUNDLE --task h1:walk --budgets 10 15 --ticks 3000 \
        --backend onnx --threads 1 --out control_run.json

Without a BUNDLE argument a randomly initialised model of ``--size`` is exported to a
temporary bundle for the task (timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from boom_control.control.config import load_control_config
from boom_control.control.run import run_controller
from boom_control.telemetry import read_telemetry
from sim_bridge.testing import ServerProcess, free_tcp_endpoint


def run_one(bundle: Path, task: str, budget: float, args, tmp: Path) -> dict:
    endpoint = free_tcp_endpoint()
    telemetry = (args.keep or tmp) / f"budget{budget:g}.jsonl"
    sim = ["-m", "boom_control", "sim", task, "--bind", endpoint, "--mode", "realtime"]
    settings = {
        "connect": endpoint,
        "rate": args.rate,
        "budget_ms": budget,
        "backend": args.backend,
        "device": args.device,
        "duration": args.ticks / args.rate,
        "telemetry": str(telemetry),
        "threads": args.threads,
        "rt_priority": args.rt_priority,
        "planner_rt_priority": args.planner_rt_priority,
        "samples": args.samples or None,
        "iterations": args.iterations or None,
        "bf16": args.bf16,
    }
    with ServerProcess(sim, endpoint):
        run_controller(bundle, load_control_config(settings), announce=print)
    log = read_telemetry(telemetry)
    s = log.summary
    return {
        "budget_ms": budget,
        "ticks": len(log.ticks),
        "late_sends": s["late_sends"],
        "skipped_ticks": s["skipped_ticks"],
        "fallback_rate": s["fallback_rate"],
        "mean_iterations": s["mean_iterations"],
        "plan_p50_ms": s["plan_p50_ms"],
        "plan_p99_ms": s["plan_p99_ms"],
        "episode_return": s.get("episode_return"),
        "backend": log.header["backend"],
        "device": log.header["device"],
        "samples": log.header["planner"]["samples"],
        "iterations_max": log.header["planner"]["iterations"],
        "warmup_s": log.header["warmup_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", type=Path, default=None)
    ap.add_argument("--task", default="h1:walk")
    ap.add_argument("--size", "--preset", default="5M", help="model size when no bundle is given")
    ap.add_argument("--budgets", nargs="+", type=float, default=[10.0, 15.0])
    ap.add_argument("--ticks", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--iterations", type=int, default=None)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--rt-priority", type=int, default=10)
    ap.add_argument("--planner-rt-priority", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="folder keeping the telemetry")
    args = ap.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            from plan_latency import random_bundle

            bundle = random_bundle(args.size, args.task, Path(tmp) / "bundle").root
        for budget in args.budgets:
            row = run_one(bundle, args.task, budget, args, Path(tmp))
            rows.append(row)
            print(
                f"budget {budget:5.1f} ms | ticks {row['ticks']} | late {row['late_sends']} | "
                f"skipped {row['skipped_ticks']} | fallback {100 * row['fallback_rate']:.1f}% | "
                f"iters {row['mean_iterations']:.2f}/{row['iterations_max']} "
                f"({row['samples']} samples) | plan p50 {row['plan_p50_ms']:.1f} "
                f"p99 {row['plan_p99_ms']:.1f} ms",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps({"task": args.task, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
