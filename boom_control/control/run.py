"""``run_controller``: the one assembly of a bundle, a bridge client, a planner backend and
the loop; ``boom control``, the demo and the benchmarks all run a controller through it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from boom_control.bundle.load import load_bundle
from boom_control.control.config import ControlConfig
from boom_control.control.factory import build_backend
from boom_control.control.loop import Controller, stop_on_signals
from boom_control.envs.contract import ObservationContract
from boom_control.telemetry import TelemetryWriter
from sim_bridge.client import BridgeClient


def run_controller(
    bundle: str | Path,
    cfg: ControlConfig,
    status: IO[str] | None = None,
    announce: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``bundle`` against the bridge at ``cfg.connect`` until ``cfg.duration`` has passed,
    the server stops, or SIGINT/SIGTERM (a clean stop); returns the run's summary.

    The bundle's observation contract is checked against the server's before anything
    runs; the planner is warmed up before the first tick. ``status``: where the live
    status line goes (None: nowhere); ``announce``: receives the lines describing the run.

    Raises:
        BundleError: the bundle is invalid or does not observe what the server sends.
        BackendError: the backend cannot run on the device.
        sim_bridge.client.BridgeError: the server cannot be reached or refuses the client.
    """
    say = announce or (lambda _line: None)
    b = load_bundle(bundle)
    client = BridgeClient(cfg.connect, name="boom-control", take_over=cfg.take_over)
    try:
        info = client.connect()
        # Checked here (not only by the server) so the error names the differing entry.
        b.check_contract(
            ObservationContract.from_json(info.raw["contract"]),
            where=f"the server at {cfg.connect} ({info.task_id})",
        )
        t = time.monotonic()
        planner = build_backend(
            b,
            cfg.backend,
            cfg.device,
            threads=cfg.threads,
            bf16=cfg.bf16,
            samples=cfg.samples,
            iterations=cfg.iterations,
            whole_plan=cfg.whole_plan,
        )
        planner.warmup(b.obs_dim, plan=not cfg.policy_only)
        warmup_s = time.monotonic() - t
        say(f"boom control: {b.task_id} from {bundle} -> {cfg.connect} ({info.mode})")
        say(
            f"  backend {planner.describe()}"
            + (" (policy only)" if cfg.policy_only else "")
            + (" (latency-compensated)" if cfg.compensate else "")
        )
        say(f"  rate {cfg.rate:g} Hz, budget {cfg.budget_ms:g} ms, warm-up {warmup_s:.2f} s")
        header = {
            "bundle": str(bundle),
            "task": b.task_id,
            "backend": planner.name,
            "device": planner.device_used(),
            "rate": cfg.rate,
            "budget_ms": cfg.budget_ms,
            "bf16": cfg.bf16,
            "mode": info.mode,
            "policy_only": cfg.policy_only,
            "compensate": cfg.compensate,
            "planner": {
                "samples": planner.consts.num_samples,
                "iterations": planner.consts.iterations,
                "horizon": planner.consts.horizon,
            },
            "warmup_s": warmup_s,
        }
        writer = TelemetryWriter(cfg.telemetry, header) if cfg.telemetry else None
        loop = Controller(planner, client, cfg.loop(), writer, status=status)
        with stop_on_signals(loop.stop_event):  # Ctrl-C / SIGTERM: clean stop
            summary = loop.run()
    finally:
        client.close()
    summary["warmup_s"] = warmup_s
    return summary
