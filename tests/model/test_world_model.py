"""World-model heads: sizes, initialisation, the stacked Q ensemble, policy and target copy."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from boom_control.config import load_config
from boom_control.model.config import ModelConfig
from boom_control.model.world_model import WorldModel

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
SMALL = ModelConfig(size="test", enc_dim=32, mlp_dim=48, latent_dim=16, num_q=5)


def _randomise(module: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def test_sizes_load_and_5m_parameter_count():
    cfg = load_config(ModelConfig, presets=[CONFIGS / "5M.yaml"])
    assert (cfg.size, cfg.mlp_dim, cfg.latent_dim, cfg.num_q) == ("5M", 512, 512, 5)
    count = WorldModel(67, 21, cfg).num_params()
    # The spec quotes "about 5.2-5.3M" for obs 67 / A 21 (BOOM's 3-layer reward head).
    assert abs(count - 5.25e6) / 5.25e6 < 0.02, count
    # With TD-MPC2's 2-layer reward head one 512x512 normed layer (263,680 params) less.
    two_layer = WorldModel(67, 21, ModelConfig(reward_layers=2)).num_params()
    assert count - two_layer == 512 * 512 + 512 + 2 * 512
    small = load_config(ModelConfig, presets=[CONFIGS / "1M.yaml"])
    assert (small.mlp_dim, small.latent_dim, small.num_q) == (384, 128, 2)


def test_init_and_shapes():
    model = WorldModel(10, 3, SMALL)
    assert (model._Qs.weight[-1] == 0).all()
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            assert (m.bias == 0).all()
            assert m.weight.abs().max() <= 0.04 + 1e-6  # truncated at 2 std
    obs = torch.randn(4, 7, 10)
    z = model.encode(obs)
    assert z.shape == (4, 7, 16)
    torch.testing.assert_close(z.view(4, 7, 2, 8).sum(-1), torch.ones(4, 7, 2))
    a = torch.rand(4, 7, 3) * 2 - 1
    assert model.next(z, a).shape == (4, 7, 16)
    assert model.reward(z, a).shape == (4, 7, 101)
    assert model.Q(z, a, "all").shape == (5, 4, 7, 101)
    assert model.Q(z, a, "min").shape == (4, 7, 1)
    with pytest.raises(RuntimeError):
        model.termination(z)
    assert WorldModel(10, 3, SMALL, terminates=True).termination(z).shape == (4, 7, 1)


def test_two_heads_equal_all_then_index():
    model = WorldModel(10, 3, SMALL).eval()  # no dropout
    _randomise(model._Qs)
    z, a = torch.randn(6, 16), torch.rand(6, 3) * 2 - 1
    heads = torch.tensor([3, 1])
    all_logits = model.Q(z, a, "all")
    torch.testing.assert_close(model.Q(z, a, "all", heads=heads), all_logits[heads])
    values = torch.stack([model.Q(z, a, "all", heads=h.view(1))[0] for h in heads])
    from boom_control.model.ops import two_hot_inv

    q = two_hot_inv(values, model.bins)
    torch.testing.assert_close(model.Q(z, a, "min", heads=heads), q.min(0).values)
    torch.testing.assert_close(model.Q(z, a, "avg", heads=heads), q.mean(0))


def test_q_detach_passes_gradient_only_to_action():
    model = WorldModel(10, 3, SMALL)
    _randomise(model._Qs)
    z = torch.randn(5, 16)
    a = (torch.rand(5, 3) * 2 - 1).requires_grad_(True)
    model.Q(z, a, "min", detach=True).sum().backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert all(p.grad is None for p in model._Qs.parameters())


def test_policy_log_prob_closed_form():
    torch.manual_seed(0)
    model = WorldModel(10, 4, SMALL)
    _randomise(model._pi, seed=1)
    z = model.encode(torch.randn(8, 10))
    action, info = model.pi(z)
    assert action.abs().max() <= 1 and info["mean"].abs().max() <= 1
    assert info["log_std"].min() >= -10 and info["log_std"].max() <= 2
    raw = model._pi(z)
    for b in range(8):
        mean = raw[b, :4].tolist()
        x = raw[b, 4:].tolist()
        log_std = [-10 + 6 * (math.tanh(v) + 1) for v in x]
        eps = info["eps"][b].tolist()
        acts = [math.tanh(m + e * math.exp(s)) for m, e, s in zip(mean, eps, log_std, strict=True)]
        gauss = 4 * (
            sum(-(e**2) / 2 - s for e, s in zip(eps, log_std, strict=True))
            - 0.5 * math.log(2 * math.pi)
        )
        expected = gauss - sum(math.log(max(1 - u**2, 0) + 1e-6) for u in acts)
        assert info["log_prob"][b, 0].item() == pytest.approx(expected, rel=1e-4, abs=1e-3)
        assert action[b].tolist() == pytest.approx(acts, abs=1e-5)
    # Given noise is used as-is.
    eps = torch.zeros(8, 4)
    torch.testing.assert_close(model.pi(z, eps)[0], info["mean"])


def test_target_is_polyak_copy_in_eval_mode():
    model = WorldModel(10, 3, SMALL)
    target = model._target_Qs
    assert not any(p.requires_grad for p in target.parameters())
    model.train()
    assert model._Qs.training and not target.training
    old = [p.clone() for p in target.parameters()]
    _randomise(model._Qs)
    model.soft_update_target(0.01)
    for t, o, p in zip(target.parameters(), old, model._Qs.parameters(), strict=True):
        torch.testing.assert_close(t, 0.99 * o + 0.01 * p)
    z, a = torch.randn(3, 16), torch.zeros(3, 3)
    heads = torch.tensor([0, 1])
    assert not torch.equal(model.Q(z, a, "all", target=True), model.Q(z, a, "all"))
    assert model.Q(z, a, "min", target=True, heads=heads).shape == (3, 1)
