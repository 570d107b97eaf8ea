"""Plan quality at small budgets: how to split a few samples between policy trajectories
and sampled sequences.

For a shipped bundle, every (samples N, policy trajectories P) cell plans whole episodes
of the bundle's task with the ONNX whole-plan program (one iteration unless told
otherwise) from the same reset seeds, and reports the mean return and its standard error
over the seeds, with the policy alone as the reference. An episode's return depends only on
the weights, the seed and the plan settings, so the cells differ only by P.

    python benchmarks/small_budget.py --bundle h1-stand --samples 16 32 64 \\
        --pi-trajs 1 2 4 8 16 --episodes 5 --out benchmarks/results/small_budget.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from boom_control.bundle.load import load_bundle
from boom_control.bundle.task import bundle_env
from boom_control.bundles import shipped_bundle
from boom_control.control.actor import BackendActor
from boom_control.control.factory import build_backend
from boom_control.train.evaluate import run_episodes

FIRST_SEED = 500
"""Reset seeds FIRST_SEED, FIRST_SEED + 1, ... (not those the bundle was picked on)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default="h1-stand", help="shipped bundle name or folder")
    parser.add_argument("--samples", nargs="+", type=int, default=[16, 32, 64])
    parser.add_argument("--pi-trajs", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/small_budget.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    path = Path(args.bundle) if Path(args.bundle).is_dir() else shipped_bundle(args.bundle)
    bundle = load_bundle(path)
    env = bundle_env(bundle, 0, None)
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.episodes))
    cells = [(n, p) for n in args.samples for p in args.pi_trajs if p < n]
    rows = []
    start = time.monotonic()
    policy = None
    for n, p in tqdm(cells, desc="cells", unit="cell"):
        backend = build_backend(
            bundle, "onnx", "cpu", threads=args.threads, samples=n, iterations=args.iterations,
            pi_trajs=p,
        )  # fmt: skip
        actor = BackendActor(backend, seed=0)
        if policy is None:
            policy = run_episodes(actor, env, seeds, use_planner=False)
        returns = run_episodes(actor, env, seeds, use_planner=True)
        rows.append({
            "samples": n,
            "pi_trajs": p,
            "iterations": args.iterations,
            "mean": float(returns.mean()),
            "sem": float(returns.std(ddof=1) / np.sqrt(len(returns))) if len(returns) > 1 else 0.0,
            "returns": returns.tolist(),
        })  # fmt: skip
        tqdm.write(f"N={n:4d} P={p:3d}: {rows[-1]['mean']:8.1f} +- {rows[-1]['sem']:.1f}")
    env.close()
    assert policy is not None
    print(f"\n{bundle.task_id}, {args.episodes} episodes from seed {FIRST_SEED}, "
          f"{args.iterations} iteration(s); policy alone {policy.mean():.1f}")  # fmt: skip
    print("| samples | " + " | ".join(f"P = {p}" for p in args.pi_trajs) + " |")
    print("|---|" + "---|" * len(args.pi_trajs))
    for n in args.samples:
        by_p = {r["pi_trajs"]: r for r in rows if r["samples"] == n}
        cols = [
            f"{by_p[p]['mean']:.1f} +- {by_p[p]['sem']:.1f}" if p in by_p else "-"
            for p in args.pi_trajs
        ]
        print(f"| {n} | " + " | ".join(cols) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"bundle": str(path), "task": bundle.task_id, "seeds": seeds,
            "policy": policy.tolist(), "seconds": time.monotonic() - start}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
