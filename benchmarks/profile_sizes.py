"""Planning-latency profile of the 5M and 1M sizes and the settings that fit 10/15/20 ms.

A randomly initialised world model of each size is exported to a temporary bundle for
the task (latency does not depend on the weights) and swept with ``boom profile``'s code:
every stage timed per repetition, the p99 of the whole plan per (samples, iterations), and
the largest setting whose p99 fits ``margin x budget``. Prints markdown, writes JSON and
copies the figures to ``--figures``.

    python benchmarks/profile_sizes.py --sizes 5M 1M --backend onnx --threads 1 \
        --samples 64,128,256,512 --iterations 1,2,4,6 --max-seconds 60 \
        --figures docs/profile --json benchmarks/results/profile_sizes.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import torch

from boom_control.config import config_dir, read_preset
from boom_control.envs import make_env
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.profile.bundle import profile_bundle
from boom_control.profile.stats import markdown_table
from boom_control.profile.sweep import SweepConfig
from export.exporter import export_bundle


def export_random(size: str, task: str, out: Path, seed: int = 0) -> Path:
    """A bundle of a freshly initialised ``size`` model for ``task`` (folder path)."""
    torch.manual_seed(seed)
    env = make_env(task, seed=seed)
    cfg = ModelConfig(**read_preset(config_dir() / "model" / f"{size}.yaml"))
    model = WorldModel(env.spec.obs_dim, env.spec.action_dim, cfg, env.spec.terminates)
    info = {"source": "random init (latency only)", "step": 0, "eval_return": None}
    try:
        export_bundle(model, env, PlannerConfig(), 0.99, out, size=size, training=info,
                      parity_steps=8, tolerance=1e-3)  # fmt: skip
    finally:
        env.close()
    return out


def markdown(result: dict) -> str:
    """One size's tables: plan latency per setting, stage p99s, budget fits."""
    cols = ["prec", "samples", "iters", "reps", "p50", "p90", "p99", "p99.9", "max", "iter p99"]
    pcts = cols[4:9]
    rows = []
    for c in result["cells"]:
        plan = c["stages"]["plan"]
        rows.append({"prec": c["precision"], "samples": c["samples"], "iters": c["iterations"],
                     "reps": c["repeats"], **{k: plan[k] for k in pcts},
                     "iter p99": c["stages"]["iteration"]["p99"]})  # fmt: skip
    big = result["cells"][result["largest"]]
    stages = ["h2d", "encode", "policy", "init", "iteration", "select", "d2h", "plan"]
    srows = [{"stage": s, **{k: big["stages"][s][k] for k in pcts}} for s in stages]
    size = result.get("size", result.get("preset"))  # results saved before the rename
    lines = [
        f"### {size} ({result['num_params'] / 1e6:.2f}M params), {result['task']}, "
        f"{result['backend']} on {result['device']}",
        "",
        "Whole plan (h2d + encode + policy + init + iterations + select + d2h), ms:",
        "",
        markdown_table(rows, cols),
        "",
        f"Stages of {big['samples']} x {big['iterations']} {big['precision']} "
        f"({big['repeats']} repetitions), ms:",
        "",
        markdown_table(srows, ["stage", *pcts]),
        "",
        f"{result['load']['text']}. {result['resolution']}.",
        "",
    ]
    for b in result["budgets"]:
        if b["fit"] is None:
            lines.append(f"* {b['budget_ms']:g} ms: nothing fits (policy action only)")
        else:
            f = b["fit"]
            lines.append(
                f"* {b['budget_ms']:g} ms (p99 <= {f['limit_ms']:.1f} ms): **{f['samples']} x "
                f"{f['iterations']}** (p99 {f['p99_ms']:.1f} ms): `boom control BUNDLE "
                f"{b['flags']}`"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", "--presets", nargs="+", default=["5M", "1M"])
    p.add_argument("--task", default="h1:walk")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--samples", default="64,128,256,512")
    p.add_argument("--iterations", default="1,2,4,6")
    p.add_argument("--precisions", default="fp32")
    p.add_argument("--repeats", type=int, default=1000)
    p.add_argument("--max-seconds", type=float, default=60.0, help="Per size.")
    p.add_argument("--budgets", default="10,15,20")
    p.add_argument("--margin", type=float, default=0.8)
    p.add_argument("--figures", type=Path, default=None, help="Copy the PNGs here.")
    p.add_argument("--tag", default="", help="Suffix of the copied figures' names.")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--markdown-from", type=Path, default=None, help="Only print a saved JSON.")
    args = p.parse_args()
    if args.markdown_from is not None:
        for result in json.loads(args.markdown_from.read_text()):
            print(markdown(result))
        return
    ints = lambda s: tuple(int(v) for v in s.split(","))  # noqa: E731
    cfg = SweepConfig(samples=ints(args.samples), iterations=ints(args.iterations),
                      precisions=tuple(args.precisions.split(",")), repeats=args.repeats,
                      warmup=10, max_seconds=args.max_seconds)  # fmt: skip
    budgets = [float(b) for b in args.budgets.split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            bundle = export_random(size, args.task, Path(tmp) / size)
            out = Path(tmp) / f"profile-{size}"
            result = profile_bundle(
                bundle, args.backend, args.device, out, cfg, threads=args.threads,
                budgets=budgets, margin=args.margin,
            )  # fmt: skip
            result["bundle"] = f"random {size} bundle for {args.task}"
            results.append(result)
            print(markdown(result), flush=True)
            if args.figures is not None:
                args.figures.mkdir(parents=True, exist_ok=True)
                tag = f"{size}_{args.backend}{args.tag}"
                for png in out.glob("heatmap_p99_*.png"):
                    shutil.copy(png, args.figures / f"{tag}_{png.name}")
                big = result["cells"][result["largest"]]
                name = f"hist_{big['precision']}_N{big['samples']}_I{big['iterations']}.png"
                shutil.copy(out / name, args.figures / f"{tag}_{name}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for r in results:
            r.pop("plots", None)
            for b in r["budgets"]:
                b.pop("config", None)
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
