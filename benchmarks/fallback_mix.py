"""Offline: how a bundle does when MPPI acts on only some of the ticks and the policy on
the rest, as under a deadline the planner often misses.

Each tick plans with probability ``share`` (independently), warm-started like ``boom
control``: from the last tick that planned, shifted by the ticks since; other ticks send
the policy's action. No clock: the question is whether interleaving the two actors costs
anything that neither costs alone (share 0 is the policy alone, 1 the planner alone).

    python benchmarks/fallback_mix.py boom_control/bundles/h1-stand --samples 16 \
        --iterations 1 --shares 0 0.5 1 --episodes 10 --first-seed 21
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from boom_control.bundle.load import load_bundle
from boom_control.bundle.task import bundle_env
from boom_control.control.factory import build_backend
from boom_control.planner.backends import PlannerBackend
from boom_control.planner.mppi import advance, initial_state
from boom_control.planner.types import PlanState


@torch.inference_mode()
def mixed_episode(
    backend: PlannerBackend, env, seed: int, share: float
) -> tuple[float, int, float]:
    """Return, length and the share of ticks planned of one episode from reset ``seed``."""
    obs, _ = env.reset(seed=seed)
    noise = torch.Generator(device=backend.device).manual_seed(seed)
    coin = np.random.default_rng(seed)
    warm: tuple[int, PlanState] | None = None
    total, t, planned, done = 0.0, 0, 0, False
    while not done:
        z = backend.encode(torch.as_tensor(obs, dtype=torch.float32).reshape(1, -1))
        if coin.random() < share:
            state = (
                initial_state(backend.consts, backend.device)
                if warm is None
                else advance(warm[1], t - warm[0] - 1)
            )
            action, _, _, nxt = backend.plan(z, state, backend.draw_noise(noise))
            warm, planned = (t, nxt), planned + 1
        else:
            action = backend.policy_action(z)
        obs, reward, terminated, truncated, _ = env.step(action.float().cpu().numpy())
        total, t = total + reward, t + 1
        done = terminated or truncated
    return total, t, planned / t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--samples", type=int, default=None, help="default: the bundle's")
    parser.add_argument("--iterations", type=int, default=None, help="default: the bundle's")
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if any(not 0.0 <= s <= 1.0 for s in args.shares) or args.episodes < 1:
        parser.error("--shares must be in [0, 1] and --episodes at least 1")

    torch.set_num_threads(args.threads)
    bundle = load_bundle(args.bundle)
    backend = build_backend(
        bundle, "torch", "cpu", samples=args.samples, iterations=args.iterations
    )
    c = backend.consts
    env = bundle_env(bundle, seed=args.first_seed)
    seeds = list(range(args.first_seed, args.first_seed + args.episodes))
    rows = []
    for share in args.shares:
        runs = [
            mixed_episode(backend, env, s, share)
            for s in tqdm(seeds, desc=f"share {share:g}", leave=False)
        ]
        r, n, p = (np.array(x) for x in zip(*runs, strict=True))
        rows.append(
            {
                "share": share,
                "planned": float(p.mean()),
                "return_mean": float(r.mean()),
                "return_std": float(r.std()),
                "length_mean": float(n.mean()),
                "length_std": float(n.std()),
                "full_episodes": int((n >= env.spec.episode_length).sum()),
                "returns": r.tolist(),
                "lengths": n.tolist(),
            }
        )
    env.close()
    print(f"{bundle.task_id}, {c.num_samples} samples x {c.iterations} iterations, seeds {seeds}")
    print("share  planned  return          length         full")
    for row in rows:
        print(
            f"{row['share']:5.2f}  {row['planned']:7.2f}  "
            f"{row['return_mean']:6.1f} ± {row['return_std']:5.1f}  "
            f"{row['length_mean']:6.1f} ± {row['length_std']:5.1f}  "
            f"{row['full_episodes']}/{args.episodes}"
        )
    if args.out is not None:
        meta = {
            "bundle": str(args.bundle),
            "task": bundle.task_id,
            "samples": c.num_samples,
            "iterations": c.iterations,
            "seeds": seeds,
            "machine": platform.processor() or platform.machine(),
        }
        args.out.write_text(json.dumps({**meta, "rows": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
