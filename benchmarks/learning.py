"""Learning benchmark: BOOM, and the lambda = 0 (TD-MPC2 policy objective) baseline,
against TD-MPC2's published returns at the same environment steps.

Jobs (task x variant x seed) each train in their own run folder under ``--runs``. A
job that is not finished resumes exactly where it stopped, so the benchmark runs in
parts: ``--minutes`` caps one invocation (the running job stops with a checkpoint via
``time_limit_minutes``) and the next invocation goes on. Then every run is summarised:
agent and env steps reached, wall time, final and max evaluation return of the planner
and of the policy alone, TD-MPC2's mean at the same env steps and the target (90% of
TD-MPC2's mean at 100k env steps), plus one learning-curve figure per task.

    python benchmarks/learning.py --minutes 170          # train as far as 170 min go
    python benchmarks/learning.py --summary-only --out benchmarks/results/learning.json
    python benchmarks/learning.py --jobs dmc:walker-walk:boom --steps 50000 --device cuda

A job is ``TASK:VARIANT`` with VARIANT ``boom`` or ``lambda0``. Defaults: BOOM on
cartpole-swingup and walker-walk and the baseline on cartpole-swingup, 50k agent steps
(100k env steps at action repeat 2), the 1M model, the paper's planner, seed 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from boom_control.logs import setup_logging
from boom_control.train.config import load_train_config
from boom_control.train.plot import read_eval

JOBS = ("dmc:cartpole-swingup:boom", "dmc:walker-walk:boom", "dmc:cartpole-swingup:lambda0")
VARIANTS = {"boom": [], "lambda0": ["agent.align_lambda=0"]}
TDMPC2_100K = {"cartpole-swingup": 839.0, "walker-walk": 962.0}
"""TD-MPC2's mean return at 100k env steps (3 seeds, the published curves)."""
TARGET_FRACTION = 0.9
DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/tdmpc2_dmc_curves.csv"


def parse_job(job: str) -> tuple[str, str]:
    task, _, variant = job.rpartition(":")
    if variant not in VARIANTS or not task.startswith("dmc:"):
        raise SystemExit(f"job must be dmc:TASK:VARIANT with VARIANT in {sorted(VARIANTS)}: {job}")
    return task, variant


def run_dir(root: Path, task: str, variant: str, seed: int) -> Path:
    return root / f"{task.replace(':', '-')}-{variant}-s{seed}"


def job_config(args: argparse.Namespace, task: str, variant: str, seed: int, minutes: float):
    folder = run_dir(args.runs, task, variant, seed)
    resume = (folder / "checkpoints" / "latest.pt").is_file()
    overrides = [
        f"task={task}",
        *([f"size={args.size}"] if args.size else []),
        f"steps={args.steps}",
        f"seed={seed}",
        f"device={args.device}",
        f"eval_freq={args.eval_freq}",
        f"eval_episodes={args.eval_episodes}",
        f"checkpoint_every={args.eval_freq}",
        f"run_dir={folder}",
        f"resume={str(resume).lower()}",
        f"time_limit_minutes={minutes:.3f}",
        *VARIANTS[variant],
        *args.set,
    ]
    return load_train_config(overrides, presets=("train", *args.train_preset)), resume


def train(args: argparse.Namespace, jobs: list[tuple[str, str]]) -> None:
    """Train the unfinished jobs in order until they finish or ``--minutes`` is spent."""
    from boom_control.device import resolve_device
    from boom_control.train.trainer import build_trainer

    deadline = time.monotonic() + 60.0 * args.minutes
    for task, variant in jobs:
        for seed in args.seeds:
            left = (deadline - time.monotonic()) / 60.0
            if left < 1.0:
                print("time budget spent; run again to continue", flush=True)
                return
            cfg, resume = job_config(args, task, variant, seed, left)
            done = _progress(Path(cfg.run_dir))
            if done >= args.steps:
                continue
            what = "resuming" if resume else "starting"
            print(f"{what} {cfg.run_dir} at step {done} ({left:.0f} min left)", flush=True)
            with build_trainer(cfg, resolve_device(cfg.device)) as trainer:
                trainer.run()
            if trainer.stopped_by in ("SIGINT", "SIGTERM"):
                print(f"{trainer.stopped_by}: stopped with a checkpoint; run again to continue")
                return


def _action_repeat(folder: Path) -> int:
    """Env steps per agent step of a run (DeepMind Control's default repeat is 2)."""
    cfg = load_train_config([], presets=[folder / "config.yaml"])
    return int(cfg.task_options.get("action_repeat", 2))


def _progress(folder: Path) -> int:
    """Agent steps of the run's latest checkpoint (0 if none)."""
    path = folder / "checkpoints" / "latest.pt"
    if not path.is_file():
        return 0
    from boom_control.train.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["step"])


