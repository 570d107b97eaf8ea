"""Latency of one MPPI plan per controller backend (p50/p99), against plain eager PyTorch
and against the plan's matrix multiplies alone (the floor, measured in the same run).

A randomly initialised world model of each size is exported to a temporary bundle for
the task (latency does not depend on the weights), then every backend plans from a real
observation with fixed noise. The reference is the training planner
(:func:`boom_control.planner.mppi.plan`) on the eager model under ``torch.no_grad``.

    python benchmarks/plan_latency.py --sizes 5M 1M --threads 1 2 --repeats 20 \
        --out plan_latency.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from boom_control.bundle.load import Bundle, load_bundle
from boom_control.config import config_dir, read_preset
from boom_control.control.factory import build_backend
from boom_control.device import hardware_name
from boom_control.envs import make_env
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.backends import override_constants
from boom_control.planner.bound_program import BoundProgram
from boom_control.planner.config import PlannerConfig
from boom_control.planner.mppi import plan
from boom_control.profile.floor import FloorReplay, OnnxFloorReplay, stage_matmuls
from export.exporter import export_bundle


def random_bundle(size: str, task: str, out: Path, seed: int = 0) -> Bundle:
    """Export a randomly initialised model of ``size`` for ``task`` to ``out``."""
    torch.manual_seed(seed)
    sizes = read_preset(config_dir() / "model" / f"{size}.yaml")
    env = make_env(task, seed=seed)
    model = WorldModel(
        env.spec.obs_dim, env.spec.action_dim, ModelConfig(**sizes), env.spec.terminates
    )
    training = {"source": "random init", "step": 0, "eval_return": None, "seed": seed}
    try:
        return export_bundle(
            model,
            env,
            PlannerConfig(),
            0.99,
            out,
            size=size,
            training=training,
            parity_steps=8,
            tolerance=1e-3,
        )
    finally:
        env.close()


def _runner(bundle: Bundle, name: str, bf16: bool, device: str, threads: int, setting, obs):
    """A zero-argument callable running one full plan, and the constants it uses."""
    samples, iterations = setting
    if name == "reference":  # the training planner on the eager model, as in training
        eager = bundle.eager_model("cpu")
        consts = override_constants(bundle.plan_constants("cpu"), samples, iterations)
        z, state, noise = eager.encode(obs), _zero_state(consts, "cpu"), _noise(consts, "cpu")

        def run():
            with torch.no_grad():
                plan(eager, z, state, consts, True, noise)

        return run, consts
    if name == "learner-onnx":  # the training agent's plan: one call over live weights
        eager = bundle.eager_model("cpu").with_mish("fast")
        consts = override_constants(bundle.plan_constants("cpu"), samples, iterations)
        z, state, noise = eager.encode(obs), _zero_state(consts, "cpu"), _noise(consts, "cpu")
        program = BoundProgram(eager, consts, max(1, threads))

        def run():
            with torch.no_grad():
                program(z, state, noise)

        return run, consts
    if name.startswith("floor-"):  # the plan's multiplies alone (see profile/floor.py)
        eager = build_backend(bundle, "torch", device, samples=samples, iterations=iterations)
        matmuls = stage_matmuls(eager, bundle.obs_dim)
        calls = matmuls["init"] + matmuls["iteration"] * eager.consts.iterations
        if name == "floor-onnx":
            return OnnxFloorReplay(calls, threads), eager.consts
        return FloorReplay(calls, eager.device), eager.consts
    stepped = name == "onnx-stepped"
    b = build_backend(
        bundle, "onnx" if stepped else name, device, threads=threads, bf16=bf16,
        samples=samples, iterations=iterations, whole_plan=not stepped,
    )  # fmt: skip
    z, state = b.encode(obs.to(b.device)), _zero_state(b.consts, b.device)
    noise = b.draw_noise(torch.Generator(b.device).manual_seed(0))

    def run():
        b.plan(z, state, noise)
        b.sync()

    return run, b.consts


def bench_bundle(bundle: Bundle, settings, backends, threads, repeats, device) -> list[dict]:
    """Rows of p50/p99 per backend; the backends of one setting run round-robin, so a
    shared machine's load falls on all of them alike."""
    env = make_env(bundle.task_id, seed=1)
    obs = torch.as_tensor(env.reset(seed=1)[0], dtype=torch.float32).unsqueeze(0)
    env.close()
    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for setting in settings:
            runners = {}
            for name, bf16 in backends:
                label = name + ("+bf16" if bf16 else "")
                dev = "cpu" if name == "reference" else device
                try:
                    runners[label] = (
                        *_runner(bundle, name, bf16, dev, n_threads, setting, obs),
                        dev,
                    )
                except Exception as err:  # e.g. cudagraph without a GPU
                    print(f"  skip {label}: {err}")
            times: dict[str, list[float]] = {k: [] for k in runners}
            for run, _, _ in runners.values():  # warm-up
                run()
                run()
            for _ in range(repeats):
                for k, (run, _, _) in runners.items():
                    t = time.perf_counter()
                    run()
                    times[k].append((time.perf_counter() - t) * 1e3)
            ref = float(np.percentile(times["reference"], 50)) if "reference" in times else None
            floors = {k: float(np.percentile(times[k], 50)) for k in times if k.startswith("floor")}
            for k, (_, consts, dev) in runners.items():
                p50 = float(np.percentile(times[k], 50))
                onnx = k.startswith(("onnx", "learner-onnx"))
                floor = floors.get("floor-onnx" if onnx else "floor-torch")
                row = {
                    "size": bundle.info.model.size,
                    "backend": k,
                    "device": dev,
                    "threads": n_threads,
                    "samples": consts.num_samples,
                    "iterations": consts.iterations,
                    "p50_ms": p50,
                    "p99_ms": float(np.percentile(times[k], 99)),
                    "speedup_vs_eager": ref / p50 if ref else None,
                    "x_floor": p50 / floor if floor and not k.startswith("floor") else None,
                }
                rows.append(row)
                print(_fmt(row), flush=True)
    return rows


