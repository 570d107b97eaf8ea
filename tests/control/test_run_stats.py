"""The controller's end-of-run summary counts episodes and their returns."""

from __future__ import annotations

import pytest

from boom_control.control.report import RunStats, format_summary


def _run(rewards: list[tuple[float, bool]]) -> dict:
    stats = RunStats()
    for reward, end in rewards:
        stats.add_reward(reward, end)
    return stats.summary()


def test_episodes_split_at_their_ends() -> None:
    summary = _run(
        [(1.0, False), (2.0, True), (0.5, False), (0.5, False), (4.0, True), (1.5, False)]
    )
    assert summary["episode_returns"] == [3.0, 5.0, 1.5]
    assert summary["episode_lengths"] == [2, 3, 1]
    assert summary["episode_return"] == pytest.approx(4.0)  # the mean of the ended ones
    text = format_summary(summary)
    assert "4.00 (mean of 2 ended)" in text
    assert "3.0/2, 5.0/3, 1.5/1 (running)" in text


def test_a_run_inside_one_episode_reports_it_running() -> None:
    summary = _run([(0.25, False)] * 8)
    assert summary["episode_returns"] == [2.0] and summary["episode_lengths"] == [8]
    assert "2.00 (running)" in format_summary(summary)


def test_an_episode_ending_on_the_last_tick_is_not_listed_twice() -> None:
    text = format_summary(_run([(1.0, False), (1.0, True)]))
    assert "return/steps 2.0/2" in text and "running" not in text.split("episodes")[-1]