def reference_curve(path: Path, task: str) -> tuple[np.ndarray, np.ndarray] | None:
    """TD-MPC2's mean return over seeds against env steps, from the published curves."""
    if not path.is_file():
        return None
    by_step: dict[int, list[float]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["method"] == "tdmpc2" and row["task"] == task:
                by_step.setdefault(int(row["env_step"]), []).append(float(row["return"]))
    if not by_step:
        return None
    steps = np.array(sorted(by_step))
    return steps, np.array([np.mean(by_step[s]) for s in steps])


def summarise(args: argparse.Namespace, jobs: list[tuple[str, str]]) -> list[dict]:
    rows = []
    for task, variant in jobs:
        name = task.split(":", 1)[1]
        ref = reference_curve(args.reference, name)
        for seed in args.seeds:
            folder = run_dir(args.runs, task, variant, seed)
            try:
                ev = read_eval(folder)
            except (FileNotFoundError, ValueError):
                rows.append({"task": task, "variant": variant, "seed": seed, "steps": 0})
                continue
            repeat = _action_repeat(folder)
            step = int(ev["step"][-1])
            env_steps = step * repeat
            row = {
                "task": task,
                "variant": variant,
                "seed": seed,
                "run_dir": str(folder),
                "steps": step,
                "env_steps": env_steps,
                "wall_time_h": ev["wall_time"][-1] / 3600.0,
                "planner_final": ev["planner_return_mean"][-1],
                "planner_max": max(ev["planner_return_mean"]),
                "policy_final": ev["policy_return_mean"][-1],
                "policy_max": max(ev["policy_return_mean"]),
                "tdmpc2_at_env_steps": None
                if ref is None
                else float(np.interp(env_steps, ref[0], ref[1])),
                "target_at_100k": TARGET_FRACTION * TDMPC2_100K[name]
                if name in TDMPC2_100K
                else None,
            }
            rows.append(row)
    return rows


def plot(args: argparse.Namespace, jobs: list[tuple[str, str]], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for task in sorted({t for t, _ in jobs}):
        name = task.split(":", 1)[1]
        fig, ax = plt.subplots(figsize=(6, 4))
        for t, variant in jobs:
            if t != task:
                continue
            for seed in args.seeds:
                folder = run_dir(args.runs, task, variant, seed)
                try:
                    ev = read_eval(folder)
                except (FileNotFoundError, ValueError):
                    continue
                x = _action_repeat(folder) * np.asarray(ev["step"])
                ax.plot(
                    x, ev["planner_return_mean"], marker="o", label=f"{variant} planner s{seed}"
                )
                ax.plot(x, ev["policy_return_mean"], ls="--", label=f"{variant} policy s{seed}")
        ref = reference_curve(args.reference, name)
        if ref is not None:
            keep = ref[0] <= max(2 * args.steps, 1)
            ax.plot(ref[0][keep], ref[1][keep], color="k", lw=1, label="TD-MPC2 (published)")
        if name in TDMPC2_100K:
            ax.axhline(TARGET_FRACTION * TDMPC2_100K[name], color="grey", ls=":", label="target")
        ax.set(xlabel="env steps", ylabel="eval return", title=task)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / f"learning_{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), help="TASK:VARIANT entries")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--steps", type=int, default=50_000, help="agent steps per run")
    parser.add_argument(
        "--size", "--preset", default="1M", help="model size ('' keeps the presets' size)"
    )
    parser.add_argument(
        "--train-preset",
        nargs="*",
        default=["train_fast"],
        help="extra presets from configs/ (default train_fast: fast Mish, compile, bf16)",
    )
    parser.add_argument("--set", nargs="*", default=[], help="more key=value overrides")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-freq", type=int, default=5000)
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=170.0, help="time cap of this call")
    parser.add_argument("--runs", type=Path, default=Path("runs/learning"))
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--summary-only", action="store_true", help="no training")
    parser.add_argument("--out", type=Path, help="write the summary JSON here (figures beside)")
    args = parser.parse_args()

    setup_logging()  # evaluations and progress lines of the runs
    jobs = [parse_job(j) for j in args.jobs]
    if not args.summary_only:
        train(args, jobs)
    rows = summarise(args, jobs)
    print(
        "| task | variant | seed | agent / env steps | wall h | planner final / max "
        "| policy final / max | TD-MPC2 at same env steps | target (100k) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if not r["steps"]:
            print(f"| {r['task']} | {r['variant']} | {r['seed']} | not started | | | | | |")
            continue
        ref = "-" if r["tdmpc2_at_env_steps"] is None else f"{r['tdmpc2_at_env_steps']:.1f}"
        target = "-" if r["target_at_100k"] is None else f"{r['target_at_100k']:.0f}"
        print(
            f"| {r['task']} | {r['variant']} | {r['seed']} | {r['steps']} / {r['env_steps']} "
            f"| {r['wall_time_h']:.2f} | {r['planner_final']:.1f} / {r['planner_max']:.1f} "
            f"| {r['policy_final']:.1f} / {r['policy_max']:.1f} "
            f"| {ref} | {target} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": rows, "args": vars(args)}, indent=2, default=str))
        for path in plot(args, jobs, args.out.parent):
            print(f"wrote {path}")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
