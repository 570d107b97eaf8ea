"""MPPI planner: a toy problem with a known optimum, warm start, fixed noise, real model."""

from __future__ import annotations

import pytest
import torch

from boom_control.model.config import ModelConfig
from boom_control.model.ops import make_bins, two_hot
from boom_control.model.world_model import WorldModel
from boom_control.planner.backends import override_constants
from boom_control.planner.config import PlannerConfig
from boom_control.planner.mppi import (
    PlanConstants,
    advance,
    draw_noise,
    initial_state,
    plan,
    plan_init,
    plan_iteration,
    plan_select,
)
from boom_control.planner.types import PlanState

torch.set_num_threads(1)
CPU = torch.device("cpu")


class PointMass:
    """1-D point mass with hand-set heads: z' = z + a, reward = -(z + a)^2, Q = -(z + a)^2.

    The policy always does nothing (a = 0), so the planner must find the optimum on its
    own: from z, the best first action is -z (clipped to [-1, 1]).
    """

    bins = make_bins(-10.0, 10.0, 101)

    @staticmethod
    def _logits(value: torch.Tensor) -> torch.Tensor:
        return torch.log(two_hot(value.squeeze(-1), -10.0, 10.0, 101) + 1e-12)

    def next(self, z, a):
        return z + a

    def reward(self, z, a):
        return self._logits(-((z + a) ** 2))

    def termination(self, z):
        return torch.full_like(z, -1.0)

    def pi(self, z, eps=None):
        return torch.zeros_like(z), {}

    def Q(self, z, a, return_type="min", target=False, heads=None, detach=False):
        return -((z + a) ** 2)


def _consts(**kw) -> PlanConstants:
    cfg = PlannerConfig(**kw)
    return PlanConstants.build(cfg, action_dim=1, gamma=0.99, num_q=2, device=CPU)


def test_toy_point_mass_reaches_known_optimum():
    torch.manual_seed(0)
    model, consts = PointMass(), _consts()
    for start in (0.5, -0.3, 0.8):
        z = torch.tensor([[start]])
        action, mu, std, state = plan(model, z, initial_state(consts, CPU), consts, True)
        assert torch.equal(action, mu)  # eval mode executes the mean
        assert abs(mu.item() + start) < 0.1, (start, mu.item())
        assert (std >= consts.min_std).all() and (std <= consts.max_std).all()
        # Once at the origin, later steps should stay put (first two planned steps; the
        # last one only enters through the bootstrap value).
        assert state.mean[0].abs().item() < 0.15
        assert state.mean[-1].item() == 0.0
    # Out of reach: the action saturates in the right direction.
    z = torch.tensor([[3.0]])
    _, mu, _, _ = plan(model, z, initial_state(consts, CPU), consts, True)
    assert mu.item() < -0.9


def test_plan_composes_iterations_and_shifts_warm_start():
    torch.manual_seed(1)
    model, consts = PointMass(), _consts()
    z = torch.tensor([[0.4]])
    state = PlanState(mean=torch.tensor([[0.1], [0.2], [0.3]]), valid=torch.tensor(True))
    noise = draw_noise(consts, CPU)
    action, mu, std, new_state = plan(model, z, state, consts, False, noise=noise)

    it = plan_init(model, z, state, consts, noise)
    torch.testing.assert_close(it.mean, state.mean)
    assert (it.std == consts.max_std).all()
    for i in range(consts.iterations):
        it = plan_iteration(model, it, consts, noise.samples[i], noise.value_pi[i], noise.heads[i])
    action2, mu2, _, state2 = plan_select(it, consts, noise, False)
    torch.testing.assert_close(action, action2)
    torch.testing.assert_close(mu, mu2)
    torch.testing.assert_close(std, it.std[0])
    # The next state holds the final mean shifted left with a zero last step.
    torch.testing.assert_close(new_state.mean[:-1], it.mean[1:])
    assert (new_state.mean[-1] == 0).all() and bool(new_state.valid)
    torch.testing.assert_close(state2.mean, new_state.mean)
    # Training action = clamp(mu + std * noise, -1, 1); mu is one of the elites' first action.
    torch.testing.assert_close(action, (mu + std * noise.action).clamp(-1, 1))
    assert (it.elite_actions[0] == mu).all(dim=-1).any()


