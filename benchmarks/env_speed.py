"""Control steps per second of our envs next to the raw simulator, measured in one run.

For each task three rates, interleaved in rounds so machine noise hits all of them alike:

* ``physics``: bare ``mujoco.mj_step`` calls, ``substeps`` per agent step (the floor);
* ``raw``: the simulator's own step API for one agent step (dm_control's
  ``Environment.step`` x action repeat; for H1, mj_step x substeps plus reading
  qpos/qvel, which is all a raw MuJoCo loop does);
* ``ours``: ``make_env(...).step``: validation, clipping, observation contract, reward.

Overhead = ours / raw - 1 (target: under 10%).

    python benchmarks/env_speed.py --steps 2000 --out benchmarks/results/env_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np

from boom_control.envs import make_env

TASKS = ("dmc:humanoid-walk", "dmc:dog-run", "h1:walk")


def _rate(step: Callable[[np.ndarray], object], actions: np.ndarray) -> float:
    t0 = time.perf_counter()
    for a in actions:
        step(a)
    return len(actions) / (time.perf_counter() - t0)


def _handles(env) -> tuple[Callable, Callable, Callable]:
    """(ours, raw, physics) step functions for one agent step of ``env``."""
    spec = env.spec
    if spec.task_id.startswith("dmc:"):
        raw_env, physics = env.raw_env, env.physics
        repeat = round(spec.control_period / raw_env.control_timestep())
        scale = np.asarray(spec.action_mapping.scale)
        offset = np.asarray(spec.action_mapping.offset)

        def raw(a: np.ndarray) -> None:
            for _ in range(repeat):
                raw_env.step(offset + scale * a)

        model, data = physics.model.ptr, physics.data.ptr
    else:
        model, data = env.model, env.data

        def raw(a: np.ndarray) -> None:
            data.ctrl[:] = a
            for _ in range(spec.substeps):
                mujoco.mj_step(model, data)
            np.concatenate([data.qpos, data.qvel]).astype(np.float32)

    def physics_only(a: np.ndarray) -> None:
        for _ in range(spec.substeps):
            mujoco.mj_step(model, data)

    def ours(a: np.ndarray) -> None:
        *_, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()

    return ours, raw, physics_only


def measure(task_id: str, steps: int, rounds: int, seed: int = 0) -> dict:
    env = make_env(task_id, seed=seed)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    # Small actions keep the robots near their reset state for the whole run.
    actions = rng.uniform(-0.1, 0.1, (steps, env.spec.action_dim))
    fns = dict(zip(("ours", "raw", "physics"), _handles(env)))
    rates: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():  # warm-up
        _rate(fn, actions[:50])
    for _ in range(rounds):
        for name, fn in fns.items():
            env.reset(seed=seed)
            rates[name].append(_rate(fn, actions))
    best = {k: max(v) for k, v in rates.items()}
    return {
        "task": task_id,
        "substeps": env.spec.substeps,
        "ours_steps_per_s": best["ours"],
        "raw_steps_per_s": best["raw"],
        "physics_steps_per_s": best["physics"],
        "overhead_vs_raw": best["raw"] / best["ours"] - 1.0,
        "ms_per_step": 1000.0 / best["ours"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--steps", type=int, default=2000, help="agent steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (best kept)")
    parser.add_argument("--out", type=Path, default=None, help="write JSON here")
    args = parser.parse_args()

    rows = [measure(t, args.steps, args.rounds) for t in args.tasks]
    head = ("task", "ours/s", "raw/s", "physics/s", "overhead", "ms/step")
    print(f"{head[0]:22} {head[1]:>9} {head[2]:>9} {head[3]:>10} {head[4]:>9} {head[5]:>8}")
    for r in rows:
        print(
            f"{r['task']:22} {r['ours_steps_per_s']:9.0f} {r['raw_steps_per_s']:9.0f} "
            f"{r['physics_steps_per_s']:10.0f} {100 * r['overhead_vs_raw']:8.1f}% "
            f"{r['ms_per_step']:8.3f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": platform.processor() or platform.machine(),
            "steps": args.steps,
            "rounds": args.rounds,
            "mujoco": mujoco.__version__,
        }
        args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
