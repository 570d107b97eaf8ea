"""Speed options of the learner: fast Mish, bf16 planning, torch.compile.

Each option must compute the same maths as the default path: the fast Mish and the
compiled code agree with eager fp32 to rounding, bf16 planning to a bounded error.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from boom_control.model.cast_weights import CastWeights
from boom_control.model.config import ModelConfig
from boom_control.model.ops import mish_fast
from boom_control.model.world_model import WorldModel
from boom_control.planner.compiled import compile_fn, release_gil_in_cpu_kernels
from boom_control.planner.config import PlannerConfig
from boom_control.planner.mppi import (
    PlanConstants,
    draw_noise,
    estimate_value,
    initial_state,
    plan,
    plan_iteration,
)
from boom_control.train.agent import Agent
from boom_control.train.buffer import Batch
from boom_control.train.config import AgentConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")
TINY = ModelConfig(enc_dim=32, mlp_dim=32, latent_dim=16, num_q=2)
SMALL_PLAN = PlannerConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=2)


def _agent(model_cfg=TINY, planner_cfg=SMALL_PLAN, agent_cfg=None, seed=0) -> Agent:
    torch.manual_seed(seed)
    agent_cfg = agent_cfg or AgentConfig(batch_size=16)
    return Agent(5, 3, 100, model_cfg, planner_cfg, agent_cfg, CPU)


def _batch(b=16, h=3, obs=5, act=3, seed=1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(h + 1, b, obs, generator=g),
        action=torch.rand(h, b, act, generator=g) * 2 - 1,
        mu=torch.rand(h, b, act, generator=g) * 2 - 1,
        reward=torch.randn(h, b, generator=g),
        terminated=torch.zeros(h, b),
    )


def test_fast_mish_matches_torch_mish():
    x = torch.cat([torch.linspace(-100, 100, 20001), torch.randn(10000) * 3])
    ref = F.mish(x.double())
    err = (mish_fast(x).double() - ref).abs() / ref.abs().clamp_min(1.0)
    assert err.max() < 1e-6
    assert torch.isfinite(mish_fast(torch.tensor([-1e30, 1e30]))).all()


def test_fast_mish_gradient():
    x = torch.randn(40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mish_fast, (x,))
    x32 = (torch.randn(1000) * 4).requires_grad_()
    (g_fast,) = torch.autograd.grad(mish_fast(x32).sum(), x32)
    x64 = x32.detach().double().requires_grad_()
    (g_ref,) = torch.autograd.grad(F.mish(x64).sum(), x64)
    assert torch.allclose(g_fast.double(), g_ref, atol=1e-6)


def test_fast_mish_world_model_matches_exact():
    torch.manual_seed(0)
    exact = WorldModel(5, 3, TINY)
    fast = WorldModel(5, 3, dataclasses.replace(TINY, mish="fast"))
    fast.load_state_dict(exact.state_dict())
    z, a = torch.rand(7, 16), torch.rand(7, 3) * 2 - 1
    for fn in ("next", "reward"):
        assert torch.allclose(getattr(fast, fn)(z, a), getattr(exact, fn)(z, a), atol=1e-6)
    eps = torch.randn(7, 3)
    assert torch.allclose(fast.pi(z, eps)[0], exact.pi(z, eps)[0], atol=1e-6)
    heads = torch.tensor([1, 0])
    assert torch.allclose(fast.Q(z, a, "all", heads=heads), exact.Q(z, a, "all", heads=heads))


def test_fast_mish_update_matches_exact():
    exact = _agent()
    fast = _agent(model_cfg=dataclasses.replace(TINY, mish="fast"))
    fast.load_state_dict(exact.state_dict())
    batch = _batch()
    for _ in range(3):
        torch.manual_seed(5)
        m_exact = exact.update(batch)
        torch.manual_seed(5)
        m_fast = fast.update(batch)
    for key, value in m_exact.items():
        assert m_fast[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    for p_exact, p_fast in zip(exact.model.parameters(), fast.model.parameters(), strict=True):
        assert torch.allclose(p_exact, p_fast, atol=1e-5)


def test_bf16_planning_values_close_and_outputs_fp32():
    agent = _agent(planner_cfg=SMALL_PLAN)
    for _ in range(5):  # give the heads some non-trivial values
        agent.update(_batch())
    model, consts = agent.model, agent.planner.consts
    torch.manual_seed(3)
    z = model.encode(torch.randn(1, 5)).detach().expand(consts.num_samples, -1)
    actions = torch.rand(consts.horizon, consts.num_samples, 3) * 2 - 1
    eps, heads = torch.randn(consts.num_samples, 3), torch.tensor([0, 1])
    with torch.no_grad():
        ref = estimate_value(model, z, actions, consts, eps, heads)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = estimate_value(model, z, actions, consts, eps, heads)
    assert low.dtype == torch.float32
    assert (low - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-3

    bf16 = _agent(planner_cfg=dataclasses.replace(SMALL_PLAN, precision="bf16"))
    bf16.load_state_dict(agent.state_dict())
    obs = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    action, _, _, state = bf16.act(obs, bf16.initial_plan_state(), eval_mode=False)
    assert action.dtype == np.float32 and np.all(np.abs(action) <= 1.0)
    assert state.mean.dtype == torch.float32 and torch.isfinite(state.mean).all()


@pytest.mark.parametrize("compiled", [False, True])
def test_precast_bf16_weights_plan_bit_identically(compiled: bool):
    agent = _agent(planner_cfg=dataclasses.replace(SMALL_PLAN, precision="bf16"))
    model, consts = agent.model, agent.planner.consts
    cast = CastWeights(model)
    weights = [m.weight for m in cast.model().modules() if isinstance(m, torch.nn.Linear)]
    assert weights and all(w.dtype == torch.bfloat16 for w in weights)
    iteration = compile_fn(plan_iteration) if compiled else plan_iteration

    def plans(m: torch.nn.Module, seed: int):
        z = model.encode(torch.randn(1, 5, generator=torch.Generator().manual_seed(seed)))
        noise = draw_noise(consts, CPU, torch.Generator().manual_seed(seed))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return plan(m, z, initial_state(consts, CPU), consts, False, noise, iteration)

    for step in range(3):  # the copy follows every update of the source
        ref, out = plans(model, step), plans(cast.model(), step)
        for a, b in zip([*ref[:3], ref[3].mean], [*out[:3], out[3].mean], strict=True):
            assert torch.equal(a, b)
        agent.update(_batch(seed=step))
    # the agent plans on such a copy: its action equals autocast on the fp32 weights
    assert agent.planner.cast is not None
    obs = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    torch.manual_seed(7)
    action = agent.act(obs, agent.initial_plan_state(), eval_mode=False)[0]
    torch.manual_seed(7)
    z = model.encode(torch.as_tensor(obs).reshape(1, -1))
    noise = draw_noise(consts, CPU)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = plan(model, z, initial_state(consts, CPU), consts, False, noise)[0]
    np.testing.assert_array_equal(action, expected.numpy())


def test_precast_weights_follow_the_acting_copy_with_overlap():
    """With overlap the planner's pre-cast copy tracks the acting weights: it changes at
    ``sync_acting``, not while an update changes the learner."""
    agent = _agent(planner_cfg=dataclasses.replace(SMALL_PLAN, precision="bf16"))
    agent.overlap(seed=3)
    assert agent.planner.cast is not None and agent.planner.cast.source is agent.act_model
    obs = np.random.default_rng(1).standard_normal(5).astype(np.float32)
    consts = agent.planner.consts

    def acted() -> np.ndarray:
        g = torch.Generator().manual_seed(11)
        return agent.act(obs, agent.initial_plan_state(), eval_mode=False, generator=g)[0]

    def expected(model: torch.nn.Module) -> np.ndarray:
        z = model.encode(torch.as_tensor(obs).reshape(1, -1))
        noise = draw_noise(consts, CPU, torch.Generator().manual_seed(11))
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return plan(model, z, initial_state(consts, CPU), consts, False, noise)[0].numpy()

    before = acted()
    agent.update(_batch())
    np.testing.assert_array_equal(acted(), before)  # acting weights not synced yet
    agent.sync_acting()
    after = acted()
    np.testing.assert_array_equal(after, expected(agent.model))
    assert not np.array_equal(after, before)


def test_bf16_option_validated():
    with pytest.raises(ValueError):
        PlannerConfig(precision="fp16")
    with pytest.raises(ValueError):
        ModelConfig(mish="approx")


def test_compiled_plan_iteration_matches_eager():
    torch.manual_seed(0)
    model = WorldModel(5, 3, TINY).eval()
    consts = PlanConstants.build(SMALL_PLAN, 3, 0.99, 2, CPU)
    z = model.encode(torch.randn(1, 5)).detach()
    noise = draw_noise(consts, CPU, torch.Generator().manual_seed(1))
    compiled = compile_fn(plan_iteration)
    with torch.no_grad():
        ref = plan(model, z, initial_state(consts, CPU), consts, False, noise)
        out = plan(model, z, initial_state(consts, CPU), consts, False, noise, compiled)
    for a, b in zip(ref[:3], out[:3], strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(ref[3].mean, out[3].mean, atol=1e-5)


def test_compiled_cpu_kernels_release_the_gil():
    from torch._inductor import codecache

    assert release_gil_in_cpu_kernels()
    source = codecache.CppPythonBindingsCodeCache.call_entry_function.format("a, b")
    assert "PyEval_SaveThread" in source and "std::bind(kernel, a, b)" in source
    # kernels built from the patched bindings compute what eager computes
    fn = compile_fn(lambda x: torch.nn.functional.layer_norm(x * 2 + 1, (7,)).sigmoid())
    x = torch.randn(33, 7)
    assert torch.allclose(fn(x), torch.nn.functional.layer_norm(x * 2 + 1, (7,)).sigmoid())


@pytest.mark.slow
def test_compiled_update_matches_eager():
    eager = _agent()
    compiled = _agent(agent_cfg=AgentConfig(batch_size=16, compile=True))
    compiled.load_state_dict(eager.state_dict())
    batch = _batch()
    for _ in range(2):
        torch.manual_seed(5)
        m_eager = eager.update(batch)
        torch.manual_seed(5)
        m_compiled = compiled.update(batch)
    for key, value in m_eager.items():
        assert m_compiled[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


def test_bf16_update_close_to_fp32():
    fp32 = _agent()
    bf16 = _agent(agent_cfg=AgentConfig(batch_size=16, precision="bf16"))
    bf16.load_state_dict(fp32.state_dict())
    batch = _batch()
    torch.manual_seed(5)
    m_fp32 = fp32.update(batch)
    torch.manual_seed(5)
    m_bf16 = bf16.update(batch)
    for key in ("consistency_loss", "reward_loss", "value_loss", "pi_loss"):
        assert m_bf16[key] == pytest.approx(m_fp32[key], rel=0.05, abs=1e-3), key
    for p_fp32, p_bf16 in zip(fp32.model.parameters(), bf16.model.parameters(), strict=True):
        assert p_bf16.dtype == torch.float32
        assert torch.allclose(p_fp32, p_bf16, atol=1e-3)
    with pytest.raises(ValueError):
        AgentConfig(precision="fp8")


def test_adam_is_fused_and_states_saved_without_the_flag_load_fused():
    agent = _agent()
    for step in range(2):
        agent.update(_batch(seed=step))
    saved = copy.deepcopy(agent.state_dict())  # as a checkpoint file holds it
    for key in ("optim", "pi_optim"):  # as saved by the per-tensor implementation
        for group in saved[key]["param_groups"]:
            group["fused"] = None
    restored = _agent(seed=5)
    restored.load_state_dict(saved)
    for optim in (agent.optim, agent.pi_optim, restored.optim, restored.pi_optim):
        assert all(group["fused"] for group in optim.param_groups)
    torch.manual_seed(9)
    agent.update(_batch(seed=3))
    torch.manual_seed(9)
    restored.update(_batch(seed=3))
    for a, b in zip(agent.model.parameters(), restored.model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_takes_bf16_only_where_the_cpu_has_it(monkeypatch, native: bool):
    """precision=auto: bf16 on CPUs with AVX512-BF16/AMX, fp32 on the others (where bf16
    matmuls are emulated); the agent then plans exactly as with the explicit setting."""
    from boom_control import device as devices

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert devices.native_bf16(CPU) is native
    chosen = "bf16" if native else "fp32"
    assert devices.resolve_precision("auto", CPU) == chosen
    assert devices.resolve_precision("fp32", CPU) == "fp32"  # explicit settings are kept
    assert devices.resolve_precision("bf16", CPU) == "bf16"
    with pytest.raises(ValueError, match="auto"):
        devices.resolve_precision("fp16", CPU)

    auto = _agent(
        planner_cfg=dataclasses.replace(SMALL_PLAN, precision="auto"),
        agent_cfg=AgentConfig(batch_size=16, precision="auto"),
    )
    assert auto.planner_cfg.precision == auto.agent_cfg.precision == chosen
    assert isinstance(auto.planner.cast, CastWeights) is native
    explicit = _agent(
        planner_cfg=dataclasses.replace(SMALL_PLAN, precision=chosen),
        agent_cfg=AgentConfig(batch_size=16, precision=chosen),
    )
    obs = np.random.default_rng(3).standard_normal(5).astype(np.float32)
    torch.manual_seed(5)
    a, *_ = auto.act(obs, auto.initial_plan_state(), eval_mode=False)
    torch.manual_seed(5)
    b, *_ = explicit.act(obs, explicit.initial_plan_state(), eval_mode=False)
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="'auto'"):
        PlannerConfig(precision="half")


def test_cpu_without_bf16_instructions_is_not_native(monkeypatch):
    from boom_control import device as devices

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert devices.native_bf16(CPU)  # AMX tiles multiply bf16 too
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not devices.native_bf16(CPU)


def test_compile_auto_compiles_long_cpu_runs_only(monkeypatch):
    from boom_control.device import COMPILE_MIN_STEPS, resolve_compile

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_compile(True, None, cpu) and not resolve_compile(False, 10**9, cpu)
    monkeypatch.setenv("CXX", "c++")
    assert resolve_compile("auto", COMPILE_MIN_STEPS, cpu)
    assert not resolve_compile("auto", COMPILE_MIN_STEPS - 1, cpu)
    assert not resolve_compile("auto", None, cpu)  # an agent that only acts
    assert not resolve_compile("auto", 10**9, cuda)  # CUDA graphs do that job there
    monkeypatch.delenv("CXX")
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert not resolve_compile("auto", 10**9, cpu)  # no C++ compiler: eager
    with pytest.raises(ValueError, match="agent.compile"):
        AgentConfig(compile="yes")
    plan, learn = PlannerConfig(compile="auto"), AgentConfig(compile="auto")
    agent = Agent(5, 3, 100, TINY, plan, learn, torch.device("cpu"))  # not training
    assert agent.planner_cfg.compile is False and agent.agent_cfg.compile is False
