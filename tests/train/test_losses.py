"""World-model and BOOM policy losses, and the Agent's update / act / state_dict."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel
from boom_control.planner.config import PlannerConfig
from boom_control.train.agent import Agent
from boom_control.train.buffer import Batch
from boom_control.train.config import AgentConfig
from boom_control.train.losses import (
    LossConstants,
    alignment_log_lik,
    alignment_weights,
    policy_loss,
    td_target,
    update_scale,
    world_model_loss,
)

torch.set_num_threads(1)
CPU = torch.device("cpu")
SMALL = ModelConfig(size="test", enc_dim=32, mlp_dim=32, latent_dim=16, num_q=3)
PLAN = PlannerConfig(num_samples=32, num_elites=4, num_pi_trajs=4, iterations=2)
H, B, O, A = 3, 16, 9, 4


def _batch(seed: int = 0, terminated: float = 0.0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        obs=torch.randn(H + 1, B, O, generator=g),
        action=torch.rand(H, B, A, generator=g) * 2 - 1,
        mu=torch.rand(H, B, A, generator=g) * 2 - 1,
        reward=torch.randn(H, B, generator=g),
        terminated=torch.full((H, B), terminated),
    )


def _setup(terminates: bool = False, **agent_kw) -> tuple[WorldModel, LossConstants]:
    model = WorldModel(O, A, SMALL, terminates=terminates)
    return model, LossConstants.build(AgentConfig(**agent_kw), model, H, 0.99, CPU)


def test_value_and_reward_losses_normalised_at_uniform_logits():
    torch.manual_seed(0)
    model, c = _setup()
    with torch.no_grad():  # reward logits all zero, like the Q heads at init
        model._reward[-1].weight.zero_()
    _, zs, info = world_model_loss(model, _batch(), c)
    # Uniform logits: CE = log(101) for any target, so each loss = log(101) * sum(rho^t) / H.
    expected = math.log(101) * (1 + 0.5 + 0.25) / 3
    assert info["value_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert info["reward_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert zs.shape == (H, B, 16) and not zs.requires_grad


def test_world_model_loss_gradients_skip_the_policy():
    torch.manual_seed(0)
    model, c = _setup(terminates=True)
    loss, _, info = world_model_loss(model, _batch(terminated=1.0), c)
    loss.backward()
    assert torch.isfinite(loss) and "termination_loss" in info
    assert all(p.grad is None for p in model.pi_parameters())
    assert all(p.grad is None for p in model._target_Qs.parameters())
    assert model._encoder[0].linear.weight.grad.abs().sum() > 0


def test_td_target_masks_terminal_bootstrap():
    torch.manual_seed(0)
    batch = _batch(terminated=1.0)
    for terminates in (True, False):
        model, c = _setup(terminates=terminates)
        with torch.no_grad():
            for p in model._target_Qs.parameters():
                p.add_(torch.randn_like(p) * 0.5)
        next_z = model.encode(batch.obs[1:])
        target = td_target(model, next_z, batch.reward, batch.terminated, c).squeeze(-1)
        if terminates:
            torch.testing.assert_close(target, batch.reward)
        else:
            assert not torch.allclose(target, batch.reward)


def test_running_scale_update():
    q0 = torch.linspace(0, 100, 101).unsqueeze(-1)
    scale = update_scale(torch.tensor(1.0), q0, 0.01)
    assert scale.item() == pytest.approx(1.0 + 0.01 * (95.0 - 5.0 - 1.0), rel=1e-5)
    # The spread is floored at 1.
    assert update_scale(torch.tensor(3.0), torch.zeros(8, 1), 0.5).item() == pytest.approx(2.0)


def test_alignment_weights_sum_to_one_per_step():
    q = torch.randn(H, B) * 5
    w = alignment_weights(q, 1.0)
    torch.testing.assert_close(w.sum(1), torch.ones(H))
    assert (w[:, q[0].argmax()] > 0).all() and w[0].argmax() == q[0].argmax()


def test_alignment_log_lik_closed_form():
    action = torch.rand(5, A, dtype=torch.float64) * 2 - 1
    mu = torch.rand(5, A, dtype=torch.float64) * 2 - 1
    log_std = torch.tensor([-5.0, -1.0, 0.0, 0.5], dtype=torch.float64).expand(5, A)
    got = alignment_log_lik(action, mu, log_std, 0.05)
    for b in range(5):
        total = 0.0
        for i in range(A):
            sigma = max(math.exp(log_std[b, i].item()), 0.05)
            e = (action[b, i].item() - mu[b, i].item()) / sigma
            total += -(e**2) / 2 - math.log(sigma)
        assert got[b].item() == pytest.approx(A * (total - 0.5 * math.log(2 * math.pi)))


def _policy(model, c, scale, seed=0):
    torch.manual_seed(seed)
    batch = _batch()
    zs = model.encode(batch.obs[:-1]).detach()
    return policy_loss(model, zs, batch.mu, torch.tensor(scale), c)


def test_alignment_gate_and_lambda_zero_baseline():
    model, c = _setup()
    with torch.no_grad():
        for p in model._Qs.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    loss, new_scale, info = _policy(model, c, 1.0)
    assert new_scale.item() <= 2.0 and info["pi_align_loss"].item() == 0.0
    torch.testing.assert_close(loss, info["pi_q_loss"])
    loss, new_scale, info = _policy(model, c, 10.0)
    assert new_scale.item() > 2.0 and info["pi_align_loss"].item() != 0.0
    assert c.align_weight == pytest.approx(A / 50)
    torch.testing.assert_close(loss, info["pi_q_loss"] + A / 50 * info["pi_align_loss"])
    # lambda = 0: TD-MPC2's policy loss, whatever the scale.
    _, c0 = _setup(align_lambda=0.0)
    loss0, _, info0 = _policy(model, c0, 10.0)
    torch.testing.assert_close(loss0, info0["pi_q_loss"])
    torch.testing.assert_close(info0["pi_q_loss"], info["pi_q_loss"])


def test_policy_gradient_reaches_only_the_policy():
    model, c = _setup()
    loss, _, _ = _policy(model, c, 10.0)
    loss.backward()
    assert all(p.grad is None for p in model._Qs.parameters())
    assert all(p.grad is None for p in model.encoder_parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.pi_parameters())


def _agent(seed: int = 0, **agent_kw) -> Agent:
    torch.manual_seed(seed)
    return Agent(O, A, 500, SMALL, PLAN, AgentConfig(batch_size=B, **agent_kw), CPU)


def test_discount_override_reaches_targets_and_planner():
    """agent.discount replaces the episode-length rule in the TD targets and plan returns."""
    agent = _agent(discount=0.999)
    assert agent.gamma == 0.999 and agent.loss_consts.gamma == 0.999
    assert agent.planner.consts.terminal_discount == pytest.approx(0.999**PLAN.horizon)
    with pytest.raises(ValueError, match="agent.discount"):
        AgentConfig(discount=1.0)


def test_agent_update_changes_parameters_and_is_finite():
    agent = _agent()
    assert agent.gamma == pytest.approx(0.99) and agent.running_scale.item() == 1.0
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    out = agent.update(_batch())
    assert all(math.isfinite(v) for v in out.values()), out
    for key in ("consistency_loss", "reward_loss", "value_loss", "pi_loss", "q_scale"):
        assert key in out
    after = agent.model.state_dict()
    for name in (
        "_encoder.0.linear.weight",
        "_dynamics.0.linear.weight",
        "_Qs.weight.2",
        "_pi.0.linear.weight",
        "_target_Qs.weight.2",
    ):
        assert not torch.equal(before[name], after[name]), name
    # Polyak: target moved 1% of the way to the online heads after the step.
    torch.testing.assert_close(
        after["_target_Qs.weight.0"],
        torch.lerp(before["_target_Qs.weight.0"], after["_Qs.weight.0"], 0.01),
    )
    assert not agent.model.training


def test_frozen_world_model_only_the_policy_learns():
    """freeze_world_model: every world-model tensor (target Q included) stays as it was,
    the policy moves, and the world-model losses are still reported."""
    agent = _agent(freeze_world_model=True)
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    for seed in range(3):
        out = agent.update(_batch(seed))
    after = agent.model.state_dict()
    policy = {k for k in before if k.startswith("_pi.")}
    assert policy and len(policy) < len(before)
    for name, value in before.items():
        assert torch.equal(value, after[name]) != (name in policy), name
    for key in ("consistency_loss", "reward_loss", "value_loss", "pi_loss"):
        assert math.isfinite(out[key]), key
    assert "world_model_grad_norm" not in out
    assert agent.optim.state_dict()["state"] == {}  # the world model's Adam never stepped
    assert not any(p.grad is not None for p in agent.model.model_parameters())


def test_frozen_latent_only_heads_and_policy_learn():
    """freeze_latent: encoder and dynamics stay as they were, the reward / Q / termination
    heads and the policy move, and the optimiser state still loads into an agent without
    it (a run may switch it on and off between resumes)."""
    agent = _agent(freeze_latent=True)
    before = {k: v.clone() for k, v in agent.model.state_dict().items()}
    for seed in range(3):
        out = agent.update(_batch(seed))
    after = agent.model.state_dict()
    latent = {k for k in before if k.startswith(("_encoder.", "_dynamics."))}
    assert latent and all(torch.equal(before[k], after[k]) for k in latent)
    heads = ("_reward.0.linear.weight", "_Qs.weight.0", "_target_Qs.weight.0")
    for name in (*heads, "_pi.0.linear.weight"):
        assert not torch.equal(before[name], after[name]), name
    assert math.isfinite(out["world_model_grad_norm"]) and out["world_model_grad_norm"] > 0
    assert all(p.grad is None for p in agent.model.latent_parameters())
    other = _agent()
    other.load_state_dict(agent.state_dict())
    other.update(_batch(4))  # the full world model learns on from the heads' Adam state


def test_agent_act_shapes_and_policy_only_mode():
    agent = _agent()
    obs = np.random.default_rng(0).standard_normal(O)
    state = agent.initial_plan_state()
    action, mu, std, state = agent.act(obs, state, eval_mode=False)
    assert action.shape == mu.shape == std.shape == (A,) and action.dtype == np.float32
    assert bool(state.valid) and np.all(np.abs(action) <= 1)
    action, mu, std, same = agent.act(obs, state, eval_mode=True, use_planner=False)
    np.testing.assert_array_equal(action, mu)
    np.testing.assert_array_equal(std, np.zeros(A, np.float32))
    assert same is state
    # Eval policy action is deterministic.
    np.testing.assert_array_equal(action, agent.act(obs, state, True, use_planner=False)[0])


def test_loaded_optimiser_state_keeps_this_configs_learning_rates():
    """A resumed run may change agent.lr / pi_eps: the Adam moments load, the groups' lr and
    eps stay this config's (loading would otherwise restore the saved ones)."""
    agent = _agent(0)
    agent.update(_batch(1))
    other = _agent(1, lr=1e-5, pi_eps=1e-6)
    other.load_state_dict(agent.state_dict())
    assert [g["lr"] for g in other.optim.param_groups] == pytest.approx([3e-6, 1e-5])
    assert other.pi_optim.param_groups[0]["lr"] == 1e-5
    assert other.pi_optim.param_groups[0]["eps"] == 1e-6
    moments = other.optim.state_dict()["state"]
    assert moments and all(float(m["step"]) == 1.0 for m in moments.values())


