"""The learner's whole-plan ONNX program over live weights: the torch planner's plans on the
same noise, weights changed in place or replaced are seen, one export per architecture,
concurrent plans, and when the learner uses it."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.planner.learner import LearnerPlanner
from boom_control.train.agent import Agent
from boom_control.train.config import AgentConfig

pytest.importorskip("onnxruntime")

CPU = torch.device("cpu")
TINY = ModelConfig(enc_dim=32, mlp_dim=48, latent_dim=16, num_q=5, mish="fast")
PLAN = PlannerConfig(num_samples=65, num_elites=8, num_pi_trajs=5, iterations=3)
ATOL = 2e-5
"""float32 rounding of a different operator order (observed ~1e-7)."""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("BOOM_CACHE_DIR", str(folder))
    return folder / "plans"


def _model(seed: int = 0, terminates: bool = True, cfg: ModelConfig = TINY) -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(5, 3, cfg, terminates=terminates).eval()


def _planner(
    model: WorldModel, program: str, plan: PlannerConfig = PLAN, terminates=True, gamma=0.99
):
    cfg = dataclasses.replace(plan, program=program)
    return LearnerPlanner(cfg, 3, gamma, model.cfg.num_q, CPU, terminates, model)


def _assert_same_plans(a: LearnerPlanner, b: LearnerPlanner, z: torch.Tensor, steps: int = 4):
    """Warm-started plans of ``a`` and ``b`` on the same noise, in both modes."""
    for eval_mode in (True, False):
        sa, sb = a.initial_state(), b.initial_state()
        for t in range(steps):
            with torch.no_grad():
                ra = a.plan(z, sa, eval_mode, torch.Generator().manual_seed(t))
                rb = b.plan(z, sb, eval_mode, torch.Generator().manual_seed(t))
            for x, y in zip(ra[:3], rb[:3], strict=True):
                torch.testing.assert_close(x, y, atol=ATOL, rtol=0)
            torch.testing.assert_close(ra[3].mean, rb[3].mean, atol=ATOL, rtol=0)
            assert bool(ra[3].valid) and bool(rb[3].valid)
            sa, sb = ra[3], rb[3]


@pytest.mark.parametrize("terminates", [True, False])
@pytest.mark.parametrize("mish", ["fast", "exact"])
def test_program_plans_like_the_torch_planner(cache, terminates, mish):
    model = _model(terminates=terminates, cfg=dataclasses.replace(TINY, mish=mish))
    onnx = _planner(model, "onnx", terminates=terminates)
    torch_planner = _planner(model, "torch", terminates=terminates)
    assert onnx.program is not None and torch_planner.program is None
    z = model.encode(torch.randn(1, 5)).detach()
    _assert_same_plans(onnx, torch_planner, z)


def test_training_action_is_drawn_around_the_plan(cache):
    model = _model()
    planner = _planner(model, "onnx")
    z = model.encode(torch.randn(1, 5)).detach()
    with torch.no_grad():
        act, mu, std, _ = planner.plan(z, planner.initial_state(), False, torch.Generator())
        ev, ev_mu, _, _ = planner.plan(z, planner.initial_state(), True, torch.Generator())
    torch.testing.assert_close(ev, ev_mu)
    torch.testing.assert_close(mu, ev_mu)
    assert not torch.equal(act, mu) and bool((std > 0).all())
    assert bool((act.abs() <= 1).all())


def test_program_follows_weights_changed_in_place_or_replaced(cache):
    model = _model()
    onnx, reference = _planner(model, "onnx"), _planner(model, "torch")
    z = model.encode(torch.randn(1, 5)).detach()
    with torch.no_grad():
        before = onnx.plan(z, onnx.initial_state(), True, torch.Generator().manual_seed(0))[1]
    # an optimiser step changes the weights in place
    optim = torch.optim.Adam(model.parameters(), lr=0.05)
    loss = sum(p.square().sum() for p in model.parameters())
    loss.backward()
    optim.step()
    with torch.no_grad():
        after = onnx.plan(z, onnx.initial_state(), True, torch.Generator().manual_seed(0))[1]
    assert (after - before).abs().max() > 1e-3
    _assert_same_plans(onnx, reference, z, steps=2)
    # load_state_dict copies into the same storage; a tensor replaced gets a new one
    model.load_state_dict(_model(seed=7).state_dict())
    _assert_same_plans(onnx, reference, z, steps=2)
    with torch.no_grad():
        layer = model._dynamics[0].linear
        layer.weight = torch.nn.Parameter(layer.weight.detach() * 1.5)
    _assert_same_plans(onnx, reference, z, steps=2)


def test_one_export_per_architecture(cache):
    first = _planner(_model(seed=0), "onnx")
    second_model = _model(seed=1)
    second = _planner(second_model, "onnx")
    assert len(list(cache.glob("bound-*.onnx"))) == 1  # same architecture: read back
    z = second_model.encode(torch.randn(1, 5)).detach()
    _assert_same_plans(second, _planner(second_model, "torch"), z, steps=2)
    other = dataclasses.replace(PLAN, num_samples=33)
    _planner(second_model, "onnx", plan=other)
    assert len(list(cache.glob("bound-*.onnx"))) == 2
    assert not list(cache.glob("*.tmp"))
    del first


def test_damaged_cache_file_is_exported_again(cache):
    _planner(_model(), "onnx")
    (path,) = cache.glob("bound-*.onnx")
    path.write_bytes(b"not a model")
    model = _model(seed=3)
    _assert_same_plans(_planner(model, "onnx"), _planner(model, "torch"), torch.randn(1, 16), 2)


def test_concurrent_plans_equal_sequential_ones(cache):
    model = _model()
    planner = _planner(model, "onnx")
    zs = [model.encode(torch.randn(1, 5)).detach() for _ in range(4)]

    def run(i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(i)
        with torch.no_grad():
            return planner.plan(zs[i], planner.initial_state(), True, g)[1]

    sequential = [run(i) for i in range(4)]
    results: dict[int, torch.Tensor] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, run(i))) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        torch.testing.assert_close(results[i], sequential[i], atol=0, rtol=0)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_when_the_learner_plans_with_the_program(cache, one_thread):
    model = _model()
    assert _planner(model, "auto").program is not None  # CPU, fp32, one thread
    torch.set_num_threads(2)
    assert _planner(model, "auto").program is None  # torch's two threads plan faster
    assert _planner(model, "onnx").program is not None
    torch.set_num_threads(1)
    split = dataclasses.replace(PLAN, threads=2)
    assert _planner(model, "auto", plan=split).program is None
    bf16 = dataclasses.replace(PLAN, precision="bf16")
    assert _planner(model, "auto", plan=bf16).program is None
    with pytest.raises(ValueError, match="program=onnx plans on a CPU in fp32"):
        _planner(model, "onnx", plan=bf16)
    with pytest.raises(ValueError, match="planner.program"):
        PlannerConfig(program="tensorrt")


def test_agent_acts_through_the_program_by_default(cache, one_thread):
    agent = Agent(5, 3, 100, TINY, PLAN, AgentConfig(batch_size=4), CPU, terminates=True)
    assert agent.planner.program is not None
    obs = torch.randn(5).numpy()
    action, mu, std, state = agent.act(obs, agent.initial_plan_state(), eval_mode=False)
    assert action.shape == mu.shape == std.shape == (3,) and bool(state.valid)
    reference = _planner(agent.model, "torch", gamma=agent.gamma)
    z = agent.model.encode(torch.as_tensor(obs).reshape(1, -1)).detach()
    _assert_same_plans(agent.planner, reference, z, steps=2)
