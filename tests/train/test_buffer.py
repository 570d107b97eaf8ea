"""Replay buffer: windows stay inside one episode, shapes, ring overwrite, persistence."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from boom_control.train.buffer import ReplayBuffer

O, A, H, B = 3, 2, 3, 64


def fill(buf: ReplayBuffer, lengths: list[int], first_episode: int = 0) -> None:
    """Episodes whose obs encode (episode, t) and whose actions encode the same."""
    for k, length in enumerate(lengths):
        ep = first_episode + k
        buf.start_episode(np.array([ep, 0, 0], np.float32))
        for t in range(length):
            a = np.array([ep, t], np.float32)
            buf.add(
                a,
                a + 0.5,
                np.ones(A, np.float32),
                float(t),
                t == length - 1,
                np.array([ep, t + 1, 0], np.float32),
            )


def make(capacity: int = 1000, episode_length: int = 50, seed: int = 0) -> ReplayBuffer:
    return ReplayBuffer(O, A, capacity, episode_length, H, B, "cpu", seed=seed)


def check_windows(batch) -> None:
    obs, act = batch.obs.numpy(), batch.action.numpy()
    # one episode per window, consecutive time steps, actions aligned with observations
    assert np.all(obs[:, :, 0] == obs[:1, :, 0])
    assert np.all(np.diff(obs[:, :, 1], axis=0) == 1)
    assert np.all(act[:, :, 0] == obs[:-1, :, 0])
    assert np.all(act[:, :, 1] == obs[:-1, :, 1])
    np.testing.assert_array_equal(batch.reward.numpy(), obs[:-1, :, 1])
    np.testing.assert_array_equal(batch.mu.numpy(), act + 0.5)


def test_shapes_and_windows_inside_episodes():
    buf = make()
    fill(buf, [4, 3, 10, 5, 7, 3])  # episodes of length 3 admit exactly one window
    for _ in range(20):
        batch = buf.sample()
        assert batch.obs.shape == (H + 1, B, O)
        assert batch.action.shape == (H, B, A) and batch.mu.shape == (H, B, A)
        assert batch.reward.shape == (H, B) and batch.terminated.shape == (H, B)
        assert batch.obs.dtype == torch.float32
        check_windows(batch)
        # terminated is set only on the last transition of an episode
        term = batch.terminated.numpy().astype(bool)
        ends = batch.obs.numpy()[1:, :, 1]
        lengths = np.array([4, 3, 10, 5, 7, 3])[batch.obs.numpy()[0, :, 0].astype(int)]
        np.testing.assert_array_equal(term, ends == lengths[None])


def test_every_valid_start_is_reachable():
    buf = make()
    fill(buf, [5, 6])  # starts: t in 0..2 of ep0, 0..3 of ep1 -> 7 windows
    seen = {(int(o[0]), int(o[1])) for _ in range(50) for o in buf.sample().obs[0].numpy()}
    assert seen == {(0, t) for t in range(3)} | {(1, t) for t in range(4)}


def test_ring_overwrite_never_crosses_write_pointer():
    buf = make(capacity=40, episode_length=20)  # 40 + 2 + 1 = 43 rows
    assert buf.capacity == 43
    fill(buf, [20] * 7)  # 147 rows written: wraps several times
    assert buf.size == buf.capacity
    live = set(range(4, 7))  # only the newest episodes can still hold whole windows
    for _ in range(30):
        batch = buf.sample()
        check_windows(batch)
        assert set(np.unique(batch.obs.numpy()[0, :, 0]).astype(int)) <= live


def test_sample_needs_a_full_window():
    buf = make()
    fill(buf, [2])
    with pytest.raises(RuntimeError):
        buf.sample()


def test_state_dict_round_trip_weights_only():
    buf = make(seed=3)
    fill(buf, [12, 9])
    buf.sample()
    f = io.BytesIO()
    torch.save(buf.state_dict(), f)
    f.seek(0)
    state = torch.load(f, weights_only=True)
    other = make(seed=99)
    other.load_state_dict(state)
    for _ in range(3):
        x, y = buf.sample(), other.sample()
        for a, b in zip(x, y):
            assert torch.equal(a, b)
    fill(buf, [4], first_episode=2)
    fill(other, [4], first_episode=2)
    assert torch.equal(buf.sample().obs, other.sample().obs)


def test_memory_report():
    buf = make(capacity=1000, episode_length=50)
    rows = 1000 + 20 + 1
    assert buf.nbytes == rows * (4 * (O + 3 * A + 2) + 8 * 2)
    assert "MiB" in buf.describe() and f"{rows:,} rows" in buf.describe()


def test_load_into_larger_buffer():
    small = make(capacity=18, episode_length=50, seed=1)  # 19 rows
    fill(small, [10, 7])  # exactly full: the write pointer is back at row 0
    assert small.ptr == 0 and small.filled == small.capacity
    big = make(capacity=400, episode_length=50, seed=2)
    big.load_state_dict(small.state_dict())
    assert torch.equal(small.sample().obs, big.sample().obs)  # not wrapped: exact
    fill(big, [5], first_episode=2)
    assert big.ptr == 19 + 6 and big.size == 25
    check_windows(big.sample())
    assert np.array_equal(big.obs[18], [1, 7, 0]) and np.array_equal(big.obs[19], [2, 0, 0])
    # wrapped: the newest rows survive, oldest first, windows still inside episodes
    tiny = make(capacity=20, episode_length=10, seed=1)
    fill(tiny, [10] * 5)
    grown = make(capacity=60, episode_length=10, seed=1)
    grown.load_state_dict(tiny.state_dict())
    assert grown.size == tiny.capacity and grown.ptr == tiny.capacity
    np.testing.assert_array_equal(grown.obs[tiny.capacity - 1], [4, 10, 0])
    check_windows(grown.sample())
    fill(grown, [6], first_episode=5)
    check_windows(grown.sample())
