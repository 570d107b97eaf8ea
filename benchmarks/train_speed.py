"""Learner speed: milliseconds per update (batch 256) and per planning call.

Times ``Agent.update`` on random batches and ``Agent.act`` (encode + full MPPI: 512
samples, 8 iterations for A = 21) for the model presets, on the CPU with each requested
thread count and on the GPU when one is available. Prints a table and writes JSON.

    python benchmarks/train_speed.py --out runs/bench/train_speed.json
    python benchmarks/train_speed.py --quick          # a few repetitions only
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

from boom_control.agent import Agent, AgentConfig, Batch, ModelConfig, PlannerConfig
from boom_control.config import config_dir, load_config


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(fn, device: torch.device, reps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def bench_one(
    preset: str, device: torch.device, obs_dim: int, action_dim: int, args: argparse.Namespace
) -> dict:
    """Median ms per update and per plan for one preset on one device."""
    torch.manual_seed(0)
    model_cfg = load_config(ModelConfig, presets=[config_dir() / "model" / f"{preset}.yaml"])
    planner_cfg, agent_cfg = PlannerConfig(), AgentConfig(batch_size=args.batch_size)
    agent = Agent(obs_dim, action_dim, 500, model_cfg, planner_cfg, agent_cfg, device)
    h, b = planner_cfg.horizon, args.batch_size
    batch = Batch(
        obs=torch.randn(h + 1, b, obs_dim, device=device),
        action=torch.rand(h, b, action_dim, device=device) * 2 - 1,
        mu=torch.rand(h, b, action_dim, device=device) * 2 - 1,
        reward=torch.randn(h, b, device=device),
        terminated=torch.zeros(h, b, device=device),
    )
    obs = np.random.default_rng(0).standard_normal(obs_dim).astype(np.float32)
    state = agent.initial_plan_state()

    def plan_step() -> None:
        nonlocal state
        state = agent.act(obs, state, eval_mode=False)[3]

    update = _time_ms(lambda: agent.update(batch), device, args.reps, args.warmup)
    plan = _time_ms(plan_step, device, args.reps, args.warmup)
    return {
        "preset": preset,
        "params": agent.model.num_params(),
        "ms_per_update": statistics.median(update),
        "ms_per_plan": statistics.median(plan),
        "plan_samples": planner_cfg.num_samples,
        "plan_iterations": planner_cfg.iterations_for(action_dim),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["1M", "5M"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--obs-dim", type=int, default=67)
    parser.add_argument("--action-dim", type=int, default=21)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repetitions first")
    parser.add_argument("--quick", action="store_true", help="3 repetitions, 1 warm-up")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU rows")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/train_speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmup = 3, 1

    runs = [("cpu", t) for t in args.threads]
    if torch.cuda.is_available() and not args.no_gpu:
        runs.append(("cuda", max(args.threads)))
    rows = []
    for device_name, threads in runs:
        torch.set_num_threads(threads)
        device = torch.device(device_name)
        for preset in args.presets:
            row = bench_one(preset, device, args.obs_dim, args.action_dim, args)
            row.update(device=device_name, threads=threads)
            rows.append(row)

    header = (
        f"{'preset':>6} {'device':>6} {'threads':>7} {'params':>10} "
        f"{'ms/update':>10} {'ms/plan':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['preset']:>6} {r['device']:>6} {r['threads']:>7} {r['params']:>10,} "
            f"{r['ms_per_update']:>10.1f} {r['ms_per_plan']:>9.1f}"
        )
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "obs_dim": args.obs_dim,
        "action_dim": args.action_dim,
        "batch_size": args.batch_size,
        "reps": args.reps,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
