"""Planning rollouts split over threads (planner.threads): same plans, thread contexts."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time

import numpy as np
import pytest
import torch

from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.compiled import compile_fn
from boom_control.planner.config import PlannerConfig
from boom_control.planner.mppi import (
    PlanConstants,
    draw_noise,
    estimate_value,
    initial_state,
    plan,
    refit,
)
from boom_control.planner.split import CoreGate, SplitIteration, block_bounds
from boom_control.train.agent import Agent
from boom_control.train.config import AgentConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")
TINY = ModelConfig(enc_dim=32, mlp_dim=32, latent_dim=16, num_q=2)
PLAN = PlannerConfig(num_samples=65, num_elites=8, num_pi_trajs=5, iterations=3)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    model = WorldModel(5, 3, TINY, terminates=True).eval()
    consts = PlanConstants.build(PLAN, 3, 0.99, 2, CPU, terminates=True)
    z = model.encode(torch.randn(1, 5)).detach()
    noise = draw_noise(consts, CPU, torch.Generator().manual_seed(seed + 1))
    return model, consts, z, noise


def _assert_same_plan(ref, out, atol=0.0):
    for a, b in zip(ref[:3], out[:3], strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=0.0)
    torch.testing.assert_close(ref[3].mean, out[3].mean, atol=atol, rtol=0.0)


def test_block_bounds_cover_rows_evenly():
    assert block_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert block_bounds(512, 2) == [(0, 256), (256, 512)]
    assert block_bounds(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    for bad in (0, 11):
        with pytest.raises(ValueError, match="cannot split"):
            block_bounds(10, bad)


@pytest.mark.parametrize(("threads", "blocks"), [(2, None), (3, 3), (2, 7)])
def test_split_plan_equals_one_batch(threads, blocks):
    model, consts, z, noise = _setup()
    split = SplitIteration(threads, blocks)
    try:
        with torch.no_grad():
            ref = plan(model, z, initial_state(consts, CPU), consts, False, noise)
            for _ in range(2):  # the first call traces in this thread, later ones spread
                out = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
                _assert_same_plan(ref, out, atol=1e-6)
    finally:
        split.close()


def test_blocks_run_on_worker_threads_in_the_callers_context():
    """Worker threads enter no_grad and the given context themselves (both are per
    thread); while the gate is closed every block runs in the calling thread."""
    model, consts, z, noise = _setup()
    seen: list[tuple[int, bool, bool]] = []
    flag = threading.local()

    @contextlib.contextmanager
    def context():
        flag.inside = True
        try:
            yield
        finally:
            flag.inside = False

    def value_fn(*args):
        time.sleep(0.02)  # time for the worker to take a block too
        seen.append(
            (threading.get_ident(), torch.is_grad_enabled(), getattr(flag, "inside", False))
        )
        return estimate_value(*args)

    gate = CoreGate()
    split = SplitIteration(2, 4, value_fn=value_fn, context=context, gate=gate)
    try:
        with torch.no_grad():
            first = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
            seen.clear()
            spread = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
            threads_spread = {ident for ident, _, _ in seen}
            seen_spread = list(seen)
            seen.clear()
            with gate.closed():
                alone = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
    finally:
        split.close()
    main = threading.get_ident()
    assert len(seen_spread) == split.blocks * consts.iterations == 4 * consts.iterations
    assert len(threads_spread) == 2 and main in threads_spread
    assert all(not grad and inside for _, grad, inside in seen_spread)
    assert {ident for ident, _, _ in seen} == {main}
    _assert_same_plan(first, spread)  # identical, wherever the blocks ran
    _assert_same_plan(first, alone)


def test_workers_join_when_the_gate_opens_mid_iteration():
    """A gate that opens while the calling thread is inside a block lets a waiting worker
    take the next block at once, in the same iteration; a gate that never opens leaves
    every block to the calling thread."""
    model, consts, z, noise = _setup()
    consts = dataclasses.replace(consts, iterations=1)
    noise = noise._replace(samples=noise.samples[:1], value_pi=noise.value_pi[:1])
    runs: list[tuple[int, float, float]] = []

    def value_fn(*args):
        start = time.perf_counter()
        time.sleep(0.15)
        runs.append((threading.get_ident(), start, time.perf_counter()))
        return estimate_value(*args)

    gate = CoreGate()
    split = SplitIteration(2, 2, value_fn=value_fn, gate=gate)
    never = SplitIteration(2, 2, value_fn=value_fn, gate=CoreGate(opened=False))
    try:
        with torch.no_grad():
            ref = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
            runs.clear()
            shut = threading.Event()

            opened: list[float] = []

            def occupy() -> None:  # as an overlapped update does, for 50 ms
                with gate.closed():
                    shut.set()
                    time.sleep(0.05)
                    opened.append(time.perf_counter())  # the gate opens right after

            occupant = threading.Thread(target=occupy)
            occupant.start()
            shut.wait()
            out = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
            occupant.join()
            joined = list(runs)
            runs.clear()
            plan(model, z, initial_state(consts, CPU), consts, False, noise, never)
            plan(model, z, initial_state(consts, CPU), consts, False, noise, never)
    finally:
        split.close()
        never.close()
    main = threading.get_ident()
    assert len(joined) == 2 and {ident for ident, _, _ in joined} == {main, joined[1][0]}
    (_, start_a, end_a), (_, start_b, _) = sorted(joined, key=lambda r: r[1])
    # the worker waited for the gate (open after 50 ms), then started while block 1 ran
    assert start_a < start_b and opened[0] <= start_b < end_a
    assert {ident for ident, _, _ in runs} == {main}
    _assert_same_plan(ref, out)


def test_an_error_in_a_block_leaves_no_worker_waiting():
    model, consts, z, noise = _setup()
    calls: list[int] = []

    def value_fn(*args):
        calls.append(1)
        if len(calls) > 2:  # the first iteration (traced in the calling thread) succeeds
            raise RuntimeError("block failed")
        return estimate_value(*args)

    split = SplitIteration(2, 2, value_fn=value_fn, gate=CoreGate(opened=False))
    with torch.no_grad(), pytest.raises(RuntimeError, match="block failed"):
        plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
    closer = threading.Thread(target=split.close)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive()


def test_split_compiled_matches_eager():
    model, consts, z, noise = _setup(seed=2)
    split = SplitIteration(2, value_fn=compile_fn(estimate_value), refit_fn=compile_fn(refit))
    try:
        with torch.no_grad():
            ref = plan(model, z, initial_state(consts, CPU), consts, False, noise)
            for _ in range(2):
                out = plan(model, z, initial_state(consts, CPU), consts, False, noise, split)
                _assert_same_plan(ref, out, atol=1e-5)
    finally:
        split.close()


def test_agent_planner_threads_option():
    with pytest.raises(ValueError, match="planner.threads"):
        PlannerConfig(threads=0)
    with pytest.raises(ValueError, match="planner.threads"):
        PlannerConfig(num_samples=8, num_elites=4, num_pi_trajs=2, threads=9)
    agents = []
    for threads in (1, 2):
        torch.manual_seed(0)
        cfg = PlannerConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=2)
        cfg = dataclasses.replace(cfg, threads=threads)
        agents.append(Agent(5, 3, 100, TINY, cfg, AgentConfig(batch_size=16), CPU))
    two = agents[1]
    assert isinstance(two.planner.iteration, SplitIteration)
    obs = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    outs = []
    for agent in agents:
        g = torch.Generator().manual_seed(4)
        outs.append(agent.act(obs, agent.initial_plan_state(), eval_mode=False, generator=g))
    for a, b in zip(outs[0][:3], outs[1][:3], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    two.close()


def test_agent_blocks_yield_to_a_running_update(monkeypatch):
    """On 2 CPUs with a 1-thread update running, two planner threads would make three busy
    threads: the blocks then run in the planning thread; with more CPUs they spread."""
    import boom_control.planner.learner as learner_module

    cfg = PlannerConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=2, threads=2)
    for cpus, spread_beside_update in ((2, False), (3, True)):
        monkeypatch.setattr(learner_module, "usable_cpus", lambda cpus=cpus: cpus)
        agent = Agent(5, 3, 100, TINY, cfg, AgentConfig(batch_size=16), CPU)
        gate = agent.planner.gate
        assert agent.planner.iteration._gate is gate
        assert gate.is_open()
        during: list[bool] = []

        def update_step(batch, during=during, gate=gate):
            during.append(gate.is_open())
            return {}

        monkeypatch.setattr(agent, "_update_step", update_step)
        agent.update(None)
        assert during == [spread_beside_update] and gate.is_open()
        agent.close()
    # fewer CPUs than planner threads: the workers never take a block
    monkeypatch.setattr(learner_module, "usable_cpus", lambda: 1)
    agent = Agent(5, 3, 100, TINY, cfg, AgentConfig(batch_size=16), CPU)
    assert not agent.planner.gate.is_open()
    agent.close()
