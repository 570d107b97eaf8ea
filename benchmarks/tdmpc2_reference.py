"""The training plan beside the official TD-MPC2 code's, timed round-robin in one process.

The official planner (``TDMPC2._plan`` of github.com/nicklashansen/tdmpc2, eager, no
torch.compile) and this project's learner plans run at the same size on the same random
observation, one after the other, repetition by repetition, so a shared machine's load
and speed fall on all of them alike: ratios from one run are what the planner's targets
are stated in (``<= 0.5x`` the official plan at the same threads).

The official agent's constructor only builds on a GPU; on a CPU its planner is
assembled from its own parts instead (its ``WorldModel`` on the CPU, its discount rule, a
zero warm start) and its ``_plan`` method is called on that object unchanged. Its
dependencies: ``tensordict`` (``pip install tensordict``).

Columns: ``official`` (fp32), ``eager`` (this project's planner on the eager model, exact
Mish, fp32), ``program`` (the learner's whole plan in ONNX Runtime over live weights,
``planner.program=onnx``, fp32), ``defaults`` (the planner a plain ``boom train`` of 1M
steps builds on this machine: ``configs/train.yaml``'s ``auto`` settings resolved here,
printed with the figures; bf16 where the CPU has bf16 instructions, within the tolerance
of ``tests/planner/test_precision.py``).

    python benchmarks/tdmpc2_reference.py --tdmpc2 PATH/TO/tdmpc2 --sizes 1M 5M --repeats 8
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from boom_control.config import config_dir, read_preset
from boom_control.device import hardware_name, resolve_compile, resolve_precision
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.bound_program import BoundProgram
from boom_control.planner.config import PlannerConfig
from boom_control.planner.learner import LearnerPlanner
from boom_control.planner.mppi import PlanConstants, draw_noise, initial_state, plan

OBS, ACT = 67, 21  # dmc:humanoid-walk
OFFICIAL_SIZES = {"1M": 1, "5M": 5}


def official_planner(root: Path, size: str, episode_length: int = 1000):
    """The official code's agent, assembled on the CPU, and its config."""
    sys.path.insert(0, str(root / "tdmpc2"))
    try:
        from common import MODEL_SIZE
        from common.world_model import WorldModel as OfficialModel
        from tdmpc2 import TDMPC2
    except ImportError as err:
        raise SystemExit(f"cannot import the official code from {root}: {err}") from None
    cfg = SimpleNamespace(
        obs="state", obs_shape={"state": (OBS,)}, action_dim=ACT, episode_length=episode_length,
        multitask=False, task_dim=0, episodic=False, mpc=True, compile=False,
        iterations=6 + 2, num_samples=512, num_elites=64, num_pi_trajs=24, horizon=3,
        min_std=0.05, max_std=2.0, temperature=0.5, log_std_min=-10, log_std_max=2,
        entropy_coef=1e-4, num_bins=101, vmin=-10.0, vmax=10.0, num_enc_layers=2,
        enc_dim=256, num_channels=32, mlp_dim=512, latent_dim=512, num_q=5, dropout=0.01,
        simnorm_dim=8, discount_denom=5, discount_min=0.95, discount_max=0.995,
    )  # fmt: skip
    for key, value in MODEL_SIZE[OFFICIAL_SIZES[size]].items():
        setattr(cfg, key, value)
    cfg.bin_size = (cfg.vmax - cfg.vmin) / (cfg.num_bins - 1)
    agent = TDMPC2.__new__(TDMPC2)
    torch.nn.Module.__init__(agent)
    agent.cfg, agent.device = cfg, torch.device("cpu")
    agent.model = OfficialModel(cfg).eval()
    agent.discount = agent._get_discount(cfg.episode_length)
    agent._prev_mean = torch.zeros(cfg.horizon, cfg.action_dim)
    return agent, cfg


def runners(root: Path, size: str, gamma: float) -> tuple[dict, PlanConstants]:
    """Zero-argument callables, one full training plan each, and this project's planner
    constants (the official planner's settings: 512 samples, 64 elites, 24 policy
    trajectories, 6 + 2 iterations for 21 actions, horizon 3)."""
    official, _ = official_planner(root, size)
    obs = torch.randn(1, OBS, generator=torch.Generator().manual_seed(0))
    cfg = ModelConfig(**read_preset(config_dir() / "model" / f"{size}.yaml"))
    exact = WorldModel(OBS, ACT, cfg, terminates=False).eval()
    fast = exact.with_mish("fast")
    cpu = torch.device("cpu")
    consts = PlanConstants.build(PlannerConfig(), ACT, gamma, cfg.num_q, cpu)
    state = initial_state(consts, cpu)
    noise = draw_noise(consts, cpu, torch.Generator().manual_seed(0))
    program = BoundProgram(fast, consts, threads=1)
    defaults = LearnerPlanner(
        default_planner(cpu), ACT, gamma, cfg.num_q, cpu, terminates=False, model=fast
    )
    generator = torch.Generator().manual_seed(0)

    def eager_run():
        with torch.no_grad():
            plan(exact, exact.encode(obs), state, consts, False, noise)

    def program_run():
        with torch.no_grad():
            program(fast.encode(obs), state, noise)

    def defaults_run():
        with torch.no_grad():
            defaults.plan(fast.encode(obs), state, False, generator)

    return {
        "official": lambda: official._plan(obs, t0=False, eval_mode=False),
        "eager": eager_run,
        "program": program_run,
        "defaults": defaults_run,
    }, consts


def default_planner(device: torch.device, steps: int = 1_000_000) -> PlannerConfig:
    """The planner settings of ``configs/train.yaml`` resolved as ``boom train`` resolves
    them for a run of ``steps`` on ``device`` (``program: auto`` stays for the planner)."""
    return dataclasses.replace(
        PlannerConfig(),
        precision=resolve_precision("auto", device),
        compile=resolve_compile("auto", steps, device),
        program="auto",
        cuda_graph=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tdmpc2", type=Path, required=True, help="checkout of the official code")
    ap.add_argument("--sizes", nargs="+", default=["1M", "5M"], choices=sorted(OFFICIAL_SIZES))
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    planner = default_planner(torch.device("cpu"))
    print(f"defaults here: precision {planner.precision}, compile {planner.compile}", flush=True)
    rows = []
    for size in args.sizes:
        runs, consts = runners(args.tdmpc2.resolve(), size, gamma=0.99)
        samples, iterations = consts.num_samples, consts.iterations
        for run in runs.values():  # warm-up: allocations, the program's export and session
            run()
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                t = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - t) * 1e3)
        p50 = {name: statistics.median(v) for name, v in times.items()}
        row = {"size": size, "samples": samples, "iterations": iterations, "p50_ms": p50,
               "x_official": {k: v / p50["official"] for k, v in p50.items()}}  # fmt: skip
        rows.append(row)
        cells = "  ".join(f"{k} {v:7.1f} ms ({row['x_official'][k]:.2f}x)" for k, v in p50.items())
        print(f"{size} {samples}x{iterations} thr {args.threads}: {cells}", flush=True)
    if args.out:
        meta = {"hardware": hardware_name(torch.device("cpu")), "torch": torch.__version__,
                "python": platform.python_version(), "threads": args.threads,
                "defaults": dataclasses.asdict(default_planner(torch.device("cpu")))}  # fmt: skip
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
