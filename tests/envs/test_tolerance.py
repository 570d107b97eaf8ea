"""The compiled tolerance equals dm_control's ``rewards.tolerance``."""

from __future__ import annotations

import numpy as np
import pytest
from dm_control.utils import rewards

from boom_control.envs.tolerance import tolerance, tolerance_mean

CASES = [
    {"bounds": (1.65, np.inf), "margin": 1.65 / 4},
    {"bounds": (0.9, np.inf), "margin": 1.9, "sigmoid": "linear", "value_at_margin": 0.0},
    {"margin": 10.0, "sigmoid": "quadratic", "value_at_margin": 0.0},
    {"margin": 2.0},
    {"bounds": (1.0, np.inf), "margin": 1.0, "sigmoid": "linear", "value_at_margin": 0.0},
    {"bounds": (-0.5, 0.5), "margin": 0.0},
    {"bounds": (-1.0, 2.0), "margin": 0.7, "sigmoid": "gaussian", "value_at_margin": 0.3},
]


@pytest.mark.parametrize("kwargs", CASES)
def test_matches_dm_control(kwargs):
    xs = np.random.default_rng(0).uniform(-30, 30, 500)
    xs = np.concatenate([xs, [1.65, 0.9, -0.5, 0.5, 1.0, 0.0]])
    expected = rewards.tolerance(xs, **kwargs)
    got = np.array([tolerance(x, **kwargs) for x in xs])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert tolerance_mean(xs, **kwargs) == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="sigmoid"):
        tolerance(0.0, margin=1.0, sigmoid="cosine")
    with pytest.raises(ValueError, match="gaussian"):
        tolerance(0.0, margin=1.0, value_at_margin=0.0)
