"""Safety layer between the planner and the robot.

* Actions are clipped to the bounds ``[-1, 1]``.
* NaN/Inf in an observation or an action: the last safe action that was sent is held
  (:meth:`SafetyGuard.sent` records it; a command computed but never sent does not
  count) and the alarm state says why (``nan_obs`` / ``nan_action``); it clears on the
  next good tick.
* Stale observations: no new observation for ``stale_periods`` ticks -> the neutral
  (damping) command of the bridge's action mapping is sent (alarm ``stale_obs``), until a
  fresh observation arrives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from boom_control.envs.base import ActionMapping

NAN_OBS = "nan_obs"
NAN_ACTION = "nan_action"
STALE_OBS = "stale_obs"


def neutral_action(action_mapping: Mapping[str, Any] | None, action_dim: int) -> np.ndarray:
    """The normalised action whose actuator command is zero (``-offset / scale``), clipped;
    zeros when the mapping has no scale/offset. Shape ``(A,)``."""
    try:
        mapping = ActionMapping.from_json(action_mapping, action_dim)
    except (AttributeError, TypeError, ValueError):  # a server's malformed handshake entry
        return np.zeros(action_dim)
    return mapping.neutral(action_dim)


class SafetyGuard:
    """Turns the controller's candidate action into the command that is sent.

    Args:
        neutral: ``(A,)`` the damping/hold command used while observations are stale.
        stale_periods: ticks without a new observation before the neutral command.
    """

    def __init__(self, neutral: np.ndarray, stale_periods: int = 5) -> None:
        self.neutral = np.clip(np.asarray(neutral, dtype=np.float64), -1.0, 1.0)
        self.stale_periods = stale_periods
        self.last_safe = self.neutral.copy()
        self.alarm = ""
        self.alarms: dict[str, int] = {NAN_OBS: 0, NAN_ACTION: 0, STALE_OBS: 0}
        self._ticks_since_obs = 0

    @staticmethod
    def obs_ok(obs: np.ndarray) -> bool:
        """An observation the model may see (every entry finite)."""
        return bool(np.all(np.isfinite(obs)))

    def observe(self, fresh: bool) -> bool:
        """Record whether this tick has a new observation; True while they are stale."""
        self._ticks_since_obs = 0 if fresh else self._ticks_since_obs + 1
        return self._ticks_since_obs >= self.stale_periods

    def command(
        self, action: np.ndarray | None, obs_ok: bool, stale: bool
    ) -> tuple[np.ndarray, str]:
        """The command to send and its source (``plan``/``policy`` pass through as ``ok``).

        Args:
            action: ``(A,)`` candidate (None when nothing could be computed).
            obs_ok: the observation was finite.
            stale: :meth:`observe` said the observations are stale.
        Returns:
            ``(A,)`` float64 command in ``[-1, 1]`` and ``"ok"``, ``"hold"`` or ``"damp"``.
        """
        if stale:
            self._raise(STALE_OBS)
            return self.neutral.copy(), "damp"
        if not obs_ok:
            self._raise(NAN_OBS)
            return self.last_safe.copy(), "hold"
        if action is None or not np.all(np.isfinite(action)):
            self._raise(NAN_ACTION)
            return self.last_safe.copy(), "hold"
        self.alarm = ""
        return np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0), "ok"

    def sent(self, command: np.ndarray, source: str) -> None:
        """Record that ``command`` (``(A,)``, from :meth:`command` with ``source``) reached
        the robot: an ``ok`` one becomes the action a later bad tick holds."""
        if source == "ok":
            self.last_safe = np.array(command, dtype=np.float64)

    def _raise(self, alarm: str) -> None:
        if self.alarm != alarm:
            self.alarms[alarm] += 1
        self.alarm = alarm
