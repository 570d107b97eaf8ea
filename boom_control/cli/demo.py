"""``boom demo``: the whole pipeline in one command, what ``make demo`` runs.

train (a small run, skipped when it exists) -> export (bundle + parity) -> ``boom sim`` in
real time -> ``boom control`` at 50 Hz with MPPI under a deadline and the policy fallback
-> ``boom profile report`` of the run's telemetry. Every stage is the real command, run as
its own process, so the output is exactly what a user sees running them by hand; the sim
server is always shut down, also on errors and Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click


def _boom(*args: str) -> list[str]:
    return [sys.executable, "-m", "boom_control", *args]


def _run(step: str, cmd: list[str]) -> None:
    click.secho(f"\n== {step}: {' '.join(cmd[2:])}", bold=True, err=True)
    code = subprocess.call(cmd)
    if code != 0:
        raise click.ClickException(f"{step} failed (exit code {code})")


@click.command()
@click.option("--task", default="h1:stand", show_default=True, help="Task to train and control.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/demo"),
    show_default=True,
    help="Folder for the run, bundle, telemetry and report.",
)
@click.option(
    "--bundle",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Control this bundle instead of training and exporting one.",
)
@click.option(
    "--train-steps", default=1500, show_default=True, help="Agent steps of the small training run."
)
@click.option("--seconds", default=20.0, show_default=True, help="Seconds of real-time control.")
@click.option("--rate", default=50.0, show_default=True, help="Control rate (Hz).")
@click.option("--budget-ms", default=12.0, show_default=True, help="Planning budget per tick.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@click.option("--port", default=5599, show_default=True, help="Loopback port of the sim server.")
def demo(
    task: str,
    out: Path,
    bundle: Path | None,
    train_steps: int,
    seconds: float,
    rate: float,
    budget_ms: float,
    device: str,
    port: int,
) -> None:
    """Train -> export -> simulate -> control at 50 Hz -> latency report, end to end."""
    import logging

    from sim_bridge.testing import wait_ready

    out.mkdir(parents=True, exist_ok=True)
    if bundle is None:
        run = out / "run"
        if not (run / "checkpoints" / "latest.pt").is_file():
            _run(
                "train",
                _boom(
                    "train",
                    "--preset",
                    "train_smoke",
                    f"task={task}",
                    f"steps={train_steps}",
                    f"eval_freq={train_steps}",
                    f"checkpoint_every={train_steps}",
                    f"device={device}",
                    f"run_dir={run}",
                ),
            )
        else:
            click.echo(f"using the existing run {run}", err=True)
        bundle = out / "bundle"
        _run("export", _boom("export", str(run), "--out", str(bundle), "--overwrite"))
    endpoint = f"tcp://127.0.0.1:{port}"
    telemetry = out / "control.jsonl"
    click.secho(f"\n== sim: {task} in real time on {endpoint}", bold=True, err=True)
    sim = subprocess.Popen(_boom("sim", task, "--bind", endpoint, "--mode", "realtime"))
    quiet = logging.getLogger("sim_bridge.client")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no retry chatter while the server starts
    try:
        deadline = time.monotonic() + 60
        while True:
            if sim.poll() is not None:
                raise click.ClickException(f"boom sim exited with {sim.returncode}")
            try:
                wait_ready(endpoint, timeout=1.0)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise click.ClickException("boom sim did not come up within 60 s") from None
        quiet.setLevel(level)
        _run(
            "control",
            _boom(
                "control",
                str(bundle),
                "--connect",
                endpoint,
                "--rate",
                f"{rate:g}",
                "--budget-ms",
                f"{budget_ms:g}",
                "--duration",
                f"{seconds:g}",
                "--device",
                device,
                "--telemetry",
                str(telemetry),
            ),
        )
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
    _run("report", _boom("profile", "report", str(telemetry), "--out", str(out / "report")))
    click.echo(f"\ndemo outputs in {out}/ (bundle, control.jsonl, report/)", err=True)
