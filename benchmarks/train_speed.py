"""Learner speed: agent steps/s of real training, ms per update and ms per planning call.

For each model size, CPU thread count (and the GPU when available) and speed variant, a
:class:`Trainer` is built on ``dmc:humanoid-walk`` (obs 67, A 21) with the paper's planner
(512 samples, 64 elites, 24 policy trajectories, 6+2 iterations, horizon 3) and batch 256.
After a short seed phase it runs real agent steps exactly as ``Trainer.run`` does (plan,
env step, buffer add, one update), and times ``Agent.update`` on buffer batches and
``Agent.act`` on their own. Variants are timed interleaved, round after round in the same
process, so load from other processes hits them alike; the table shows medians (and the
JSON also the best round).

Variants: ``defaults`` (the settings of ``configs/train.yaml``, what a plain ``boom train``
runs: size, task and the seed phase still come from this program), or features combined
with '+': ``eager`` (exact Mish, torch planner, fp32), ``fast`` (model.mish=fast),
``bf16`` (planner.precision=bf16), ``bf16u`` (agent.precision=bf16: the update),
``compile`` (planner.compile and agent.compile), ``overlap`` (overlap_update: the update
runs in a second thread while the planner acts, so it adds one busy thread to ``threads``),
``split`` (planner.threads=2: each iteration's rollouts in two row blocks on two threads;
``splitN`` for N threads; CPU only), ``graph`` (planner.cuda_graph: each MPPI iteration
replayed from a CUDA graph; CUDA only), ``onnx`` (planner.program=onnx: the whole plan as
one ONNX Runtime call over the live weights; CPU, fp32).

    python benchmarks/train_speed.py --out benchmarks/results/train_speed.json
    python benchmarks/train_speed.py --sizes 1M --threads 2 --variants eager fast+bf16
    python benchmarks/train_speed.py --quick          # a few repetitions only
    python benchmarks/train_speed.py --task dmc:walker-walk --sizes 1M --threads 1 \
        --variants eager defaults   # plain boom train against the eager learner
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from boom_control.config import config_dir, load_config
from boom_control.envs import make_env
from boom_control.model.config import ModelConfig
from boom_control.train.config import TrainConfig, load_train_config
from boom_control.train.trainer import Trainer, build_trainer

TASK = "dmc:humanoid-walk"
SEED_STEPS = 8
"""Random-action steps (and pretraining updates) before the timed agent steps."""
FEATURES = ("fast", "bf16", "bf16u", "compile", "overlap", "split", "graph", "onnx")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def make_config(
    size: str, variant: str, device: str, run_dir: str, batch: int, task: str = TASK
) -> TrainConfig:
    """Training config of one variant (paper planner settings, batch ``batch``)."""
    bench = {
        "task": task,
        "seed": 0,
        "steps": 10**9,
        "buffer_capacity": 10_000,
        "device": device,
        "seed_steps": SEED_STEPS,
        "eval_at_start": False,
        "save_buffer": False,
        "log_every": 10**9,
        "log_tensorboard": False,
        "run_dir": run_dir,
        "agent": {"batch_size": batch},
    }
    if variant == "defaults":  # what `boom train task=... size=...` builds
        overrides = [f"size={size}"] + [
            f"{k}={v}" for k, v in bench.items() if not isinstance(v, dict)
        ]
        return load_train_config([*overrides, f"agent.batch_size={batch}"])
    features = set(variant.split("+")) - {"eager"}
    split = [f for f in features if f.startswith("split") and f[5:].isdigit()]
    features -= set(split)
    plan_threads = int(split[0][5:]) if split else 2 if "split" in features else 1
    unknown = features - set(FEATURES)
    if unknown:
        raise SystemExit(f"unknown variant feature(s) {sorted(unknown)}; choose from {FEATURES}")
    model = load_config(ModelConfig, presets=[config_dir() / "model" / f"{size}.yaml"])
    cfg = load_config(TrainConfig, overrides=bench)
    return dataclasses.replace(
        cfg,
        overlap_update="overlap" in features,
        model=dataclasses.replace(model, mish="fast" if "fast" in features else "exact"),
        planner=dataclasses.replace(
            cfg.planner,
            precision="bf16" if "bf16" in features else "fp32",
            compile="compile" in features,
            threads=plan_threads,
            cuda_graph="graph" in features,
            program="onnx" if "onnx" in features else "torch",
        ),
        agent=dataclasses.replace(
            cfg.agent,
            batch_size=batch,
            precision="bf16" if "bf16u" in features else "fp32",
            compile="compile" in features,
        ),
    )


class Subject:
    """One variant: a trainer past its seed phase, with timers for its parts."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.trainer = build_trainer(cfg, device)
        self.obs = np.zeros(self.trainer.spec.obs_dim, np.float32)
        self.env_alone = make_env(cfg.task, seed=1)
        self.env_alone.reset(seed=1)
        start = time.perf_counter()
        while self.trainer.updates < SEED_STEPS + 2:  # seed phase, pretraining, 2 steps
            self.train_step()
        self.warmup_s = time.perf_counter() - start  # includes compilation, if any
        self.batch = self.trainer.buffer.sample()
        self.state = self.trainer.agent.initial_plan_state()
        self.times: dict[str, list[float]] = {"step": [], "update": [], "plan": [], "env": []}

    def train_step(self) -> None:
        """One agent step of ``Trainer.run`` (without evaluation and checkpoints)."""
        t: Trainer = self.trainer
        t.step_and_learn()

    def plan(self) -> None:
        agent = self.trainer.agent
        self.state = agent.act(self.obs, self.state, eval_mode=False)[3]

    def env(self) -> None:
        self.env_alone.step(np.zeros(self.trainer.spec.action_dim, np.float32))

    def round(self, reps: int) -> None:
        """Time ``reps`` training steps, updates, plans and env steps."""
        agent = self.trainer.agent
        self.times["step"] += _timed(self.train_step, self.device, reps)
        self.times["update"] += _timed(lambda: agent.update(self.batch), self.device, reps)
        self.times["plan"] += _timed(self.plan, self.device, reps)
        self.times["env"] += _timed(self.env, self.device, reps)

    def row(self) -> dict:
        med = {k: statistics.median(v) for k, v in self.times.items()}
        best = {k: min(v) for k, v in self.times.items()}
        return {
            "steps_per_s": 1e3 / med["step"],
            "steps_per_s_best": 1e3 / best["step"],
            "ms_per_step": med["step"],
            "ms_per_update": med["update"],
            "ms_per_plan": med["plan"],
            "ms_per_env_step": med["env"],
            "ms_per_update_best": best["update"],
            "ms_per_plan_best": best["plan"],
            "warmup_s": self.warmup_s,
            "samples": len(self.times["step"]),
        }