def test_prime_running_scale_sets_the_scale_from_the_loaded_q_values():
    """Fine-tuning starts S at the spread of the loaded Q, not at 1 (a trained Q spans
    far more than 1, and S = 1 would make the policy's Q term that much too strong)."""
    agent = _agent(0)
    with torch.no_grad():  # sharper heads, output layers (zero at init) drawn: a spread > 1
        for param in agent.model._Qs.parameters():
            param.normal_(0.0, 0.3) if not param.any() else param.mul_(3.0)
    batch = _batch(3)
    torch.manual_seed(5)
    scale = agent.prime_running_scale(batch)
    torch.manual_seed(5)
    with torch.no_grad():
        z = agent.model.encode(batch.obs[0])
        q = agent.model.Q(z, agent.model.pi(z)[0], return_type="min")
    lo, hi = torch.quantile(q.flatten(), torch.tensor([0.05, 0.95]))
    assert float(hi - lo) > 2.0 and scale == pytest.approx(float(hi - lo))
    assert agent.running_scale.item() == pytest.approx(scale)


def test_state_dict_round_trip_reproduces_outputs():
    agent = _agent(0)
    agent.update(_batch(1))
    agent.running_scale.fill_(3.5)
    buf = io.BytesIO()
    torch.save(agent.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    other = _agent(7)
    other.load_state_dict(state)
    assert other.running_scale.item() == 3.5
    obs = np.random.default_rng(1).standard_normal(O)
    outs = []
    for ag in (agent, other):
        torch.manual_seed(11)
        act = ag.act(obs, ag.initial_plan_state(), eval_mode=False)
        torch.manual_seed(12)
        losses = ag.update(_batch(2))
        outs.append((act, losses))
    for x, y in zip(outs[0][0][:3], outs[1][0][:3], strict=True):
        np.testing.assert_array_equal(x, y)
    assert outs[0][1] == outs[1][1]
    for k, v in agent.model.state_dict().items():
        torch.testing.assert_close(v, other.model.state_dict()[k], rtol=0, atol=0)