def _zero_state(consts, device):
    from boom_control.planner.types import PlanState

    return PlanState(
        torch.zeros(consts.horizon, consts.action_dim, device=device),
        torch.zeros((), dtype=torch.bool, device=device),
    )


def _noise(consts, device):
    from boom_control.planner.mppi import draw_noise

    return draw_noise(consts, torch.device(device), torch.Generator().manual_seed(0))


def _fmt(r: dict) -> str:
    sp = f"{r['speedup_vs_eager']:.2f}x" if r["speedup_vs_eager"] else "-"
    return (
        f"{r['size']:>3} {r['backend']:<16} {r['device']:<5} thr {r['threads']} "
        f"{r['samples']:>4}x{r['iterations']:<2} p50 {r['p50_ms']:8.2f} ms  "
        f"p99 {r['p99_ms']:8.2f} ms  speed-up {sp}"
        + (f"  {r['x_floor']:.2f}x floor" if r.get("x_floor") else "")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="h1:walk")
    ap.add_argument("--sizes", "--presets", nargs="+", default=["5M", "1M"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument(
        "--settings",
        nargs="+",
        default=["full", "64x1", "128x2"],
        help="'full' (the bundle's samples x iterations) or NxI",
    )
    ap.add_argument(
        "--backends",
        nargs="+",
        default=[
            "torch", "torch+bf16", "torchscript", "onnx", "onnx-stepped", "cudagraph",
            "floor-torch", "floor-onnx",
        ],
        help="onnx: whole-plan programs on a CPU; onnx-stepped: the parts, iteration by "
        "iteration; learner-onnx: the training agent's whole-plan program over live weights "
        "(planner.program=onnx); floor-torch / floor-onnx: the plan's matrix multiplies alone "
        "in torch / ONNX Runtime (the floor each backend is compared with)",
    )  # fmt: skip
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="leave out the eager CPU planner every row is compared with (slow at large "
        "sizes; the speed-up column is then empty)",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    settings = [
        (None, None) if s == "full" else tuple(int(x) for x in s.split("x")) for s in args.settings
    ]
    backends = [] if args.no_reference else [("reference", False)]
    backends += [(b.split("+")[0], b.endswith("+bf16")) for b in args.backends]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            bundle = random_bundle(size, args.task, Path(tmp) / size)
            bundle = load_bundle(bundle.root)
            rows += bench_bundle(
                bundle, settings, backends, args.threads, args.repeats, args.device
            )
    if args.out:
        meta = {"hardware": hardware_name(torch.device(args.device)), "torch": torch.__version__}
        args.out.write_text(
            json.dumps({"task": args.task, "meta": meta, "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