def test_first_step_ignores_stale_mean():
    model, consts = PointMass(), _consts()
    z = torch.tensor([[0.2]])
    torch.manual_seed(2)
    noise = draw_noise(consts, CPU)
    stale = PlanState(mean=torch.ones(3, 1), valid=torch.tensor(False))
    out_stale = plan(model, z, stale, consts, True, noise=noise)
    out_fresh = plan(model, z, initial_state(consts, CPU), consts, True, noise=noise)
    torch.testing.assert_close(out_stale[1], out_fresh[1])
    torch.testing.assert_close(out_stale[3].mean, out_fresh[3].mean)


def test_iterations_and_noise_shapes():
    cfg = PlannerConfig()
    assert cfg.iterations_for(21) == 8 and cfg.iterations_for(6) == 6
    consts = PlanConstants.build(cfg, action_dim=21, gamma=0.99, num_q=5, device=CPU)
    noise = draw_noise(consts, CPU)
    assert noise.samples.shape == (8, 3, 512 - 24, 21)
    assert noise.pi_traj.shape == (3, 24, 21)
    assert noise.value_pi.shape == (8, 512, 21)
    assert noise.heads.shape == (8, 2) and (noise.heads[:, 0] != noise.heads[:, 1]).all()
    torch.testing.assert_close(consts.discounts, torch.tensor([1.0, 0.99, 0.99**2]))


def test_real_world_model_plan_is_deterministic_under_seed():
    cfg = ModelConfig(size="test", enc_dim=32, mlp_dim=32, latent_dim=16, num_q=3)
    model = WorldModel(9, 4, cfg, terminates=True).eval()
    consts = PlanConstants.build(
        PlannerConfig(num_samples=64, num_elites=8, num_pi_trajs=4, iterations=2),
        action_dim=4,
        gamma=0.99,
        num_q=3,
        device=CPU,
        terminates=True,
    )
    z = model.encode(torch.randn(1, 9))
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        with torch.no_grad():
            outs.append(plan(model, z, initial_state(consts, CPU), consts, False))
    action, mu, std, state = outs[0]
    assert action.shape == mu.shape == std.shape == (4,)
    assert action.abs().max() <= 1 and torch.isfinite(action).all()
    assert state.mean.shape == (3, 4)
    for a, b in zip(outs[0][:3], outs[1][:3], strict=True):
        assert torch.equal(a, b)


def test_advance_shifts_the_warm_start_by_elapsed_steps():
    mean = torch.arange(6.0).view(3, 2)
    state = PlanState(mean, torch.tensor(True))
    assert advance(state, 0) is state
    assert torch.equal(advance(state, 1).mean, torch.tensor([[2.0, 3], [4, 5], [0, 0]]))
    assert torch.equal(advance(state, 2).mean, torch.tensor([[4.0, 5], [0, 0], [0, 0]]))
    assert bool(advance(state, 2).valid)
    gone = advance(state, 3)
    assert not bool(gone.valid) and not gone.mean.any()


def test_override_constants_shrinks_or_sets_the_policy_trajectories():
    consts = _consts(num_samples=512, num_pi_trajs=24, num_elites=64)
    small = override_constants(consts, 16, 1)
    assert (small.num_samples, small.num_pi_trajs, small.num_elites, small.iterations) == (
        16, 8, 8, 1,
    )  # fmt: skip
    assert override_constants(consts, 16, None, pi_trajs=2).num_pi_trajs == 2
    assert override_constants(consts, None, None).num_pi_trajs == 24
    for bad in (0, 16):
        with pytest.raises(ValueError, match="policy trajectories"):
            override_constants(consts, 16, None, pi_trajs=bad)
