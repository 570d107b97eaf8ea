"""Robot drivers for the hardware bridge (``sim_bridge.hardware.RobotDriver``)."""
