"""``boom demo``: the whole pipeline in one command, what ``make demo`` runs.

The shipped controller of the task (``boom_control/bundles``), or with ``--train`` a small
fresh run exported to a bundle -> on CPU, ``boom profile --budget-ms`` fits the planner
size to the budget -> ``boom sim`` in real time -> ``boom control`` at 50 Hz with MPPI
under a deadline and the policy fallback -> ``boom profile report`` of the telemetry ->
an image strip and video of the policy (``boom eval --strip --video``). Every stage is
the real command, run as its own process, so the output is exactly what a user sees
running them by hand; the sim server is always shut down, also on errors and Ctrl-C.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import click

from boom_control.cli.params import backend_option


def _boom(*args: str) -> list[str]:
    return [sys.executable, "-m", "boom_control", *args]


def _run(step: str, cmd: list[str], required: bool = True) -> bool:
    click.secho(f"\n== {step}: {' '.join(cmd[2:])}", bold=True, err=True)
    code = subprocess.call(cmd)
    if code != 0 and required:
        raise click.ClickException(f"{step} failed (exit code {code})")
    if code != 0:
        click.secho(f"{step} failed (exit code {code}); going on without it", fg="yellow", err=True)
    return code == 0


def _control(
    bundle: Path,
    endpoint: str,
    rate: float,
    budget_ms: float,
    seconds: float,
    device: str,
    backend: str,
    telemetry: Path,
    fitted: Path | None,
) -> None:
    """Run the controller in this process (the fitted planner size, when there is one)."""
    from boom_control.control.config import PRESET, load_control_config
    from boom_control.control.report import format_summary
    from boom_control.control.run import run_controller

    settings = {
        "connect": endpoint,
        "rate": rate,
        "budget_ms": budget_ms,
        "duration": seconds,
        "device": device,
        "backend": backend,
        "telemetry": str(telemetry),
    }
    cfg = load_control_config(settings, [PRESET, *([fitted] if fitted else [])])
    using = f" with {fitted}" if fitted else ""
    click.secho(f"\n== control: {bundle} -> {endpoint}{using}", bold=True, err=True)
    summary = run_controller(
        bundle, cfg, status=sys.stderr, announce=lambda line: click.echo(line, err=True)
    )
    click.echo(f"boom control: stopped ({summary['stop_reason']})", err=True)
    click.echo(format_summary(summary))


def _shipped_for(task: str) -> Path | None:
    """The shipped bundle of ``task`` (``h1:stand`` -> ``h1-stand``), if there is one."""
    from boom_control.bundles import shipped

    return shipped().get(task.replace(":", "-"))


def _uses_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    import torch

    return device.startswith("cuda") or torch.cuda.is_available()


FIT_MARGIN = 0.65
"""The demo fits plans whose sweep p99 stays under this fraction of the budget. The sweep
runs alone; in the demo the sim server, the loop's own work (encode, policy, the plan's
start) and the planning thread share the CPU: a 32 x 1 setting at p99 9.5 ms in the sweep
(0.8 x 12 ms fits it) planned in 10.3 ms in the loop, where the anytime planner then
started no iteration on 70% of the ticks."""


def _fit_budget(
    bundle: Path, out: Path, budget_ms: float, backend: str, seconds: float
) -> Path | None:
    """Sweep small planner settings on this CPU: the fitted YAML (p99 within
    :data:`FIT_MARGIN` of the budget); when none fits, a config with the quickest setting
    (see :func:`_quickest_config`)."""
    folder = out / "profile"
    _run(
        "fit the planner to the budget",
        _boom(
            "profile",
            "bundle",
            str(bundle),
            "--device",
            "cpu",
            "--backend",
            backend,
            "--samples",
            "16,32,64,128,256",
            "--iterations",
            "1,2,3,4",
            "--precision",
            "fp32",
            "--threads",
            "1",
            "--max-seconds",
            f"{seconds:g}",
            "--budget-ms",
            f"{budget_ms:g}",
            "--margin",
            f"{FIT_MARGIN:g}",
            "--no-plots",
            "--out",
            str(folder),
        ),
    )
    fitted = folder / f"fitted_{budget_ms:g}ms.yaml"
    if fitted.is_file():
        return fitted
    return _quickest_config(folder, budget_ms, backend)


def _quickest_config(folder: Path, budget_ms: float, backend: str) -> Path | None:
    """When no setting fits the budget at p99: a control config with the quickest measured
    setting (least median plan) of ``folder/profile.json``, or None without measurements.

    Even when its median misses the budget this beats the bundle's full planner size:
    the anytime planner then completes a plan on the quicker ticks instead of none.
    """
    quickest = _quickest(folder / "profile.json")
    if quickest is None:
        click.secho(
            "the planner could not be profiled on this CPU: the controller will send the "
            "policy's action whenever the plan is late",
            fg="yellow",
            err=True,
        )
        return None
    samples, iterations, p50 = quickest
    in_time = p50 < budget_ms
    if in_time:
        why = (
            f"no planner setting fits {budget_ms:g} ms at p99 on this CPU; controlling with the "
            f"quickest, {samples} samples x {iterations} iterations (plan p50 {p50:.1f} ms): "
            "MPPI on the ticks where it is in time, the policy's action on the others"
        )
    else:
        why = (
            f"no planner setting plans within {budget_ms:g} ms even at the median on this CPU; "
            f"controlling with the quickest, {samples} samples x {iterations} iterations (plan "
            f"p50 {p50:.1f} ms): the policy's action whenever the plan is late (most ticks)"
        )
    click.secho(why, fg="yellow", err=True)
    from boom_control.profile.budget import write_control_config

    settings = {
        "samples": samples,
        "iterations": iterations,
        "budget_ms": budget_ms,
        "backend": backend,
        "device": "cpu",
        "threads": 1,
    }
    over = "" if in_time else ", over the budget too"
    return write_control_config(
        settings,
        folder / f"quickest_{budget_ms:g}ms.yaml",
        f"the quickest measured setting (plan p50 {p50:.2f} ms{over}); none fits the budget at p99",
    )


def _quickest(profile: Path) -> tuple[int, int, float] | None:
    """``(samples, iterations, plan p50 ms)`` of the fp32 setting in ``profile.json`` with
    the least median plan, or None when there is no such measurement."""
    import json

    if not profile.is_file():
        return None
    cells = json.loads(profile.read_text()).get("cells", [])
    timed = [
        (c["stages"]["plan"]["p50"], c["samples"], c["iterations"])
        for c in cells
        if c.get("precision", "fp32") == "fp32" and "plan" in c.get("stages", {})
    ]
    if not timed:
        return None
    p50, samples, iterations = min(timed)
    return samples, iterations, p50


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
    help="Control this bundle [default: the task's shipped bundle].",
)
@click.option(
    "--train",
    is_flag=True,
    help="Train a small fresh run and export it instead of using a shipped bundle "
    "(the default when the task has none).",
)
@click.option(
    "--train-steps", default=1500, show_default=True, help="Agent steps of the --train run."
)
@click.option("--seconds", default=20.0, show_default=True, help="Seconds of real-time control.")
@click.option(
    "--rate",
    type=float,
    default=None,
    help="Control rate (Hz) [default: the task's own, 50 Hz on the H1 tasks].",
)
@click.option("--budget-ms", default=12.0, show_default=True, help="Planning budget per tick.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@backend_option(
    None,
    "Planner runtime of boom control (and of the fit) [default: onnx on CPU, cudagraph on CUDA].",
)
@click.option(
    "--fit/--no-fit",
    default=True,
    show_default=True,
    help="On CPU, fit samples x iterations to the budget with `boom profile` first.",
)
@click.option(
    "--fit-seconds", default=40.0, show_default=True, help="Time cap of the fitting sweep."
)
@click.option(
    "--render/--no-render",
    default=True,
    show_default=True,
    help="Write an image strip and a video of the policy (needs offscreen OpenGL).",
)
@click.option("--port", default=5599, show_default=True, help="Loopback port of the sim server.")
def demo(
    task: str,
    out: Path,
    bundle: Path | None,
    train: bool,
    train_steps: int,
    seconds: float,
    rate: float | None,
    budget_ms: float,
    device: str,
    backend: str | None,
    fit: bool,
    fit_seconds: float,
    render: bool,
    port: int,
) -> None:
    """Shipped (or freshly trained) controller -> simulate -> control at the task's rate
    (50 Hz on H1) -> latency report and pictures, end to end."""
    import logging

    from sim_bridge.testing import wait_ready

    if bundle is not None and train:
        raise click.UsageError("--bundle and --train exclude each other")
    out.mkdir(parents=True, exist_ok=True)
    if bundle is None and not train:
        bundle = _shipped_for(task)
        if bundle is not None:
            click.echo(f"using the shipped controller {bundle}", err=True)
        else:
            click.echo(f"no shipped controller for {task}: training a small one", err=True)
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
    if rate is None:
        from boom_control.bundle.load import load_bundle

        rate = load_bundle(bundle).info.task.control_rate
    cuda = _uses_cuda(device)
    # at the small batches that fit a CPU budget the fused ONNX graph has the least overhead;
    # on a GPU eager PyTorch is bound by kernel launches (an H200 ran ~4 ms per MPPI iteration
    # of the 1M model eagerly, ~0.8 ms replayed from a CUDA graph: BENCHMARKS.md)
    backend = backend or ("cudagraph" if cuda else "onnx")
    fitted = None
    if fit and not cuda:
        fitted = _fit_budget(bundle, out, budget_ms, backend, fit_seconds)
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
        _control(bundle, endpoint, rate, budget_ms, seconds, device, backend, telemetry, fitted)
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
    _run("report", _boom("profile", "report", str(telemetry), "--out", str(out / "report")))
    pictures = ""
    if render:
        args = ["--policy-only", "--episodes", "1", "--max-steps", "500", "--device", "cpu"]
        if _run(
            "pictures",
            _boom(
                "eval",
                str(bundle),
                *args,
                "--strip",
                str(out / "strip.png"),
                "--video",
                str(out / "policy.mp4"),
            ),
            required=False,
        ):
            pictures = ", strip.png, policy.mp4"
    click.echo(f"\ndemo outputs in {out}/ (control.jsonl, report/{pictures})", err=True)
