"""CUDA graphs for planning (planner.cuda_graph): what runs here, and the GPU checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from boom_control.device import precision_context
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.planner.cuda_graph import GraphedIteration, StaticGraph, _clone
from boom_control.planner.mppi import (
    IterState,
    PlanConstants,
    draw_noise,
    initial_state,
    plan,
    plan_iteration,
)
from boom_control.train.agent import Agent
from boom_control.train.config import AgentConfig

TINY = ModelConfig(enc_dim=32, mlp_dim=32, latent_dim=16, num_q=2)
PLAN = PlannerConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=3)


def test_static_graph_refuses_cpu_tensors():
    graph = StaticGraph(lambda x: x * 2)
    with pytest.raises(ValueError, match="CUDA graphs need CUDA tensors"):
        graph(torch.ones(3))
    assert not graph.captured


def test_outputs_are_copied_with_their_type():
    it = IterState(*(torch.full((2,), float(i)) for i in range(6)))
    out = _clone(it)
    assert isinstance(out, IterState) and all(torch.equal(a, b) for a, b in zip(out, it))
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(out, it))
    pair = _clone((torch.ones(1), torch.zeros(1)))
    assert type(pair) is tuple and len(pair) == 2
    assert torch.equal(_clone(torch.arange(3)), torch.arange(3))


def test_bf16_planning_context_can_skip_the_weight_cast_cache():
    with precision_context("bf16", torch.device("cpu"), cache=False)():
        assert torch.is_autocast_enabled("cpu") and not torch.is_autocast_cache_enabled()
    with precision_context("bf16", torch.device("cpu"))():
        assert torch.is_autocast_cache_enabled()


def test_cuda_graph_option_is_ignored_on_cpu():
    torch.manual_seed(0)
    cfg = dataclasses.replace(PLAN, cuda_graph=True)
    agent = Agent(5, 3, 100, TINY, cfg, AgentConfig(batch_size=16), torch.device("cpu"))
    assert agent.planner.iteration is plan_iteration
    obs = np.zeros(5, np.float32)
    action, _, _, _ = agent.act(obs, agent.initial_plan_state(), eval_mode=True)
    assert action.shape == (3,) and np.all(np.abs(action) <= 1)


@pytest.mark.gpu
def test_graphed_plan_equals_eager_and_sees_new_weights():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    model = WorldModel(5, 3, TINY, terminates=True).to(dev).eval()
    consts = PlanConstants.build(PLAN, 3, 0.99, 2, dev, terminates=True)
    graphed = GraphedIteration()
    for round_ in range(3):
        z = model.encode(torch.randn(1, 5, device=dev)).detach()
        noise = draw_noise(consts, dev, torch.Generator(dev).manual_seed(round_))
        with torch.no_grad():
            ref = plan(model, z, initial_state(consts, dev), consts, False, noise)
            out = plan(model, z, initial_state(consts, dev), consts, False, noise, graphed)
        for a, b in zip(ref[:3], out[:3], strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0.0)
        with torch.no_grad():  # change the weights in place: the next replay reads them
            for p in model.parameters():
                p.mul_(0.9).add_(0.01)


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("precision", "compiled"), [("fp32", False), ("bf16", False), ("fp32", True)]
)
def test_agent_cuda_graph_acts_like_eager_through_updates(precision, compiled):
    """CUDA graphs of the iteration (compiled with torch.compile too, when ``compiled``)
    act like the eager planner, also after in-place weight updates."""
    dev = torch.device("cuda")
    agents = []
    for graph in (False, True):
        torch.manual_seed(0)
        cfg = dataclasses.replace(
            PLAN, cuda_graph=graph, precision=precision, compile=graph and compiled
        )
        agents.append(Agent(5, 3, 100, TINY, cfg, AgentConfig(batch_size=16), dev))
    eager, graphed = agents
    graphed.load_state_dict(eager.state_dict())
    assert isinstance(graphed.planner.iteration, GraphedIteration)
    obs = np.random.default_rng(0).standard_normal(5).astype(np.float32)
    for step in range(3):
        outs = []
        for agent in agents:
            g = torch.Generator(dev).manual_seed(step)
            outs.append(agent.act(obs, agent.initial_plan_state(), eval_mode=False, generator=g))
        for a, b in zip(outs[0][:3], outs[1][:3], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4 if compiled else 1e-5)
        with torch.no_grad():
            for agent in agents:  # the same in-place change an optimiser step makes
                for p in agent.model.parameters():
                    p.add_(0.01)
