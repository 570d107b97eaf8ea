"""Evaluation speed: planner episodes per minute with 1..N episodes running side by side.

An untrained 1M agent with the paper's planner and the fast CPU settings (fast Mish, bf16
planning, compiled iterations) on a DeepMind Control task; the same seeds for every worker
count, so the returns must agree exactly (checked). Rounds alternate the worker counts.

    python benchmarks/eval_speed.py --out benchmarks/results/eval_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from train_speed import make_config

from boom_control.envs import make_env
from boom_control.train.agent import make_agent
from boom_control.train.evaluate import run_episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="dmc:cartpole-swingup")
    parser.add_argument("--size", "--preset", default="1M")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--episodes", type=int, default=2, help="episodes per timing")
    parser.add_argument("--steps", type=int, default=100, help="steps per episode")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if min(args.workers) < 1 or args.episodes < 1 or args.steps < 1:
        parser.error("--workers, --episodes and --steps must be at least 1")

    torch.set_num_threads(args.threads)
    cfg = make_config(args.size, "fast+bf16+compile", "cpu", "unused", 256)
    envs = [
        make_env(args.task, seed=k, episode_length=args.steps) for k in range(max(args.workers))
    ]
    agent = make_agent(cfg, envs[0].spec, torch.device("cpu"))
    seeds = list(range(100, 100 + args.episodes))
    run_episodes(agent, envs, seeds[:1], use_planner=True)  # compile and warm up
    times: dict[int, list[float]] = {w: [] for w in args.workers}
    returns: dict[int, list[float]] = {}
    for _ in range(args.rounds):
        for w in args.workers:
            start = time.perf_counter()
            r = run_episodes(agent, envs[:w], seeds, use_planner=True)
            times[w].append(time.perf_counter() - start)
            returns[w] = r.tolist()
    for env in envs:
        env.close()
    agree = all(np.array_equal(returns[w], returns[args.workers[0]]) for w in args.workers)
    plans = args.episodes * args.steps
    print(f"{args.task}, {args.size}, {args.episodes} x {args.steps}-step planner episodes")
    print("| workers | s (median) | planner steps/s | speed-up |\n|---|---|---|---|")
    base = statistics.median(times[args.workers[0]])
    rows = []
    for w in args.workers:
        med = statistics.median(times[w])
        rows.append({"workers": w, "seconds": med, "plans_per_s": plans / med})
        print(f"| {w} | {med:.1f} | {plans / med:.1f} | {base / med:.2f}x |")
    print(f"returns identical for every worker count: {agree}")
    if not agree:
        raise SystemExit("returns differ between worker counts")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "task": args.task,
            "size": args.size,
            "episodes": args.episodes,
            "steps": args.steps,
            "threads": args.threads,
            "rows": rows,
            "machine": platform.platform(),
        }
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
