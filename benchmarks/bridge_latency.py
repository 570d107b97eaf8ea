"""Sim-bridge latency: request/reply round trips and lockstep steps per second.

Two measurements, servers in their own processes (spawned), client in this one:

* ``roundtrip``: lockstep ``step`` round trips against a backend that returns a fixed
  H1-sized observation (51 float32) for a 19-float action, so only the bridge is timed
  (pack, send, validate, reply, unpack); over loopback TCP and over IPC. p50/p99/p99.9.
  Next to each, the same bytes through a bare pyzmq echo (a ROUTER process that sends a
  prepared observation message back, no decoding): ZeroMQ's and this machine's own floor,
  measured in the same run.
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

from sim_bridge import protocol as P
from sim_bridge.client import BridgeClient
from sim_bridge.protocol import Codec, contract_hash
from sim_bridge.server import BUSY_POLL_DEFAULT
from sim_bridge.testing import free_tcp_endpoint, wait_ready

OBS_DIM, ACTION_DIM = 51, 19
P99_TARGET_US, OVERHEAD_TARGET_MS = 300.0, 0.3


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
    from boom_control.sim.backend import serve_task
    from sim_bridge.server import ServerConfig

    serve_task(task, ServerConfig(endpoint=endpoint, busy_poll=busy_poll), seed=0)


def _start(target: Any, *args: Any) -> mp.Process:
    proc = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    wait_ready(args[0], timeout=60.0)
    return proc


def _echo_messages() -> tuple[bytes, bytes]:
    """A packed ``step`` request and ``observation`` reply of the sizes the bridge sends."""
    codec = Codec()
    request = codec.encode(P.STEP, 1, action=np.zeros(ACTION_DIM))
    obs = FixedBackend().obs
    reply = codec.encode(
        P.OBSERVATION, 1, re=1, sid=2**61, obs=obs, reward=0.0, terminated=False, truncated=False
    )
    return request, reply


def _serve_echo(endpoint: str) -> None:
    """Bare ZeroMQ: answer every request with the prepared reply (no decoding)."""
    import zmq

    reply = _echo_messages()[1]
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(endpoint)
    while True:
        frames = sock.recv_multipart()
        sock.send_multipart([frames[0], reply])


def _echo_ready(endpoint: str, timeout: float) -> None:
    """Wait until the echo server answers (it speaks no handshake)."""
    import zmq

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send(b"ping")
        if not sock.poll(int(timeout * 1e3)):
            raise RuntimeError(f"echo server at {endpoint} did not answer in {timeout:.0f} s")
        sock.recv()
    finally:
        sock.close()


def _percentiles(times: np.ndarray) -> dict[str, float]:
    us = times * 1e6
    return {
        "n": len(us),
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "p99.9_us": float(np.percentile(us, 99.9)),
        "mean_us": float(us.mean()),
    }


def raw_roundtrip(endpoint: str, n: int) -> dict[str, float]:
    """Round trips of the bridge's message bytes through a bare pyzmq echo server."""
    import zmq

    proc = mp.get_context("spawn").Process(target=_serve_echo, args=(endpoint,), daemon=True)
    proc.start()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        _echo_ready(endpoint, timeout=60.0)
        sock.connect(endpoint)
        request = _echo_messages()[0]
        for _ in range(min(500, n)):  # warm-up
            sock.send(request)
            sock.recv()
        times = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            sock.send(request)
            sock.recv()
            times[i] = time.perf_counter() - t0
    finally:
        sock.close()
        proc.terminate()
        proc.join(5)
    return _percentiles(times)


def roundtrip(
    endpoint: str, n: int, busy_poll: float = BUSY_POLL_DEFAULT, spin: float = 0.0
) -> dict[str, float]:
    """Lockstep ``step`` round trips through the bridge (client and server)."""
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
    return _percentiles(times)


