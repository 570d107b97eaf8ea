"""Whole-plan programs: the same plan as the step-by-step planner, cached, and the anytime
planner's choice of how many iterations fit."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from boom_control.bundle.load import load_bundle
from boom_control.control.factory import build_backend
from boom_control.errors import BackendError
from boom_control.planner.anytime import CostTracker, PlanJob, plan_anytime
from boom_control.planner.mppi import initial_state
from boom_control.planner.program import OnnxPrograms

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("BOOM_CACHE_DIR", str(folder))
    return folder / "plans"


def _backends(bundle_path, **kw):
    bundle = load_bundle(bundle_path)
    whole = build_backend(bundle, "onnx", "cpu", iterations=3, **kw)
    eager = build_backend(bundle, "torch", "cpu", iterations=3, **kw)
    return bundle, whole, eager


def test_programs_plan_like_the_stepped_planner_on_the_same_noise(random_bundle, cache):
    bundle, whole, eager = _backends(random_bundle)
    assert whole.programs is not None and eager.programs is None
    stepped = build_backend(bundle, "onnx", "cpu", iterations=3, whole_plan=False)
    assert stepped.programs is None
    gen = torch.Generator().manual_seed(3)
    state = initial_state(whole.consts, torch.device("cpu"))
    with torch.inference_mode():
        for t in range(4):  # warm starts carried over, as in a controller
            obs = torch.randn(1, bundle.obs_dim, generator=gen)
            noise = whole.draw_noise(gen)
            k = 1 + t % 3
            got = whole.plan_k(whole.encode(obs), state, noise, k)
            ref = eager.plan_k(eager.encode(obs), state, noise, k)
            ref_stepped = stepped.plan_k(stepped.encode(obs), state, noise, k)
            for a, b, c in zip(got[:3], ref[:3], ref_stepped[:3], strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
                torch.testing.assert_close(c, b, atol=1e-4, rtol=0)
            torch.testing.assert_close(got[3].mean, ref[3].mean, atol=1e-4, rtol=0)
            assert bool(got[3].valid)
            state = ref[3]
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        p.name for p in cache.glob("plan-*.onnx")
    )
    assert len(list(cache.glob("plan-*.onnx"))) == 3  # k = 1, 2, 3, nothing half-written


def test_programs_are_cached_and_a_damaged_file_is_exported_again(random_bundle, cache):
    bundle = load_bundle(random_bundle)
    consts = bundle.plan_constants()
    first = OnnxPrograms(bundle.eager_model(), consts)
    first.session(1)
    (path,) = cache.glob("plan-*.onnx")
    stamp = path.stat().st_mtime_ns
    again = OnnxPrograms(bundle.eager_model(), consts)
    again.session(1)
    assert path.stat().st_mtime_ns == stamp  # read from the cache, not exported again
    path.write_bytes(b"not an onnx file")
    third = OnnxPrograms(bundle.eager_model(), consts)
    third.session(1)
    assert path.stat().st_size > 1000
    # other weights are another program
    model = bundle.eager_model()
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    OnnxPrograms(model, consts).session(1)
    assert len(list(cache.glob("plan-*.onnx"))) == 2
    with pytest.raises(BackendError, match="no 9-iteration program"):
        third.session(9)


def _job(backend, obs_dim, budget_s):
    z = backend.encode(torch.zeros(1, obs_dim))
    state = initial_state(backend.consts, torch.device("cpu"))
    return PlanJob(0, z, state, backend.draw_noise(), time.monotonic() + budget_s)


def test_anytime_runs_the_largest_program_that_fits(random_bundle, cache):
    bundle, whole, _ = _backends(random_bundle)
    tracker = CostTracker()
    for k, seconds in ((1, 0.01), (2, 0.02), (3, 30.0)):
        tracker.program(k).add(seconds)
    with torch.inference_mode():
        result = plan_anytime(whole, _job(whole, bundle.obs_dim, 5.0), tracker)
        assert result.iterations == 2 and result.action is not None
        assert np.isfinite(result.action).all() and result.state is not None
        assert len(tracker.program(2).recent) == 2  # its own time was recorded
        # nothing fits: no plan, until a probe of one iteration is due
        tracker.program(1).add(100.0)
        tracker.program(2).add(100.0)
        for _ in range(tracker.probe_every):
            assert plan_anytime(whole, _job(whole, bundle.obs_dim, 1.0), tracker).action is None
        probe = plan_anytime(whole, _job(whole, bundle.obs_dim, 1.0), tracker)
        assert probe.iterations == 1 and probe.action is not None and tracker.starved == 0


@pytest.mark.parametrize("terminates", [False, True])
def test_a_whole_plan_traces_as_one_graph_so_a_cuda_graph_can_capture_it(random_bundle, terminates):
    """What a CUDA graph cannot hold (a host synchronisation such as ``.item()``, Python
    control flow on a tensor's value) breaks a dynamo trace too: the whole plan, as
    ``GraphPrograms`` captures it, traces on a CPU as one graph without a break."""
    from boom_control.planner.program import whole_plan
    from boom_control.planner.types import PlanState

    bundle = load_bundle(random_bundle)
    b = build_backend(bundle, "torch", "cpu", samples=32, iterations=2)
    consts = dataclasses.replace(b.consts, terminates=terminates)
    z = b.encode(torch.zeros(1, bundle.obs_dim))
    noise = b.draw_noise(torch.Generator().manual_seed(0))
    state = initial_state(consts, b.device)

    def plan(z, mean, valid, noise):
        return whole_plan(b.model, consts, z, PlanState(mean, valid), noise, 2)

    torch._dynamo.reset()
    with torch.inference_mode():
        explained = torch._dynamo.explain(plan)(z, state.mean, state.valid, noise)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


@pytest.mark.gpu
def test_cuda_graph_programs_plan_like_the_stepped_planner(random_bundle):
    bundle = load_bundle(random_bundle)
    whole = build_backend(bundle, "cudagraph", "cuda", iterations=3)
    stepped = build_backend(bundle, "cudagraph", "cuda", iterations=3, whole_plan=False)
    assert whole.programs is not None and stepped.programs is None
    gen = torch.Generator("cuda").manual_seed(2)
    state = initial_state(whole.consts, whole.device)
    with torch.inference_mode():
        for t in range(4):
            z = whole.encode(torch.randn(1, bundle.obs_dim, device="cuda", generator=gen))
            noise = whole.draw_noise(gen)
            k = 1 + t % 3
            got, ref = whole.plan_k(z, state, noise, k), stepped.plan_k(z, state, noise, k)
            for a, b in zip(got[:3], ref[:3], strict=True):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
            torch.testing.assert_close(got[3].mean, ref[3].mean, atol=1e-5, rtol=0)
            state = got[3]


def test_a_programs_first_export_is_not_counted_as_its_cost(random_bundle, cache):
    bundle, whole, _ = _backends(random_bundle)
    tracker = CostTracker()
    start = time.monotonic()
    with torch.inference_mode():
        result = plan_anytime(whole, _job(whole, bundle.obs_dim, 0.5), tracker)
    took = time.monotonic() - start
    assert result.iterations == 3 and result.action is not None
    assert list(cache.glob("plan-*.onnx"))  # exported during the call
    (recorded,) = tracker.program(3).recent
    assert recorded < 0.5 * took  # the plan's own time, not the export's
