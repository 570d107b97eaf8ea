"""Budget fitting on synthetic cost models with known answers."""

from __future__ import annotations

import pytest
import yaml

from boom_control.profile.budget import (
    Cell,
    control_flags,
    control_settings,
    fit_budget,
    monotone_envelope,
    write_control_config,
)

SAMPLES = (64, 128, 256, 512)
ITERATIONS = (1, 2, 4, 6, 8)


def grid(cost, samples=SAMPLES, iterations=ITERATIONS, precision="fp32"):
    return [Cell(n, i, cost(n, i), precision) for n in samples for i in iterations]


def test_linear_cost_model_unique_answer():
    # cost = 1 + 0.01 N I; limit 0.8 * 12 = 9.6 -> N I <= 860: 300 x 3 (900) is out
    cells = grid(lambda n, i: 1.0 + 0.01 * n * i, samples=(100, 300), iterations=(1, 3, 5))
    fit = fit_budget(cells, 12.0, 0.8)
    assert (fit.samples, fit.iterations) == (100, 5)
    assert fit.limit_ms == pytest.approx(9.6) and fit.p99_ms == pytest.approx(6.0)
    assert fit.frontier == [[100, 5], [300, 1]]
    # a larger budget admits 300 x 3; the margin decides at the boundary
    assert (fit_budget(cells, 12.5, 0.8).samples, fit_budget(cells, 12.5, 0.8).iterations) == (
        300,
        3,
    )
    assert fit_budget(cells, 10.0, 1.0).iterations == 3  # 10.0 <= 10.0 fits exactly


def test_ties_prefer_iterations_then_samples():
    # cost = 2 + 0.01 N I: budget 10 x 0.8 = 8 -> N I <= 600; four cells tie at 512
    cells = grid(lambda n, i: 2.0 + 0.01 * n * i)
    fit = fit_budget(cells, 10.0, 0.8)
    assert (fit.samples, fit.iterations) == (64, 8)
    assert fit.frontier == [[64, 8], [128, 4], [256, 2], [512, 1]]
    fit = fit_budget(cells, 20.0, 0.8)  # N I <= 1400 -> ties at 1024
    assert (fit.samples, fit.iterations) == (128, 8)


def test_nothing_fits_and_bad_arguments():
    cells = grid(lambda n, i: 5.0 + n * i)
    assert fit_budget(cells, 5.0, 0.8) is None
    with pytest.raises(ValueError, match="margin"):
        fit_budget(cells, 10.0, 1.5)
    with pytest.raises(ValueError, match="budget"):
        fit_budget(cells, 0.0)


def test_lucky_measurement_does_not_win():
    # 256 x 4 measured fast by chance, but 256 x 2 (less work) is over the limit
    cost = {(n, i): 1.0 + 0.01 * n * i for n in SAMPLES for i in ITERATIONS}
    cost[(256, 4)] = 2.0
    cells = [Cell(n, i, c) for (n, i), c in cost.items()]
    env = monotone_envelope(cells)
    assert env[("fp32", 256, 4)] == pytest.approx(cost[(256, 2)])
    fit = fit_budget(cells, 7.0, 0.8)  # limit 5.6 -> N I <= 460
    assert (fit.samples, fit.iterations) != (256, 4)
    assert fit.samples * fit.iterations <= 460
    # envelope is monotone in both directions
    for c in cells:
        for d in cells:
            if d.samples <= c.samples and d.iterations <= c.iterations:
                assert (
                    env[("fp32", d.samples, d.iterations)] <= env[("fp32", c.samples, c.iterations)]
                )


def test_precision_choice_and_controller_config(tmp_path):
    fp32 = grid(lambda n, i: 1.0 + 0.01 * n * i)
    bf16 = grid(lambda n, i: 1.0 + 0.005 * n * i, precision="bf16")
    fit = fit_budget(fp32 + bf16, 10.0, 0.8)  # bf16 fits N I <= 1400, fp32 only 700
    assert fit.precision == "bf16" and (fit.samples, fit.iterations) == (128, 8)
    same = fit_budget(fp32 + grid(lambda n, i: 1.0 + 0.01 * n * i, precision="bf16"), 10.0)
    assert same.precision == "fp32"  # equal cost: the first precision listed wins
    settings = control_settings(fit, "torch", "cpu", 2)
    assert settings == {
        "samples": 128, "iterations": 8, "budget_ms": 10.0, "backend": "torch",
        "device": "cpu", "threads": 2, "bf16": True,
    }  # fmt: skip
    flags = control_flags(settings)
    assert flags == (
        "--samples 128 --iterations 8 --budget-ms 10 --backend torch --device cpu "
        "--threads 2 --bf16"
    )
    path = write_control_config(settings, tmp_path / "fitted.yaml", "fitted for 10 ms")
    text = path.read_text()
    assert text.startswith("# fitted for 10 ms\n") and yaml.safe_load(text) == settings