def lockstep(
    task: str,
    endpoint: str,
    steps: int,
    rounds: int,
    busy_poll: float = BUSY_POLL_DEFAULT,
    spin: float = 0.0,
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
        default=BUSY_POLL_DEFAULT,
        help="servers' ServerConfig.busy_poll in seconds, as `boom sim --busy-poll` "
        f"(default {BUSY_POLL_DEFAULT:g}; 0: block)",
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
    parser.add_argument(
        "--repeat", type=int, default=1, help="whole runs, with min-max ranges at the end"
    )
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()
    if args.repeat < 1 or args.n < 1:
        parser.error("--repeat and --n must be at least 1")

    bp, spin = args.busy_poll, args.spin
    if args.cpu is not None:  # before any ZeroMQ context; spawned servers inherit it
        os.sched_setaffinity(0, {args.cpu})
    runs = []
    for k in range(args.repeat):
        if args.repeat > 1:
            print(f"\n== run {k + 1} of {args.repeat}")
        runs.append(measure(args))
        _print_run(runs[-1], args)
    if args.repeat > 1:
        _print_ranges(runs)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            **runs[-1],
            "runs": runs,
            "busy_poll_s": bp,
            "spin_s": spin,
            "cpu": args.cpu,
            "machine": platform.platform(),
            "python": platform.python_version(),
        }
        args.out.write_text(json.dumps(result, indent=2))
        print(f"\nwrote {args.out}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """One run: round trips over every transport, then the lockstep comparison."""
    bp, spin = args.busy_poll, args.spin
    with tempfile.TemporaryDirectory() as tmp:
        rt = {
            "tcp": roundtrip(free_tcp_endpoint(), args.n, bp, spin),
            "tcp zmq echo": raw_roundtrip(free_tcp_endpoint(), args.n),
            "ipc": roundtrip(f"ipc://{tmp}/bench.sock", args.n, bp, spin),
            "ipc zmq echo": raw_roundtrip(f"ipc://{tmp}/echo.sock", args.n),
        }
        ls = lockstep(args.task, f"ipc://{tmp}/task.sock", args.steps, args.rounds, bp, spin)
    return {"roundtrip": rt, "lockstep": ls}


def _print_run(run: dict[str, Any], args: argparse.Namespace) -> None:
    rt, ls = run["roundtrip"], run["lockstep"]
    print(f"round trip, {OBS_DIM}-float observation / {ACTION_DIM}-float action (us)")
    print(f"{'transport':<14}{'p50':>9}{'p99':>9}{'p99.9':>9}{'mean':>9}")
    for name, r in rt.items():
        print(
            f"{name:<14}{r['p50_us']:>9.0f}{r['p99_us']:>9.0f}{r['p99.9_us']:>9.0f}"
            f"{r['mean_us']:>9.0f}"
        )
    print(
        f"\nlockstep {ls['task']} ({ls['steps']} steps each, ipc; "
        f"busy_poll {args.busy_poll:g} s, spin {args.spin:g} s, cpu {args.cpu})"
    )
    print(f"{'local steps/s':<24}{ls['local_steps_per_s']:>10.0f}")
    print(f"{'bridge steps/s':<24}{ls['bridge_steps_per_s']:>10.0f}")
    print(f"{'overhead ms/step':<24}{ls['overhead_ms_per_step']:>10.3f}")


def _print_ranges(runs: list[dict[str, Any]]) -> None:
    """Min-max over the runs, and how many met the targets."""
    print(
        f"\n== {len(runs)} runs: min-max (targets: p99 < {P99_TARGET_US:g} us, "
        f"overhead < {OVERHEAD_TARGET_MS:g} ms)"
    )
    for name in runs[0]["roundtrip"]:
        p50 = [r["roundtrip"][name]["p50_us"] for r in runs]
        p99 = [r["roundtrip"][name]["p99_us"] for r in runs]
        met = sum(v < P99_TARGET_US for v in p99)
        print(
            f"{name:<14} p50 {min(p50):.0f}-{max(p50):.0f}  p99 {min(p99):.0f}-{max(p99):.0f}"
            f"  (p99 target met {met}/{len(runs)})"
        )
    over = [r["lockstep"]["overhead_ms_per_step"] for r in runs]
    met = sum(v < OVERHEAD_TARGET_MS for v in over)
    print(f"{'overhead ms':<14} {min(over):.3f}-{max(over):.3f}  (target met {met}/{len(runs)})")


if __name__ == "__main__":
    main()
