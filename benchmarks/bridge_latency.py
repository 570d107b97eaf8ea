"""Sim-bridge latency: request/reply round trips and lockstep steps per second.

Two measurements, servers in their own processes (spawned), client in this one:

* ``roundtrip``: lockstep ``step`` round trips against a backend that returns a fixed
  H1-sized observation (51 float32) for a 19-float action, so only the bridge is timed
  (pack, send, validate, reply, unpack); over loopback TCP and over IPC. p50/p99/p99.9.
* ``lockstep``: ``make_env("zmq:...")`` against ``boom sim TASK`` vs ``make_env(TASK)``
  in this process, interleaved in rounds; overhead = bridge time per step - local time.

Targets here: p99 round trip < 300 us; lockstep overhead < 0.3 ms a step.

    python benchmarks/bridge_latency.py --out benchmarks/results/bridge_latency.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sim_bridge.client import BridgeClient
from sim_bridge.protocol import contract_hash
from sim_bridge.testing import free_tcp_endpoint, wait_ready

OBS_DIM, ACTION_DIM = 51, 19


class FixedBackend:
    """Returns the same observation every step: the bridge's cost and nothing else."""

    def __init__(self) -> None:
        self.obs = np.linspace(-1, 1, OBS_DIM, dtype=np.float32)
        names = [f"x[{i}]" for i in range(OBS_DIM)]
        self.contract = {
            "version": 1,
            "fields": [{"key": "x", "size": OBS_DIM, "unit": "1", "names": names, "scale": 1.0}],
        }

    def describe(self) -> dict[str, Any]:
        return {
            "task_id": "bench:fixed",
            "obs_dim": OBS_DIM,
            "action_dim": ACTION_DIM,
            "control_period": 0.02,
            "episode_length": 10**9,
            "contract": self.contract,
            "contract_hash": contract_hash(self.contract),
        }

    def reset(self, seed: int | None) -> tuple[np.ndarray, dict]:
        return self.obs, {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.obs, 0.0, False, False, {}

    def neutral_action(self) -> np.ndarray:
        return np.zeros(ACTION_DIM)

    def estop(self) -> None:
        pass

    def close(self) -> None:
        pass


def _serve_fixed(endpoint: str, busy_poll: float) -> None:
    from sim_bridge.server import BridgeServer, ServerConfig

    BridgeServer(FixedBackend(), ServerConfig(endpoint=endpoint, busy_poll=busy_poll)).run()


def _serve_task(endpoint: str, busy_poll: float, task: str) -> None:
    from sim_bridge.server import ServerConfig
    from sim_bridge.sim_server import serve_task

    serve_task(task, ServerConfig(endpoint=endpoint, busy_poll=busy_poll), seed=0)


def _start(target: Any, *args: Any) -> mp.Process:
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    wait_ready(args[0], timeout=60.0)
    return proc


def roundtrip(endpoint: str, n: int, busy_poll: float = 0.0, spin: float = 0.0) -> dict[str, float]:
    proc = _start(_serve_fixed, endpoint, busy_poll)
    try:
        with BridgeClient(endpoint, timeout=5.0, spin=spin) as client:
            client.reset(0)
            action = np.zeros(ACTION_DIM)
            for _ in range(min(500, n)):  # warm-up
                client.step(action)
            times = np.empty(n)
            for i in range(n):
                t0 = time.perf_counter()
                client.step(action)
                times[i] = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.join(5)
    us = times * 1e6
    return {
        "n": n,
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "p99.9_us": float(np.percentile(us, 99.9)),
        "mean_us": float(us.mean()),
    }


def lockstep(
    task: str, endpoint: str, steps: int, rounds: int, busy_poll: float = 0.0, spin: float = 0.0
) -> dict[str, float]:
    from boom_control.envs.registry import make_env

    proc = _start(_serve_task, endpoint, busy_poll, task)
    remote = make_env(f"zmq:{endpoint}", seed=0, timeout=10.0, spin=spin)
    local = make_env(task, seed=0)
    try:
        rng = np.random.default_rng(0)
        actions = rng.uniform(-1, 1, (steps, local.spec.action_dim))
        spent = {"local": 0.0, "bridge": 0.0}
        for _ in range(rounds):
            for name, env in (("local", local), ("bridge", remote)):
                env.reset(seed=1)
                t0 = time.perf_counter()
                for a in actions:
                    if env.step(a)[2]:  # terminated (h1 falls): start over, untimed cost ok
                        env.reset()
                spent[name] += time.perf_counter() - t0
    finally:
        remote.close()
        local.close()
        proc.terminate()
        proc.join(5)
    total = steps * rounds
    per = {k: v / total for k, v in spent.items()}
    return {
        "task": task,
        "steps": total,
        "local_steps_per_s": 1 / per["local"],
        "bridge_steps_per_s": 1 / per["bridge"],
        "overhead_ms_per_step": (per["bridge"] - per["local"]) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="round trips per transport")
    parser.add_argument("--steps", type=int, default=500, help="lockstep steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    default_task = (
        "h1:walk" if importlib.util.find_spec("boom_control.envs.h1") else "dmc:cartpole-swingup"
    )
    parser.add_argument("--task", default=default_task)
    parser.add_argument(
        "--busy-poll",
        type=float,
        default=0.0,
        help="servers' ServerConfig.busy_poll in seconds (0: block, the default)",
    )
    parser.add_argument(
        "--spin",
        type=float,
        default=0.0,
        help="client's BridgeClient spin in seconds (0: block, the default)",
    )
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="pin the client and the servers to this one CPU (they hand over on one core; "
        "servers then turn busy_poll off)",
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    bp, spin = args.busy_poll, args.spin
    if args.cpu is not None:  # before any ZeroMQ context; spawned servers inherit it
        os.sched_setaffinity(0, {args.cpu})
    with tempfile.TemporaryDirectory() as tmp:
        rt = {
            "tcp": roundtrip(free_tcp_endpoint(), args.n, bp, spin),
            "ipc": roundtrip(f"ipc://{tmp}/bench.sock", args.n, bp, spin),
        }
        ls = lockstep(args.task, f"ipc://{tmp}/task.sock", args.steps, args.rounds, bp, spin)

    print(f"round trip, {OBS_DIM}-float observation / {ACTION_DIM}-float action (us)")
    print(f"{'transport':<10}{'p50':>9}{'p99':>9}{'p99.9':>9}{'mean':>9}")
    for name, r in rt.items():
        print(
            f"{name:<10}{r['p50_us']:>9.0f}{r['p99_us']:>9.0f}{r['p99.9_us']:>9.0f}"
            f"{r['mean_us']:>9.0f}"
        )
    print(
        f"\nlockstep {ls['task']} ({ls['steps']} steps each, ipc; "
        f"busy_poll {bp:g} s, spin {spin:g} s, cpu {args.cpu})"
    )
    print(f"{'local steps/s':<24}{ls['local_steps_per_s']:>10.0f}")
    print(f"{'bridge steps/s':<24}{ls['bridge_steps_per_s']:>10.0f}")
    print(f"{'overhead ms/step':<24}{ls['overhead_ms_per_step']:>10.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "roundtrip": rt,
            "lockstep": ls,
            "busy_poll_s": bp,
            "spin_s": spin,
            "cpu": args.cpu,
            "machine": platform.platform(),
            "python": platform.python_version(),
        }
        args.out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
