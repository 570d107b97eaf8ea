"""Latency-compensated planning, measured: returns and fallback rate of a shipped controller
in real time with and without ``--compensate``, at the server's own delay and with its
observations held back on purpose (``boom sim --obs-delay-ticks``).

Each run: ``boom sim TASK --mode realtime --obs-delay-ticks D`` in its own process, the
bundle's controller (``run_controller``) for ``--seconds`` at the task's rate; the runs of
one task alternate compensated / not for each delay, with the same seed; with several
``--seeds`` every seed runs the whole grid and a table of the mean and standard deviation
over the seeds ends the output.

    python benchmarks/latency_compensation.py --seconds 40 \
        --out benchmarks/results/latency_compensation.json
    python benchmarks/latency_compensation.py --seconds 30 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from boom_control.bundles import shipped_bundle
from boom_control.control.config import ControlConfig
from boom_control.control.run import run_controller
from boom_control.telemetry import read_telemetry
from sim_bridge.testing import ServerProcess, free_tcp_endpoint

TASKS = {
    # bundle: (rate Hz, budget ms, samples, iterations)
    "h1-stand": (50.0, 12.0, 16, 2),
    "dmc-humanoid-stand": (20.0, 40.0, 64, 2),
}


def run_one(bundle: str, delay: int, compensate: bool, seconds: float, seed: int, tmp: Path):
    rate, budget, samples, iterations = TASKS[bundle]
    root = shipped_bundle(bundle)
    task = json.loads((root / "bundle.json").read_text())["task"]["task_id"]
    endpoint = free_tcp_endpoint()
    args = ["-m", "boom_control", "sim", task, "--bind", endpoint, "--mode", "realtime",
            "--obs-delay-ticks", str(delay), "--seed", str(seed)]  # fmt: skip
    telemetry = tmp / f"{bundle}-d{delay}-c{int(compensate)}.jsonl"
    cfg = ControlConfig(
        connect=endpoint, rate=rate, budget_ms=budget, backend="onnx", device="cpu",
        threads=1, samples=samples, iterations=iterations, seed=seed, duration=seconds,
        compensate=compensate, telemetry=str(telemetry),
    )  # fmt: skip
    with ServerProcess(args, endpoint):
        summary = run_controller(root, cfg)
    returns = summary.get("episode_returns", [])
    lengths = summary.get("episode_lengths", [])
    log = read_telemetry(telemetry)
    ticks = [t for t in log.ticks if t.obs_latency_ms >= 0]
    return {
        "bundle": bundle,
        "task": task,
        "rate": rate,
        "delay_ticks": delay,
        "compensate": compensate,
        "seconds": seconds,
        "ticks": summary["ticks"],
        # every step's reward over the run (the last episode is cut by the duration)
        "reward_per_step": sum(returns) / max(sum(lengths), 1),
        "episode_returns": returns,
        "episode_lengths": lengths,
        "fallback_rate": summary["fallback_rate"],
        "late_sends": summary["late_sends"],
        "obs_latency_ms_p50": float(np.median([t.obs_latency_ms for t in ticks])),
        "compensated_mean": float(np.mean([t.compensated for t in ticks])),
        "plan_p99_ms": summary.get("plan_p99_ms"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundles", nargs="+", default=list(TASKS))
    ap.add_argument("--delays", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=40.0)
    ap.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0])
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        grid = [(b, d, c, s) for s in args.seeds for b in args.bundles for d in args.delays
                for c in (False, True)]  # fmt: skip
        for bundle, delay, compensate, seed in grid:
            row = run_one(bundle, delay, compensate, args.seconds, seed, Path(tmp))
            row["seed"] = seed
            rows.append(row)
            returns = ", ".join(f"{r:.1f}" for r in row["episode_returns"])
            print(
                f"{bundle:<19} seed {seed} delay {delay}  compensate {compensate!s:<5}  "
                f"latency p50 {row['obs_latency_ms_p50']:6.1f} ms  "
                f"predicted {row['compensated_mean']:.2f}  "
                f"fallback {100 * row['fallback_rate']:5.1f}%  late {row['late_sends']}  "
                f"reward/step {row['reward_per_step']:.3f}  returns [{returns}] "
                f"(last cut at {args.seconds:g} s)",
                flush=True,
            )
    if len(args.seeds) > 1:
        _summary(rows, args)
    if args.out:
        args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


def _summary(rows: list[dict], args: argparse.Namespace) -> None:
    """Mean and standard deviation over the seeds, per controller, delay and setting."""
    print(f"\nover seeds {args.seeds} ({args.seconds:g} s each):")
    print("| controller | extra delay | compensate | reward per step | fallback | episodes ended |")
    print("|---|---|---|---|---|---|")
    for bundle in args.bundles:
        for delay in args.delays:
            for compensate in (False, True):
                cell = [r for r in rows if (r["bundle"], r["delay_ticks"], r["compensate"])
                        == (bundle, delay, compensate)]  # fmt: skip
                reward = np.array([r["reward_per_step"] for r in cell])
                fallback = np.array([r["fallback_rate"] for r in cell])
                ended = np.mean([len(r["episode_returns"]) for r in cell])
                print(
                    f"| `{bundle}` | {delay} | {'on' if compensate else 'off'} | "
                    f"{reward.mean():.3f} +- {reward.std(ddof=1):.3f} | "
                    f"{100 * fallback.mean():.1f}% | {ended:.1f} |"
                )


if __name__ == "__main__":
    main()