def bench(size: str, device_name: str, threads: int, args: argparse.Namespace) -> list[dict]:
    """All variants of one size on one device, timed interleaved."""
    device = torch.device(device_name)
    subjects = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            cfg = make_config(
                size, variant, device_name, f"{tmp}/{variant}", args.batch_size, args.task
            )
            subjects[variant] = Subject(cfg, device)
        for _ in range(args.rounds):
            for subject in subjects.values():
                subject.round(args.reps)
    rows = []
    for variant, subject in subjects.items():
        agent = subject.trainer.agent
        row = {
            "size": size,
            "device": device_name,
            "threads": threads,
            "variant": variant,
            "params": agent.model.num_params(),
            "plan_samples": agent.planner.consts.num_samples,
            "plan_iterations": agent.planner.consts.iterations,
            **subject.row(),
        }
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(r: dict) -> str:
    return (
        f"| {r['size']} | {r['device']} | {r['threads']} | {r['variant']} | "
        f"{r['steps_per_s']:.2f} | {r['steps_per_s_best']:.2f} | {r['ms_per_update']:.0f} | "
        f"{r['ms_per_plan']:.0f} | {r['ms_per_env_step']:.1f} | {r['warmup_s']:.0f} |"
    )


HEADER = (
    "| size | device | threads | variant | steps/s | best steps/s | ms/update | ms/plan "
    "| ms/env step | warm-up s |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default=TASK, help=f"training task (default {TASK})")
    parser.add_argument("--sizes", "--presets", nargs="+", default=["1M", "5M"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument(
        "--variants", nargs="+", default=["eager", "fast", "fast+bf16", "fast+bf16+compile"]
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per part and round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 repetitions")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU rows")
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=["cpu", "cuda"],
        default=None,
        help="where to train (default: cpu, and cuda when there is one; cuda rows use the "
        "largest --threads)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench/train_speed.json"))
    parser.add_argument("--append", action="store_true", help="add the rows to --out's rows")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.reps = 2, 2

    devices = args.devices or ["cpu"] + (
        ["cuda"] if torch.cuda.is_available() and not args.no_gpu else []
    )
    if "cuda" in devices and not torch.cuda.is_available():
        parser.error("--devices cuda: no CUDA device here")
    runs = [("cpu", t) for t in args.threads] if "cpu" in devices else []
    if "cuda" in devices:
        runs.append(("cuda", max(args.threads)))
    print(HEADER, flush=True)
    rows = []
    for device_name, threads in runs:
        torch.set_num_threads(threads)
        for size in args.sizes:
            rows += bench(size, device_name, threads, args)
    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "task": args.task,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "reps": args.reps,
    }
    if args.append and args.out.is_file():
        rows = json.loads(args.out.read_text())["rows"] + rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
