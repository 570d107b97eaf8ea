"""Replay buffer of whole episodes in preallocated numpy arrays, sampled as sub-sequences.

Storage is one row per *observation*: row ``i`` holds ``o_t`` and, when ``o_t`` is not the
last observation of its episode, the transition taken from it (``a_t``, the planner's
``mu_t`` and ``std_t``, ``r_t`` and whether ``o_{t+1}`` is terminal). An episode of T steps
uses T+1 rows. Rows form a ring: when full, the oldest rows are overwritten.

A start row ``i`` is valid when row ``i+H`` (mod capacity) belongs to the same episode and
was written exactly H rows after ``i`` (a global row counter per row checks that), so a
sampled window never crosses an episode boundary nor the write pointer.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np
import torch

log = logging.getLogger(__name__)

_ARRAYS = ("obs", "action", "mu", "std", "reward", "terminated", "episode", "counter")


class Batch(NamedTuple):
    """A batch of sub-sequences of length H+1 sampled inside episodes.

    Shapes (H = planner horizon, B = batch size, A = action dim, O = obs dim):
        obs:        (H+1, B, O)  o_0 .. o_H
        action:     (H, B, A)    a_t taken after o_t
        mu:         (H, B, A)    planner mean (chosen elite's first action) at o_t
        reward:     (H, B)       r_t received after a_t
        terminated: (H, B)       1.0 where o_{t+1} is a terminal state (a fall), else 0.0
    """

    obs: torch.Tensor
    action: torch.Tensor
    mu: torch.Tensor
    reward: torch.Tensor
    terminated: torch.Tensor


class ReplayBuffer:
    """Ring buffer of episodes for sub-sequence sampling.

    Args:
        obs_dim: observation size O.
        action_dim: action size A.
        capacity: transitions to keep; rows are allocated for these plus one final
            observation per ``episode_length`` steps.
        episode_length: agent steps per full episode (sizes the extra rows).
        horizon: H; samples are windows of H+1 observations and H transitions.
        batch_size: B, sub-sequences per sample.
        device: where sampled tensors go.
        seed: seed of the sampling generator (its state is part of ``state_dict``).
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        capacity: int,
        episode_length: int,
        horizon: int,
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if horizon < 1 or batch_size < 1 or capacity < 1:
            raise ValueError("horizon, batch_size and capacity must be >= 1")
        rows = capacity + capacity // max(episode_length, 1) + 1
        self.capacity = rows
        self.horizon = horizon
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.obs = np.zeros((rows, obs_dim), np.float32)
        self.action = np.zeros((rows, action_dim), np.float32)
        self.mu = np.zeros((rows, action_dim), np.float32)
        self.std = np.zeros((rows, action_dim), np.float32)
        self.reward = np.zeros(rows, np.float32)
        self.terminated = np.zeros(rows, np.float32)
        self.episode = np.full(rows, -1, np.int64)
        self.counter = np.full(rows, -(2**62), np.int64)  # global index of the row's write
        self.rng = np.random.default_rng(seed)
        self.ptr = 0  # next row to write
        self.rows_written = 0  # rows written since creation
        self.filled = 0  # rows holding data (rows 0..filled-1)
        self.episodes = 0  # episodes started
        self.transitions = 0  # transitions added since creation
        self._last: int | None = None  # row of the current episode's latest observation

    # ----------------------------------------------------------------- writing
    def _write_obs(self, obs: np.ndarray) -> int:
        row = self.ptr
        self.obs[row] = obs
        self.action[row] = 0.0
        self.mu[row] = 0.0
        self.std[row] = 0.0
        self.reward[row] = 0.0
        self.terminated[row] = 0.0
        self.episode[row] = self.episodes - 1
        self.counter[row] = self.rows_written
        self.rows_written += 1
        self.filled = min(self.filled + 1, self.capacity)
        self.ptr = (row + 1) % self.capacity
        return row

    def start_episode(self, obs: np.ndarray) -> None:
        """Begin a new episode with its first observation ``(O,)``."""
        self.episodes += 1
        self._last = self._write_obs(obs)

    def add(
        self,
        action: np.ndarray,
        mu: np.ndarray,
        std: np.ndarray,
        reward: float,
        terminated: bool,
        next_obs: np.ndarray,
    ) -> None:
        """Record the transition from the latest observation: ``(A,)`` arrays and scalars."""
        if self._last is None:
            raise RuntimeError("call start_episode(obs) before add()")
        row = self._last
        self.action[row] = action
        self.mu[row] = mu
        self.std[row] = std
        self.reward[row] = reward
        self.terminated[row] = float(terminated)
        self.transitions += 1
        self._last = self._write_obs(next_obs)

    def add_episode(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        mu: np.ndarray,
        std: np.ndarray,
        reward: np.ndarray,
        terminated: np.ndarray,
    ) -> None:
        """A whole episode, or a piece of one, at once: ``obs (T+1, O)``, ``action``, ``mu``,
        ``std`` ``(T, A)``, ``reward`` and ``terminated`` ``(T,)``. Sampled windows stay
        inside what one call stored."""
        self.start_episode(obs[0])
        for t in range(len(action)):
            self.add(action[t], mu[t], std[t], float(reward[t]), bool(terminated[t]), obs[t + 1])

    # ---------------------------------------------------------------- sampling
    @property
    def size(self) -> int:
        """Rows currently holding data."""
        return self.filled

    def valid_starts(self, rows: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``rows`` begin a window of H+1 rows inside one episode."""
        end = (rows + self.horizon) % self.capacity
        return (
            (self.episode[rows] >= 0)
            & (self.episode[end] == self.episode[rows])
            & (self.counter[end] == self.counter[rows] + self.horizon)
        )

    def sample_indices(self) -> np.ndarray:
        """``(H+1, B)`` row indices of B valid windows, uniformly over valid start rows."""
        if self.size <= self.horizon:
            raise RuntimeError(f"buffer holds {self.size} rows; need more than H={self.horizon}")
        starts: list[np.ndarray] = []
        need = self.batch_size
        for _ in range(1000):
            cand = self.rng.integers(0, self.size, size=2 * need + 8)
            ok = cand[self.valid_starts(cand)]
            starts.append(ok[:need])
            need -= len(starts[-1])
            if need == 0:
                start = np.concatenate(starts)
                return (start[None, :] + np.arange(self.horizon + 1)[:, None]) % self.capacity
        raise RuntimeError("no window of H+1 steps inside one episode in the buffer")

    def sample(self) -> Batch:
        """A :class:`Batch` of B sub-sequences: obs ``(H+1,B,O)``, action/mu ``(H,B,A)``,
        reward/terminated ``(H,B)``, on ``self.device``."""
        idx = self.sample_indices()
        tr = idx[:-1]
        return Batch(
            obs=self._to_device(self.obs[idx]),
            action=self._to_device(self.action[tr]),
            mu=self._to_device(self.mu[tr]),
            reward=self._to_device(self.reward[tr]),
            terminated=self._to_device(self.terminated[tr]),
        )

    def _to_device(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    # ------------------------------------------------------------- accounting
    @property
    def nbytes(self) -> int:
        """Bytes held by the preallocated arrays."""
        return sum(getattr(self, name).nbytes for name in _ARRAYS)

    def describe(self) -> str:
        """One log line with the buffer's size and memory use."""
        return (
            f"replay buffer: {self.capacity:,} rows (obs {self.obs.shape[1]}, action "
            f"{self.action.shape[1]}), {self.nbytes / 2**20:,.2f} MiB preallocated in host memory"
        )

    # -------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, Any]:
        """Filled rows as torch tensors plus pointers and the sampler state (weights_only-safe)."""
        n = self.size
        out: dict[str, Any] = {
            name: torch.from_numpy(getattr(self, name)[:n].copy()) for name in _ARRAYS
        }
        out.update(
            capacity=self.capacity,
            ptr=self.ptr,
            rows_written=self.rows_written,
            episodes=self.episodes,
            transitions=self.transitions,
            last=self._last,
            rng=self.rng.bit_generator.state,
        )
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`.

        A buffer that never wrapped loads into any capacity large enough and samples exactly
        as before (a resumed run may extend ``steps`` and so the default capacity). Otherwise
        the newest rows are laid out oldest-first and a warning says sampling differs.
        """
        arrays = {name: state[name].numpy() for name in _ARRAYS}
        for name, arr in arrays.items():
            dst = getattr(self, name)
            if arr.shape[1:] != dst.shape[1:]:
                raise ValueError(f"buffer checkpoint {name}: shape {arr.shape}, want {dst.shape}")
        n, ptr, old_cap = len(arrays["obs"]), int(state["ptr"]), int(state["capacity"])
        wrapped = int(state["rows_written"]) > old_cap
        if old_cap == self.capacity:
            order = np.arange(n)
        elif not wrapped and n <= self.capacity:
            order, ptr = np.arange(n), n
        else:
            keep = min(n, self.capacity)
            order = ((ptr + np.arange(old_cap)) % old_cap)[-keep:]  # oldest first
            ptr = keep % self.capacity
            log.warning(
                "replay buffer checkpoint has %d rows, this buffer %d: kept the newest %d "
                "rows; sampling will not match the original run",
                old_cap,
                self.capacity,
                keep,
            )
        for name, arr in arrays.items():
            getattr(self, name)[: len(order)] = arr[order]
        self.filled = len(order)
        self.ptr = ptr % self.capacity
        self.rows_written = int(state["rows_written"])
        self.episodes = int(state["episodes"])
        self.transitions = int(state["transitions"])
        self._last = None if state["last"] is None else (self.ptr - 1) % self.capacity
        self.rng.bit_generator.state = state["rng"]
