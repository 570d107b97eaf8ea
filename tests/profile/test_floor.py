"""The matmul floor: the recorded multiplies and their FLOPs, replayed in torch and in ONNX
Runtime."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from boom_control.bundle.load import load_bundle
from boom_control.control.factory import build_backend
from boom_control.planner.mppi import initial_state
from boom_control.profile.floor import (
    STAGES,
    FloorReplay,
    OnnxFloorReplay,
    floor_table,
    stage_matmuls,
)


@pytest.fixture(scope="module")
def eager(random_bundle):
    bundle = load_bundle(random_bundle)
    return bundle, build_backend(bundle, "torch", "cpu", samples=16, iterations=2)


def test_recorded_flops_agree_with_torchs_flop_counter(eager):
    bundle, backend = eager
    matmuls = stage_matmuls(backend, bundle.obs_dim)
    assert set(matmuls) == set(STAGES)
    assert matmuls["iteration"] and matmuls["init"] and not matmuls["select"]
    state = initial_state(backend.consts, backend.device)
    noise = backend.draw_noise(torch.Generator().manual_seed(0))
    obs = torch.zeros(1, bundle.obs_dim)
    z = backend.encode(obs)
    run = backend.begin(z, state, noise)
    # an independent count: torch's own FLOP counter, outside inference mode
    for stage, fn in (
        ("encode", lambda: backend.model.encode(obs)),
        ("iteration", lambda: backend.iterate(run, 0)),
    ):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            fn()
        assert sum(c.flops for c in matmuls[stage]) == counter.get_total_flops() > 0
    n, h = backend.consts.num_samples, backend.consts.horizon
    assert all(c.shapes[0][-2] in (n, 1) for c in matmuls["iteration"])  # every sample
    assert len(matmuls["iteration"]) > 2 * h  # reward and dynamics at each step, then Q, pi


def test_floors_replay_the_same_multiplies_in_torch_and_onnx_runtime(eager):
    pytest.importorskip("onnxruntime")
    bundle, backend = eager
    calls = stage_matmuls(backend, bundle.obs_dim)["iteration"]
    for replay in (FloorReplay(calls, torch.device("cpu")), OnnxFloorReplay(calls, threads=1)):
        assert replay.flops == sum(c.flops for c in calls) > 0
        assert replay.time_ms(repeats=3, warmup=1) > 0
    table = floor_table(stage_matmuls(backend, bundle.obs_dim), torch.device("cpu"), 2, 3)
    plan = table["plan"]
    expect = sum(table[s]["mflop"] * (2 if s == "iteration" else 1) for s in STAGES)
    assert plan["mflop"] == pytest.approx(expect)
    assert plan["floor_ms"] > table["iteration"]["floor_ms"] > 0
    assert plan["gflops"] == pytest.approx(plan["mflop"] / plan["floor_ms"])
