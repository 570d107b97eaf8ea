"""Symlog / two-hot regression, SimNorm, Gaussian log-likelihood and derived constants."""

from __future__ import annotations

import math

import onnx
import pytest
import torch
import torch.nn.functional as F

from boom_control.model.ops import (
    dropout_keep,
    gaussian_log_prob,
    make_bins,
    simnorm,
    soft_ce,
    symexp,
    symlog,
    two_hot,
    two_hot_inv,
)
from boom_control.train.agent import discount_for
from boom_control.train.config import AgentConfig

torch.set_num_threads(1)
CPU = torch.device("cpu")
VMIN, VMAX, NUM_BINS = -10.0, 10.0, 101


def test_symlog_symexp_inverse():
    x = torch.tensor([-1e4, -3.5, -1.0, 0.0, 0.2, 7.0, 1e4], dtype=torch.float64)
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)


def test_two_hot_round_trip():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, generator=g) * 50, torch.tensor([0.0, -3.0, 1e3])])
    x = x.double()
    probs = two_hot(x, VMIN, VMAX, NUM_BINS)
    assert probs.shape == (x.numel(), NUM_BINS)
    torch.testing.assert_close(probs.sum(-1), torch.ones_like(x))
    assert ((probs > 0).sum(-1) <= 2).all()
    bins = make_bins(VMIN, VMAX, NUM_BINS).double()
    # Probabilities -> logits -> decode gives the value back.
    decoded = two_hot_inv(torch.log(probs + 1e-30), bins).squeeze(-1)
    torch.testing.assert_close(decoded, x, rtol=1e-6, atol=1e-6)


def test_two_hot_clamps_out_of_range():
    probs = two_hot(torch.tensor([1e9, -1e9]), VMIN, VMAX, NUM_BINS)
    assert probs[0, -1] == 1.0 and probs[1, 0] == 1.0


def test_soft_ce_is_negative_log_softmax_on_a_bin():
    logits = torch.randn(4, NUM_BINS)
    target = symexp(torch.full((4, 1), 0.2 * 7 - 10))  # exactly bin 7
    expected = -torch.log_softmax(logits, -1)[:, 7:8]
    torch.testing.assert_close(soft_ce(logits, target, VMIN, VMAX), expected)


def test_simnorm_groups_sum_to_one():
    x = torch.randn(3, 5, 64) * 4
    y = simnorm(x, 8)
    assert y.shape == x.shape and (y >= 0).all()
    torch.testing.assert_close(y.view(3, 5, 8, 8).sum(-1), torch.ones(3, 5, 8))


def test_simnorm_is_the_grouped_softmax_in_value_gradient_and_dtype():
    def grouped_softmax(x):
        return F.softmax(x.reshape(*x.shape[:-1], -1, 8), dim=-1).reshape(x.shape)

    x = (torch.randn(7, 64, dtype=torch.float64) * 30).requires_grad_()
    x.data[0, :8] = torch.tensor([1e4, -1e4, 0, 0, 0, 0, 0, 1e4])  # far apart, tied peaks
    y, ref = simnorm(x.float(), 8), grouped_softmax(x)
    torch.testing.assert_close(y.double(), ref, atol=1e-6, rtol=0)
    w = torch.randn(7, 64, dtype=torch.float64)
    (gx,) = torch.autograd.grad((simnorm(x, 8) * w).sum(), x)
    (gref,) = torch.autograd.grad((grouped_softmax(x) * w).sum(), x)
    torch.testing.assert_close(gx, gref, atol=1e-9, rtol=1e-9)
    half = x.detach().bfloat16()
    assert simnorm(half, 8).dtype == torch.bfloat16
    torch.testing.assert_close(
        simnorm(half, 8).float(), grouped_softmax(half.float()), atol=4e-3, rtol=0
    )
    assert simnorm(torch.zeros(0, 16), 8).shape == (0, 16)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the exporter the bundles use
def test_simnorm_exports_as_one_softmax():
    import io

    class Norm(torch.nn.Module):
        def forward(self, x):
            return simnorm(x, 8)

    f = io.BytesIO()
    torch.onnx.export(Norm(), (torch.randn(2, 16),), f, dynamo=False)
    ops = [n.op_type for n in onnx.load_from_string(f.getvalue()).graph.node]
    assert ops.count("Softmax") == 1 and "MaxPool" not in ops


def test_gaussian_log_prob_scaled_form():
    eps = torch.randn(6, 21, dtype=torch.float64)
    log_std = torch.rand(6, 21, dtype=torch.float64) * 4 - 3
    expected = [
        21
        * (sum(-(e**2) / 2 - s for e, s in zip(er, sr, strict=True)) - 0.5 * math.log(2 * math.pi))
        for er, sr in zip(eps.tolist(), log_std.tolist(), strict=True)
    ]
    got = gaussian_log_prob(eps, log_std).squeeze(-1)
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


@pytest.mark.parametrize(("action_dim", "expected"), [(21, 1 / 50), (38, 1 / 1000), (61, 1 / 50)])
def test_lambda_by_action_dim(action_dim, expected):
    assert AgentConfig().lambda_for(action_dim) == pytest.approx(expected)
    assert AgentConfig(align_lambda=0.0).lambda_for(action_dim) == 0.0


@pytest.mark.parametrize(("length", "gamma"), [(500, 0.99), (1000, 0.995), (20, 0.95)])
def test_discount_from_episode_length(length, gamma):
    assert discount_for(length) == pytest.approx(gamma)


def test_dropout_keep_is_iid_bernoulli():
    torch.manual_seed(0)
    p, shape = 0.01, (4, 500, 384)
    masks = torch.stack([dropout_keep(shape, p, torch.float32, CPU) for _ in range(10)])
    assert masks.shape == (10, *shape)
    assert masks.unique().tolist() == [0.0, pytest.approx(1 / (1 - p))]
    dropped = (masks == 0).reshape(10, -1).double()
    n = dropped.shape[1]
    # drop count per mask ~ Binomial(n, p): within 5 sd of n p, and the 10 counts vary
    counts = dropped.sum(1)
    sd = (n * p * (1 - p)) ** 0.5
    assert ((counts - n * p).abs() < 5 * sd).all() and counts.std() > 0.2 * sd
    # uniform over positions (no shortfall at the end) and independent of the neighbour
    quarters = dropped.reshape(10, 4, -1).mean((0, 2))
    assert ((quarters - p).abs() < 5 * (p * (1 - p) / (n * 10 / 4)) ** 0.5).all()
    pairs = (dropped[:, 1:] * dropped[:, :-1]).mean()
    assert abs(pairs.item() - p * p) < 5 * (p * p / (n * 10)) ** 0.5
    # in expectation the multiplier is 1, as inverted dropout's is
    assert masks.mean().item() == pytest.approx(1.0, abs=3e-3)
    assert dropout_keep((3, 5), 0.5, torch.bfloat16, CPU).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dropout probability"):
        dropout_keep((3,), 0.0, torch.float32, CPU)
