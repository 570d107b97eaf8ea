"""A real-time bridge server under hostile traffic: does it keep time, serve, and stay small?

``boom sim h1:stand --mode realtime`` runs in its own process. A good controller in this
process takes the control lease, acts on every observation and sends a heartbeat every
tenth tick, while a flood process (200 connections, 4000 messages/s in all unless told
otherwise) sends one hostile class at a time: valid hellos, random bytes, decode bombs
(3 KB of nested ``array16(65535)`` headers), crash inputs (a ``type`` that is a list) and
40-frame messages of the largest frame (at 40 messages/s: 100 MB/s). A quiet phase runs
first, in the same run, for comparison.

Per class: tick punctuality from the server's own counters (ticks started within 1 ms of
their deadline, the latest start, overruns), the gaps between observations at the
controller, heartbeat round trips of the good client, and the server's resident memory
(before, peak, after). Target: >= 99% of ticks within 1 ms under every flood, memory
growth <= 50 MiB.

    python benchmarks/bridge_hostile.py --out benchmarks/results/bridge_hostile.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from sim_bridge.client import BridgeClient
from sim_bridge.protocol import REQUEST_LIMITS, Codec, ProtocolError
from sim_bridge.testing import FLOODS, ServerProcess, flooding

PUNCTUAL_TARGET, RSS_TARGET_MIB = 0.99, 50.0


def _watch_rss(server: ServerProcess, stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(0.1):
        peak[0] = max(peak[0], server.rss_mib())


def _phase(server: ServerProcess, ctl: BridgeClient, seconds: float) -> dict:
    """Control for ``seconds``; the figures of this phase."""
    before = ctl.heartbeat()["stats"]
    rss_before = server.rss_mib()
    peak, stop = [rss_before], threading.Event()
    watcher = threading.Thread(target=_watch_rss, args=(server, stop, peak), daemon=True)
    watcher.start()
    ob = ctl.latest_observation() or ctl.reset(seed=0, take_over=True)
    zeros = np.zeros(ctl.info.action_dim)
    gaps, rtts, k = [], [], 0
    last_t, last_seq = time.monotonic(), ob.seq
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctl.send_action(zeros, ob.control_episode)
        new = ctl.latest_observation(timeout=0.1)
        now = time.monotonic()
        if new is not None and new.seq != last_seq:
            gaps.append(now - last_t)
            ob, last_t, last_seq = new, now, new.seq
            k += 1
            if k % 10 == 0:
                t = time.perf_counter()
                ctl.heartbeat()
                rtts.append(time.perf_counter() - t)
    after = ctl.heartbeat()["stats"]
    stop.set()
    watcher.join()
    ticks = after["ticks"] - before["ticks"]
    slips = after["slips"] - before["slips"]
    ms = np.asarray(gaps) * 1e3
    rtt = np.asarray(rtts) * 1e3 if rtts else np.asarray([np.nan])
    return {
        "ticks": ticks,
        "punctual": 1.0 - slips / max(ticks, 1),
        "slips_over_1ms": slips,
        "max_slip_ms_so_far": after["max_slip_ms"],
        "overruns": after["overruns"] - before["overruns"],
        "dropped": after["dropped"] - before["dropped"],
        "busy": after["busy"] - before["busy"],
        "faults": after["faults"] - before["faults"],
        "obs_gap_ms": {
            "p50": float(np.percentile(ms, 50)) if len(ms) else None,
            "p99": float(np.percentile(ms, 99)) if len(ms) else None,
            "max": float(ms.max()) if len(ms) else None,
        },
        "heartbeat_rtt_ms": {
            "p50": float(np.nanpercentile(rtt, 50)),
            "p99": float(np.nanpercentile(rtt, 99)),
        },
        "rss_mib": {"before": rss_before, "peak": peak[0], "after": server.rss_mib()},
    }


def decode_costs(repeat: int = 50) -> dict[str, float]:
    """Milliseconds to decode (or refuse) worst-case request frames of 64 KiB, best of
    ``repeat``: what one hostile frame can cost a server at most."""
    codec = Codec(limits=REQUEST_LIMITS)
    n = REQUEST_LIMITS.max_bytes
    frames = {
        "nested_lists": b"\xdc\x00\x10" * 1000 + b"\xc0" * (n - 3000),
        "wide_lists": b"\xdc\x00\x10" + (b"\xdc\x00\x10" + (b"\x9f" + b"\xc0" * 15) * 16) * 16,
        "array16_bombs": b"\xdc\xff\xff" * (n // 3),
        "fixarray_depth": b"\x9f" * n,
        "random": os.urandom(n),
        "max_strings": b"\xdc\x00\x10" + (b"\xd9\xff" + b"a" * 255) * 16,
    }
    costs = {}
    for name, frame in frames.items():
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            with contextlib.suppress(ProtocolError):
                codec.decode(frame)
            best = min(best, time.perf_counter() - t)
        costs[name] = best * 1e3
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="h1:stand")
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=4000.0, help="flood messages/s in all")
    parser.add_argument("--floods", nargs="*", default=list(FLOODS), choices=FLOODS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    costs = decode_costs()
    print(
        "decode, worst-case 64 KiB frames (ms):",
        json.dumps({k: round(v, 3) for k, v in costs.items()}),
    )
    tmp = Path(tempfile.mkdtemp(prefix="bridge-hostile-"))
    endpoint = f"ipc://{tmp}/sim.sock"
    cmd = ["-m", "boom_control", "sim", args.task, "--bind", endpoint, "--mode", "realtime"]
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "task": args.task,
        "clients": args.clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "decode_ms": costs,
        "phases": {},
    }
    with (
        ServerProcess(cmd, endpoint) as server,
        BridgeClient(endpoint, mode="realtime", timeout=5.0, name="good-controller") as ctl,
    ):
        ctl.reset(seed=0, take_over=True)
        for phase in ["quiet", *args.floods]:
            if phase == "quiet":
                res = _phase(server, ctl, args.seconds)
            else:
                rate = 40.0 if phase == "multipart" else args.rate
                with flooding(endpoint, phase, clients=args.clients, rate=rate):
                    res = _phase(server, ctl, args.seconds)
                res["flood_rate"] = rate
            res["alive"] = server.alive()
            results["phases"][phase] = res
            rss = res["rss_mib"]
            print(
                f"{phase:10s} ticks {res['ticks']:5d}  within 1 ms {100 * res['punctual']:6.2f}%"
                f"  overruns {res['overruns']:3d}  obs gap p99 {res['obs_gap_ms']['p99']:6.1f}"
                f" max {res['obs_gap_ms']['max']:6.1f} ms  heartbeat p50/p99"
                f" {res['heartbeat_rtt_ms']['p50']:.2f}/{res['heartbeat_rtt_ms']['p99']:.2f} ms"
                f"  RSS {rss['before']:.0f} -> peak {rss['peak']:.0f} -> {rss['after']:.0f} MiB",
                flush=True,
            )
    floods = [results["phases"][f] for f in args.floods]
    results["targets_met"] = all(
        r["alive"]
        and r["punctual"] >= PUNCTUAL_TARGET
        and r["rss_mib"]["peak"] - r["rss_mib"]["before"] <= RSS_TARGET_MIB
        for r in floods
    )
    print("targets met" if results["targets_met"] else "targets NOT met")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
