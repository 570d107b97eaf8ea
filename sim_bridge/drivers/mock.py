"""A mock robot for tests: joints that track their position command with a first-order lag.

It records every command written and whether the emergency stop was hit, so tests can
check what the bridge actually sent to the "hardware".
"""

from __future__ import annotations

import collections

import numpy as np

from sim_bridge.hardware import RobotDriver


class MockDriver(RobotDriver):
    """``n_joints`` position-controlled joints; state = positions then velocities.

    Args:
        n_joints: number of joints (action_dim); obs_dim is ``2 * n_joints``.
        control_period: seconds between commands.
        limit: symmetric command limit in rad.
        damping: the command written on watchdog / estop (default: zero).
    """

    name = "mock"

    def __init__(
        self,
        n_joints: int = 2,
        control_period: float = 0.01,
        limit: float = 0.5,
        damping: float = 0.0,
    ) -> None:
        self.control_period = control_period
        self.command_low = np.full(n_joints, -limit)
        self.command_high = np.full(n_joints, limit)
        self.state_names = tuple(f"q[{i}]" for i in range(n_joints)) + tuple(
            f"dq[{i}]" for i in range(n_joints)
        )
        self.state_units = ("rad",) * n_joints + ("rad/s",) * n_joints
        self._damping = np.full(n_joints, damping)
        self.q = np.zeros(n_joints)
        self.dq = np.zeros(n_joints)
        self.commands: collections.deque[np.ndarray] = collections.deque(maxlen=10_000)
        self.enabled = False
        self.estopped = False
        self.closed = False

    def enable(self) -> None:
        self.enabled = True
        self.estopped = False

    def read_state(self) -> np.ndarray:
        return np.concatenate([self.q, self.dq])

    def write_command(self, command: np.ndarray) -> None:
        command = np.array(command, dtype=np.float64)
        self.commands.append(command)
        new_q = self.q + 0.5 * (command - self.q)
        self.dq = (new_q - self.q) / self.control_period
        self.q = new_q

    def estop(self) -> None:
        self.estopped = True
        self.enabled = False

    def damping_command(self) -> np.ndarray:
        return self._damping.copy()

    def close(self) -> None:
        self.closed = True
