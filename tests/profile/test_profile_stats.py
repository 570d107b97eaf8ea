"""Profiler statistics: percentiles, histograms, tables, jitter and load on known inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from boom_control.profile.load import LoadMonitor
from boom_control.profile.report import send_jitter
from boom_control.profile.stats import format_table, histogram, moving_mean, percentiles, summarize


def test_percentiles_interpolate_between_order_statistics():
    # sorted 1..10: the q-th percentile sits at rank 9 * q / 100
    x = np.arange(10, 0, -1, dtype=float)
    p = percentiles(x)
    assert p["p50"] == pytest.approx(5.5)
    assert p["p90"] == pytest.approx(9.1)
    assert p["p99"] == pytest.approx(9.91)
    assert p["p99.9"] == pytest.approx(9.991)
    # 1000 values 1..1000 ms: p99.9 at rank 998.001 -> 999.001
    assert percentiles(np.arange(1, 1001))["p99.9"] == pytest.approx(999.001)


def test_summary_of_a_spiky_timing_series():
    x = [2.0] * 98 + [10.0, 50.0]
    s = summarize(x)
    assert s["n"] == 100 and s["min"] == 2.0 and s["max"] == 50.0
    assert s["mean"] == pytest.approx((98 * 2 + 60) / 100)
    assert s["p50"] == 2.0 and s["p90"] == 2.0
    assert s["p99"] == pytest.approx(10.0 + 0.01 * 40.0)  # rank 98.01
    empty = summarize([])
    assert empty["n"] == 0 and math.isnan(empty["p99"])


def test_histogram_counts_and_edges():
    counts, edges = histogram([0.0, 0.5, 1.0, 1.5, 2.0], bins=2, value_range=(0.0, 2.0))
    assert counts.tolist() == [2, 3]  # the last bin includes its right edge
    assert edges.tolist() == [0.0, 1.0, 2.0]
    counts, _ = histogram(np.r_[np.full(7, 1.0), np.full(3, 3.0)], bins=4)
    assert counts.tolist() == [7, 0, 0, 3]


def test_table_layout():
    text = format_table([{"stage": "encode", "p50": 0.1234}, {"stage": "plan", "p50": 12.0}],
                        ["stage", "p50"])  # fmt: skip
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "p50"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["encode", "0.123"] and lines[3].split() == ["plan", "12.000"]
    assert len({len(line) for line in lines}) == 1


def test_send_jitter_against_the_ideal_period():
    ticks = np.array([0, 1, 2, 4, 5])  # tick 3 was skipped (nothing sent)
    t_send = np.array([0.0100, 0.0302, 0.0499, 0.0900, 0.1105])
    dev = send_jitter(ticks, t_send, 20.0)
    assert dev == pytest.approx([0.2, -0.3, 0.1, 0.5], abs=1e-9)
    assert moving_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_load_monitor_splits_own_and_other_cpu():
    with LoadMonitor() as mon:
        x = 0.0
        for i in range(200_000):  # some CPU of our own
            x += i * 0.5
    r = mon.report
    assert r is not None and r.cpus >= 1 and r.seconds > 0
    assert 0.0 <= r.own_fraction <= 1.0 + 1e-6
    if not math.isnan(r.busy_fraction):
        assert 0.0 <= r.other_fraction <= 1.0 and r.high == (r.other_fraction > 0.25)
    assert "CPU load" in r.describe()
