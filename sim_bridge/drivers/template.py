"""Template for a real robot driver. Copy this file, fill in the four marked methods.

The bridge (``sim_bridge.hardware``) calls the driver from its real-time loop, once per
control period: ``write_command`` with the newest (already clipped) command, then
``read_state``. Both must return quickly (well under a period): do blocking I/O in the
robot SDK's own thread and hand over the newest sample here. The bridge already provides
the watchdog, action limits, NaN rejection and the estop message; the driver only has to
make ``estop`` cut actuation and ``damping_command`` describe the safe command.

Serve it with::

    python -m sim_bridge robot my_robot.driver:MyRobotDriver --bind tcp://127.0.0.1:5556

Checklist before a first run on hardware:

* ``state_names`` match the observation contract the policy was trained with (the client
  compares contract hashes in the handshake, so a mismatch is refused by name);
* ``command_low`` / ``command_high`` are the joint (or torque) limits you trust, not the
  mechanical ones;
* ``estop`` works without the network (the SDK's own stop), and is idempotent;
* the robot is hung or supported for the first real-time test, with ``--watchdog 2``.
"""

from __future__ import annotations

import numpy as np

from sim_bridge.hardware import RobotDriver


class TemplateDriver(RobotDriver):
    """A position-controlled robot with ``n`` joints reached through a vendor SDK."""

    name = "template"
    control_period = 0.02  # 50 Hz, the controller's rate

    def __init__(self, n_joints: int = 19) -> None:
        self.command_low = np.full(n_joints, -1.0)  # rad: replace with trusted limits
        self.command_high = np.full(n_joints, 1.0)
        self.state_names = tuple(f"q[{i}]" for i in range(n_joints)) + tuple(
            f"dq[{i}]" for i in range(n_joints)
        )
        self.state_units = ("rad",) * n_joints + ("rad/s",) * n_joints
        self._sdk = None  # e.g. vendor_sdk.connect(ip)  (open the connection here)

    def enable(self) -> None:
        """Arm the motors (e.g. switch to position mode with the training PD gains)."""
        raise NotImplementedError("enable the robot through its SDK")

    def read_state(self) -> np.ndarray:
        """Newest joint positions then velocities, float, shape ``(2 * n_joints,)``."""
        raise NotImplementedError("return the newest state sample from the SDK")

    def write_command(self, command: np.ndarray) -> None:
        """Joint position targets in rad, already within the limits."""
        raise NotImplementedError("send the targets through the SDK")

    def estop(self) -> None:
        """Cut motor power (the SDK's emergency stop)."""
        raise NotImplementedError("call the SDK's emergency stop")

    def damping_command(self) -> np.ndarray:
        """The safe target for watchdog and estop (computed once, when served): here the
        nominal standing pose. A driver whose SDK has a damping mode can switch to it in
        ``write_command`` when it receives exactly this command."""
        return np.zeros_like(self.command_low)

    def close(self) -> None:
        """Disarm and disconnect."""
