"""Controller planner backends: same MPPI as training, anytime stopping, safety, clock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from boom_control.control.clock import Ticker, sleep_until
from boom_control.control.factory import build_backend
from boom_control.control.safety import SafetyGuard, neutral_action
from boom_control.envs import make_env
from boom_control.errors import BackendError, DeviceError
from boom_control.planner.anytime import CostTracker, PlanJob, PlanWorker, plan_anytime
from boom_control.planner.mppi import draw_noise, plan
from boom_control.planner.types import PlanState
from export import load_bundle


@pytest.fixture(scope="module")
def obs(random_bundle):
    env = make_env(load_bundle(random_bundle).task_id, seed=5)
    o = env.reset(seed=5)[0]
    env.close()
    return torch.as_tensor(o, dtype=torch.float32).unsqueeze(0)


def _state(consts, valid=False):
    g = torch.Generator().manual_seed(7)
    mean = torch.rand(consts.horizon, consts.action_dim, generator=g) * 2 - 1
    return PlanState(mean, torch.tensor(valid))


@pytest.mark.parametrize("name", ["torch", "torchscript", "onnx"])
def test_backend_plans_like_the_training_planner(random_bundle, obs, name):
    bundle = load_bundle(random_bundle)
    eager = bundle.eager_model("cpu")
    backend = build_backend(bundle, name, "cpu", threads=1)
    consts = backend.consts
    for valid in (False, True):
        state = _state(consts, valid)
        noise = draw_noise(consts, torch.device("cpu"), torch.Generator().manual_seed(3))
        with torch.no_grad():
            ref = plan(eager, eager.encode(obs), state, consts, True, noise)
        z = backend.encode(obs)
        out = backend.plan(z, state, noise)
        for a, b in zip(out[:3], ref[:3], strict=True):
            assert torch.allclose(a, b, atol=1e-4), (name, valid, (a - b).abs().max())
        assert torch.allclose(out[3].mean, ref[3].mean, atol=1e-4)
        expected = torch.tanh(eager.pi_params(eager.encode(obs))[0])[0]
        assert torch.allclose(backend.policy_action(z), expected, atol=1e-5)


def test_bf16_evaluation_stays_close_to_fp32(random_bundle, obs):
    bundle = load_bundle(random_bundle)
    fp32 = build_backend(bundle, "torch", "cpu")
    bf16 = build_backend(bundle, "torch", "cpu", bf16=True)
    consts = fp32.consts
    z = fp32.encode(obs)
    run = fp32.begin(z, _state(consts), fp32.draw_noise(torch.Generator().manual_seed(1)))
    n = run.noise
    from boom_control.planner.mppi import sample_sequences

    actions = sample_sequences(run.it, n.samples[0])
    v32 = fp32.evaluate(run.it, actions, n.value_pi[0], n.heads[0])
    v16 = bf16.evaluate(run.it, actions, n.value_pi[0], n.heads[0])
    assert v16.dtype == torch.float32
    assert bool(torch.isfinite(v16).all())
    rel = (v16 - v32).abs().max() / v32.abs().max().clamp_min(1e-6)
    assert rel < 0.05, float(rel)
    with pytest.raises(BackendError, match="bf16 needs"):
        build_backend(bundle, "onnx", "cpu", bf16=True)


def test_overrides_and_device_errors(random_bundle):
    bundle = load_bundle(random_bundle)
    b = build_backend(bundle, "onnx", "cpu", samples=16, iterations=1)
    assert (b.consts.num_samples, b.consts.iterations) == (16, 1)
    assert b.consts.num_elites <= 8 and b.consts.num_pi_trajs <= 8
    assert "cpu" in b.device_used() and "CPUExecutionProvider" in b.device_used()
    with pytest.raises(BackendError, match="cudagraph needs a CUDA device"):
        build_backend(bundle, "cudagraph", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            build_backend(bundle, "torch", "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["torch", "cudagraph", "onnx"])
def test_gpu_backends_match_cpu(random_bundle, obs, name):
    if name == "onnx":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            pytest.skip("ONNX Runtime without the CUDA execution provider (onnxruntime-gpu)")
    bundle = load_bundle(random_bundle)
    cpu = build_backend(bundle, "torch", "cpu")
    gpu = build_backend(bundle, name, "cuda")
    gpu.warmup(bundle.obs_dim, rounds=1)
    noise = cpu.draw_noise(torch.Generator().manual_seed(2))
    noise_gpu = type(noise)(*(t.to(gpu.device) for t in noise))
    state = _state(cpu.consts)
    ref = cpu.plan(cpu.encode(obs), state, noise)
    out = gpu.plan(
        gpu.encode(obs.to(gpu.device)), PlanState(*(t.to(gpu.device) for t in state)), noise_gpu
    )
    assert torch.allclose(out[0].cpu(), ref[0], atol=1e-3)


def test_anytime_stops_before_the_deadline(random_bundle, obs):
    bundle = load_bundle(random_bundle)
    backend = build_backend(bundle, "torch", "cpu", iterations=10)
    slow = backend.iterate

    def iterate(run, i):  # every iteration takes at least 20 ms
        time.sleep(0.02)
        return slow(run, i)

    backend.iterate = iterate
    tracker = CostTracker()
    z = backend.encode(obs)
    for _ in range(2):
        deadline = time.monotonic() + 0.07
        job = PlanJob(0, z, _state(backend.consts), backend.draw_noise(), deadline)
        result = plan_anytime(backend, job, tracker)
    assert tracker.estimate() >= 0.02
    assert 1 <= result.iterations < 10 and len(result.iter_ms) == result.iterations
    assert result.action is not None and result.action.shape == (bundle.action_dim,)
    # nothing fits: no iteration, no action, the caller falls back to the policy
    job = PlanJob(1, z, _state(backend.consts), backend.draw_noise(), time.monotonic() + 0.001)
    none = plan_anytime(backend, job, tracker)
    assert none.iterations == 0 and none.action is None and none.state is None


def test_plan_worker_warms_up_in_its_own_thread(random_bundle, obs):
    bundle = load_bundle(random_bundle)
    backend = build_backend(bundle, "torch", "cpu")
    threads = []
    real_warmup = backend.warmup

    def warmup(obs_dim, rounds=3, plan=True):  # the real warm-up, noting where it ran
        threads.append(threading.current_thread().name)
        real_warmup(obs_dim, rounds, plan)

    backend.warmup = warmup
    worker = PlanWorker(backend, CostTracker(), warmup_obs_dim=bundle.obs_dim)
    try:
        assert threads == ["boom-planner"]  # done before the constructor returned
        z = backend.encode(obs)
        state, noise = _state(backend.consts, True), backend.draw_noise()
        job = PlanJob(3, z, state, noise, time.monotonic() + 60.0)
        assert worker.submit(job)
        result = worker.wait(3, time.monotonic() + 60.0)
        assert result is not None and result.iterations == backend.consts.iterations
        expected = backend.plan(z, state, noise)[0].numpy()
        assert np.allclose(result.action, expected, atol=1e-6)
    finally:
        worker.close()
    # a warm-up that fails (an observation of the wrong size) fails the constructor
    backend.warmup = real_warmup
    with pytest.raises(RuntimeError, match="planner failed"):
        PlanWorker(backend, CostTracker(), warmup_obs_dim=bundle.obs_dim + 1)


def test_safety_guard():
    mapping = {"scale": [2.0, 0.0, 1.0], "offset": [1.0, 0.5, -3.0]}
    neutral = neutral_action(mapping, 3)
    assert np.allclose(neutral, [-0.5, 0.0, 1.0])
    guard = SafetyGuard(neutral, stale_periods=2)
    cmd, src = guard.command(np.array([3.0, -0.2, 0.1]), obs_ok=True, stale=False)
    assert src == "ok" and np.allclose(cmd, [1.0, -0.2, 0.1]) and guard.alarm == ""
    guard.sent(cmd, src)
    _, src = guard.command(np.array([0.3, 0.3, 0.3]), obs_ok=True, stale=False)
    assert src == "ok"  # computed, never sent (a skipped tick): not the one to hold
    cmd2, src = guard.command(np.array([np.nan, 0, 0]), obs_ok=True, stale=False)
    assert src == "hold" and np.allclose(cmd2, cmd) and guard.alarm == "nan_action"
    cmd3, src = guard.command(np.zeros(3), obs_ok=False, stale=False)
    assert src == "hold" and np.allclose(cmd3, cmd) and guard.alarm == "nan_obs"
    assert not guard.observe(False) and guard.observe(False)
    cmd4, src = guard.command(np.zeros(3), obs_ok=True, stale=True)
    assert src == "damp" and np.allclose(cmd4, neutral) and guard.alarm == "stale_obs"
    assert not guard.observe(True)
    assert guard.command(np.zeros(3), True, False)[1] == "ok" and guard.alarm == ""
    assert guard.alarms == {"nan_obs": 1, "nan_action": 1, "stale_obs": 1}


def test_ticker_keeps_absolute_deadlines_and_skips_missed_ticks():
    ticker = Ticker(0.01)
    starts = []
    for _ in range(5):
        starts.append(ticker.wait())
        ticker.advance()
    assert np.allclose(np.diff(starts), 0.01)
    time.sleep(0.065)  # a stall of more than five periods
    start = ticker.wait()
    assert ticker.skipped >= 3 and start == ticker.t0 + ticker.index * 0.01
    t = time.monotonic() + 0.003
    assert sleep_until(t) >= t


def test_cost_tracker_probes_back_off_when_nothing_fits():
    tracker = CostTracker(probe_every=10)
    for dt in [0.001] * 19 + [0.05]:
        tracker.add(dt)
    assert tracker.estimate() < 0.02  # a single 50 ms stall does not block planning
    tracker.probed(fitted=False)
    tracker.probed(fitted=False)
    assert tracker.probe_every == 40
    tracker.probed(fitted=True)
    assert tracker.probe_every == 10
