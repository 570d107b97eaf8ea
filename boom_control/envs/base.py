"""The environment interface every task family implements.

Gymnasium-style: ``reset(seed) -> (obs, info)`` and
``step(action) -> (obs, reward, terminated, truncated, info)`` with float32 observations
of shape ``(spec.obs_dim,)`` and actions normalised to ``[-1, 1]``.

Action policy (documented, tested): an action of the wrong shape, or containing NaN/Inf,
is rejected with :class:`ActionError`; finite values outside ``[-1, 1]`` are clipped.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numba
import numpy as np

from boom_control.envs.contract import ObservationContract
from boom_control.errors import ActionError
from sim_bridge.protocol import action_mapping_json, neutral_action


@numba.njit(cache=True)
def _clip_unit(a: np.ndarray, out: np.ndarray) -> bool:
    """``out = clip(a, -1, 1)``; False when ``a`` holds NaN or Inf (one pass, no temporaries)."""
    for i in range(a.shape[0]):
        x = a[i]
        if not np.isfinite(x):
            return False
        out[i] = -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)
    return True


class RenderTarget(NamedTuple):
    """The live simulation an offscreen renderer draws (see :mod:`boom_control.render`)."""

    model: Any
    """``mujoco.MjModel``."""
    data: Any
    """``mujoco.MjData``, the state of the current step."""


@dataclass(frozen=True)
class ActionMapping:
    """How a normalised action ``a`` in [-1, 1] becomes actuator commands.

    ``command = offset + scale * a`` element-wise. For position-controlled robots the command
    is a joint target (rad) tracked by a PD loop with gains ``kp``/``kd``.
    """

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    names: tuple[str, ...] = ()
    kind: str = "actuator"
    kp: tuple[float, ...] = ()
    kd: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form (bridge handshakes, ``bundle.json``)."""
        return action_mapping_json(self.scale, self.offset, self.names, self.kind, self.kp, self.kd)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, action_dim: int) -> ActionMapping:
        """Read the wire form; none (or an empty one) is the identity on ``action_dim``."""
        if not data:
            return cls((1.0,) * action_dim, (0.0,) * action_dim)
        return cls(
            tuple(float(x) for x in data.get("scale", ())),
            tuple(float(x) for x in data.get("offset", ())),
            tuple(str(n) for n in data.get("names", ())),
            str(data.get("kind", "actuator")),
            tuple(float(x) for x in data.get("kp", ())),
            tuple(float(x) for x in data.get("kd", ())),
        )

    def neutral(self, action_dim: int) -> np.ndarray:
        """``(action_dim,)`` the normalised action whose command is zero (no torque, or the
        zero target); zeros when the mapping does not give one scale and offset per action."""
        if len(self.scale) != action_dim or len(self.offset) != action_dim:
            return np.zeros(action_dim)
        return neutral_action(self.scale, self.offset)


@dataclass(frozen=True)
class EnvSpec:
    """Static description of a task.

    Attributes:
        task_id: namespaced id, e.g. ``dmc:humanoid-walk`` or ``h1:walk``.
        obs_dim: length of the observation vector.
        action_dim: length of the action vector (normalised to [-1, 1]).
        control_period: seconds of simulated time per agent step (after action repeat).
        episode_length: agent steps before truncation.
        contract: names, units and hash of the observation entries.
        action_mapping: normalised action -> actuator command.
        physics_dt: simulator timestep in seconds.
        substeps: physics steps per agent step.
        terminates: whether episodes can end early (e.g. a fall).
        success_return: episode return that counts as solving the task, when defined.
    """

    task_id: str
    obs_dim: int
    action_dim: int
    control_period: float
    episode_length: int
    contract: ObservationContract
    action_mapping: ActionMapping
    physics_dt: float
    substeps: int
    terminates: bool = False
    success_return: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.contract.dim != self.obs_dim:
            raise ValueError(
                f"{self.task_id}: contract has {self.contract.dim} entries, obs_dim {self.obs_dim}"
            )

    @property
    def control_rate(self) -> float:
        """Agent steps per second of simulated time."""
        return 1.0 / self.control_period

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary (for ``boom tasks``, bundles and the bridge handshake)."""
        return {
            "task_id": self.task_id,
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "control_period": self.control_period,
            "control_rate": self.control_rate,
            "episode_length": self.episode_length,
            "physics_dt": self.physics_dt,
            "substeps": self.substeps,
            "terminates": self.terminates,
            "contract_hash": self.contract.hash,
        }


class Env(abc.ABC):
    """Base class: validates actions, counts steps and applies the time limit."""

    spec: EnvSpec

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self._t = 0
        self._needs_reset = True

    @property
    def elapsed_steps(self) -> int:
        """Agent steps taken in the current episode."""
        return self._t

    def check_action(self, action: Any) -> np.ndarray:
        """Validate and clip an action; returns a ``(action_dim,)`` float64 array."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.spec.action_dim,):
            raise ActionError(
                f"{self.spec.task_id}: action must have shape ({self.spec.action_dim},), "
                f"got {a.shape}"
            )
        out = np.empty_like(a)
        if not _clip_unit(a, out):
            raise ActionError(f"{self.spec.task_id}: action contains NaN or Inf")
        return out

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode. ``seed`` makes the initial state (and all task noise) repeatable."""
        self._t = 0
        self._needs_reset = False
        return self._reset(seed)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Advance one agent step (``spec.substeps`` physics steps)."""
        if self._needs_reset:
            raise RuntimeError(f"{self.spec.task_id}: call reset() before step()")
        a = self.check_action(action)
        obs, reward, terminated, info = self._step(a)
        self._t += 1
        truncated = (not terminated) and self._t >= self.spec.episode_length
        if terminated or truncated:
            self._needs_reset = True
        return obs, float(reward), bool(terminated), bool(truncated), info

    @abc.abstractmethod
    def _reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]: ...

    @abc.abstractmethod
    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """Apply a validated, clipped action; return ``(obs, reward, terminated, info)``."""

    def render_target(self) -> RenderTarget | None:
        """The local MuJoCo model and state to draw, or None when the simulation runs
        elsewhere (a bridge server, hardware)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release simulator resources."""

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
