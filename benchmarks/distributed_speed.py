"""Distributed training speed: agent steps/s and updates/s with actors = 0, 1, 2 on this
machine, and the per-actor and learner costs that predict a cluster.

Each setting trains the same run (``size=1M`` on humanoid dims, ``dmc:humanoid-walk``, the
paper's planner unless ``--set`` changes it) for ``--seconds`` of wall time on the CPU, 1
torch thread per process, and measures over the learning phase (between the first and
the last training log rows): collection rate (agent steps/s), update rate (updates/s), and
for actors > 0 the rate per actor. Settings run one after another.

    python benchmarks/distributed_speed.py --seconds 240 \
        --out benchmarks/results/distributed_speed.json
    python benchmarks/distributed_speed.py --device cuda --actors 0 4 8 12   # GPU learner
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import torch

from boom_control.device import resolve_device
from boom_control.train.config import load_train_config
from boom_control.train.trainer import build_trainer


def measure(actors: int, seconds: float, extra: list[str], tmp: Path, device: str = "cpu") -> dict:
    """Train for ``seconds`` and return the rates between the first and the last ``train``
    log rows (the learning phase only: the seed phase and its pretraining are left out)."""
    torch.set_num_threads(1)
    run_dir = tmp / f"a{actors}"
    cfg = load_train_config(
        [
            "task=dmc:humanoid-walk",
            "size=1M",
            f"device={device}",
            "steps=1000000",
            "seed_steps=100",
            "eval_at_start=false",
            "eval_freq=1000000",
            "checkpoint_every=1000000",
            "save_buffer=false",
            "log_every=10",
            "log_tensorboard=false",
            f"time_limit_minutes={seconds / 60.0}",
            f"actors={actors}",
            f"run_dir={run_dir}",
            *extra,
        ]
    )
    with build_trainer(cfg, resolve_device(device)) as trainer:
        trainer.run()
    with (run_dir / "log.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["group"] == "train" and r["name"] == "updates"]
    if len(rows) < 2:
        raise SystemExit(f"actors={actors}: fewer than two train log rows; raise --seconds")
    first, last = rows[0], rows[-1]
    wall = float(last["wall_time"]) - float(first["wall_time"])
    steps = int(last["step"]) - int(first["step"])
    updates = float(last["value"]) - float(first["value"])
    row = {
        "actors": actors,
        "measured_s": wall,
        "steps": steps,
        "updates": updates,
        "steps_per_s": steps / wall,
        "updates_per_s": updates / wall,
        "ms_per_update_with_collection": 1e3 * wall / max(updates, 1),
    }
    if actors:
        stats = trainer.distributed_stats
        row.update(
            chunks=stats.chunks,
            weights_version=stats.weights_version,
            steps_per_s_per_actor=steps / wall / actors,
        )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--actors", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--set", nargs="*", default=[], help="more key=value overrides")
    ap.add_argument(
        "--device", default="cpu", help="the learner's device (cuda: updates on the GPU); "
        "actors always act on one CPU core each",
    )  # fmt: skip
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for actors in args.actors:
            row = measure(actors, args.seconds, args.set, Path(tmp), args.device)
            row["device"] = args.device
            rows.append(row)
            print(
                f"actors {actors}: {row['steps']} steps, {row['updates']:.0f} updates in "
                f"{row['measured_s']:.0f} s: {row['steps_per_s']:.2f} steps/s, "
                f"{row['updates_per_s']:.2f} updates/s",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
