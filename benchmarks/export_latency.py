"""Per-part latency of a bundle: eager torch vs TorchScript vs ONNX Runtime.

For each exported part (encoder, dynamics, reward, q with 2 heads, policy, termination if
any, rollout_value) at batch 1 and batch 512, on the CPU with 1 and 2 threads (and CUDA
when available). A bundle is made from a freshly initialised model of the chosen size
unless ``--bundle`` points at a real one (weights do not change latency).

    python benchmarks/export_latency.py --size 5M --out benchmarks/results/export_latency.json
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from boom_control.config import config_dir, load_config
from boom_control.envs import make_env
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.train.agent import discount_for
from export import export_bundle, load_bundle
from export.parity import part_inputs


def make_bundle(task: str, size: str, out: Path) -> Path:
    env = make_env(task, seed=0)
    cfg = load_config(ModelConfig, presets=[config_dir() / "model" / f"{size}.yaml"])
    torch.manual_seed(0)
    model = WorldModel(env.spec.obs_dim, env.spec.action_dim, cfg, env.spec.terminates)
    export_bundle(
        model,
        env,
        PlannerConfig(),
        discount_for(env.spec.episode_length),
        out,
        size=size,
        training={"step": 0, "eval_return": None},
        parity_steps=16,
    )
    return out


def time_call(fn, args, repeats: int, sync) -> tuple[float, float]:
    for _ in range(5):
        fn(*args)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        sync()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="an existing bundle")
    parser.add_argument("--task", default="dmc:humanoid-walk")
    parser.add_argument("--size", "--preset", default="5M")
    parser.add_argument("--batches", default="1,512")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle or make_bundle(args.task, args.size, Path(tmp) / "bundle")
        bundle = load_bundle(path)
        devices = [("cpu", int(t)) for t in args.threads.split(",")]
        if torch.cuda.is_available():
            devices.append(("cuda", 0))
        rows = []
        for device, threads in devices:
            if device == "cpu":
                torch.set_num_threads(threads)
            dev = torch.device(device)

            def sync(dev=dev):
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)

            consts = bundle.plan_constants(dev)
            for backend in ("torch", "torchscript", "onnx"):
                model = bundle.model(backend, dev, threads=threads if device == "cpu" else 0)
                for batch in (int(b) for b in args.batches.split(",")):
                    gen = torch.Generator().manual_seed(0)
                    obs = torch.randn(batch, bundle.obs_dim, generator=gen).to(dev)
                    inputs = part_inputs(model, obs, consts, seed=0, samples=batch)
                    for part, part_args in inputs.items():
                        part_args = tuple(x.to(dev) for x in part_args)
                        with torch.inference_mode():
                            p50, p99 = time_call(
                                lambda *a, part=part, model=model: model.run(part, *a),
                                part_args,
                                args.repeats,
                                sync,
                            )
                        rows.append(
                            {
                                "device": device,
                                "threads": threads,
                                "backend": backend,
                                "batch": batch,
                                "part": part,
                                "p50_ms": p50,
                                "p99_ms": p99,
                            }
                        )
    print(
        f"bundle: {bundle.task_id}, size {bundle.info.model.size}, "
        f"{bundle.info.model.num_params} parameters"
    )
    print("| device | thr | part | batch | torch p50 | torchscript p50 | onnx p50 | onnx p99 |")
    print("|---|---|---|---|---|---|---|---|")
    keys = sorted(
        {(r["device"], r["threads"], r["part"], r["batch"]) for r in rows},
        key=lambda k: (k[0], k[1], k[3], k[2]),
    )
    for dev, thr, part, batch in keys:
        by = {
            r["backend"]: r
            for r in rows
            if (r["device"], r["threads"], r["part"], r["batch"]) == (dev, thr, part, batch)
        }
        print(
            f"| {dev} | {thr} | {part} | {batch} | {by['torch']['p50_ms']:.3f} | "
            f"{by['torchscript']['p50_ms']:.3f} | {by['onnx']['p50_ms']:.3f} | "
            f"{by['onnx']['p99_ms']:.3f} |"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "task": bundle.task_id,
            "size": bundle.info.model.size,
            "machine": platform.machine(),
            "torch": torch.__version__,
            "repeats": args.repeats,
        }
        args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
