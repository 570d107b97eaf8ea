"""Humanoid-Bench over the bridge: step time of a Humanoid-Bench env in its own Python,
locally and served by the Gymnasium adapter to this process.

Needs a Python environment where ``humanoid_bench`` is importable (built with
``benchmarks/humanoid_bench_env.sh``, Humanoid-Bench installed into it by hand):

    python benchmarks/humanoid_bench_bridge.py --hb-python .hb-env/bin/python \\
        --out benchmarks/results/humanoid_bench_bridge.json

Both sides step the same env id with the same uniform random actions (an episode that
ends is reset, not timed) in rounds, local and bridge alternating, so load on this shared
machine hits both alike. ``local``: ``env.step`` in the Humanoid-Bench Python, no bridge.
``bridge``: ``RemoteEnv.step`` here, a lockstep round trip to the adapter, which steps the
same env. Reported per side: mean, p50, p99 in ms, over all rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sim_bridge.testing import ServerProcess

REPO = Path(__file__).resolve().parent.parent

_LOCAL = """
import json, sys, time
import gymnasium as gym, numpy as np
import humanoid_bench  # registers the envs
env_id, steps, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = gym.make(env_id, render_mode=None)
rng = np.random.default_rng(seed)
low, high = env.action_space.low, env.action_space.high
env.reset(seed=seed)
times = []
for i in range(steps):
    a = rng.uniform(low, high).astype(env.action_space.dtype)
    t = time.perf_counter()
    _, _, term, trunc, _ = env.step(a)
    times.append(time.perf_counter() - t)
    if term or trunc:
        env.reset()
print(json.dumps(times))
"""


def _stats(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {
        "steps": int(ms.size),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def local_round(hb_python: str, env_id: str, steps: int, seed: int) -> list[float]:
    """Step times (s) of ``steps`` local steps in the Humanoid-Bench Python."""
    env = {**os.environ, "PYTHONPATH": ""}
    out = subprocess.run(
        [hb_python, "-c", _LOCAL, env_id, str(steps), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bridge_round(endpoint: str, steps: int, seed: int) -> list[float]:
    """Step times (s) of ``steps`` lockstep steps through the bridge from this process."""
    import time

    from boom_control.envs import make_env

    env = make_env(f"zmq:{endpoint}", seed=seed)
    rng = np.random.default_rng(seed)
    times = []
    try:
        env.reset(seed=seed)
        for _ in range(steps):
            a = rng.uniform(-1.0, 1.0, env.spec.action_dim)
            t = time.perf_counter()
            _, _, term, trunc, _ = env.step(a)
            times.append(time.perf_counter() - t)
            if term or trunc:
                env.reset()
    finally:
        env.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hb-python", required=True, help="Python with humanoid_bench")
    parser.add_argument("--env", default="h1hand-walk-v0", help="Humanoid-Bench env id")
    parser.add_argument("--steps", type=int, default=1000, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()
    if not Path(args.hb_python).is_file():
        parser.error(f"--hb-python {args.hb_python}: no such file")
    local: list[float] = []
    bridge: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        endpoint = f"ipc://{tmp}/hb.sock"
        server = [
            "-m",
            "sim_bridge.gym_server",
            args.env,
            "--import",
            "humanoid_bench",
            "--bind",
            endpoint,
        ]
        adapter = ServerProcess(
            server, endpoint, timeout=180.0, env={"PYTHONPATH": str(REPO)}, python=args.hb_python
        )
        with adapter:
            for r in range(args.rounds):
                local += local_round(args.hb_python, args.env, args.steps, seed=r)
                bridge += bridge_round(endpoint, args.steps, seed=r)
                print(
                    f"round {r + 1}/{args.rounds}: local p50 "
                    f"{np.median(local) * 1e3:.2f} ms, bridge p50 {np.median(bridge) * 1e3:.2f} ms",
                    file=sys.stderr,
                )
    result = {
        "env": args.env,
        "rounds": args.rounds,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "local": _stats(local),
        "bridge": _stats(bridge),
    }
    result["overhead_ms"] = result["bridge"]["mean_ms"] - result["local"]["mean_ms"]
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
