"""Hardware bridge: the bridge server in front of a :class:`RobotDriver` instead of MuJoCo.

A driver only moves bytes to and from the robot: read the state, write a command, cut the
power. The server adds everything safety-related, so every driver gets it:

* real-time loop at the driver's control period (hardware cannot run lockstep);
* action limits: actions are clipped to [-1, 1], NaN/Inf actions are refused, and the
  mapped command is clipped again to ``[command_low, command_high]``;
* watchdog: no action for ``watchdog_periods`` periods -> the driver's damping command;
* ``estop`` message: latched, calls :meth:`RobotDriver.estop`, then only the damping
  command is written until a ``reset`` with ``clear_estop``.

Serve a driver with ``python -m sim_bridge robot my_pkg.my_driver:MyDriver --bind ...``.
See ``sim_bridge/drivers/template.py`` for writing one and ``drivers/mock.py`` for tests.
"""

from __future__ import annotations

import abc
import argparse
import importlib
import logging
import threading
from typing import Any

import numpy as np

from sim_bridge.protocol import affine_action_mapping, contract_hash
from sim_bridge.server import BridgeServer, ServerConfig, add_admission_arguments


class RobotDriver(abc.ABC):
    """The small interface a robot implements.

    Attributes:
        name: robot name, announced as the task id ``robot:<name>``.
        control_period: seconds between commands.
        command_low / command_high: ``(action_dim,)`` actuator command limits.
        state_names: ``obs_dim`` names of the state vector, in order.
        state_units: unit of each state entry (or one unit for all).
    """

    name: str = "robot"
    control_period: float = 0.02
    command_low: np.ndarray
    command_high: np.ndarray
    state_names: tuple[str, ...]
    state_units: tuple[str, ...] | str = "1"

    def enable(self) -> None:  # noqa: B027 - optional hook
        """Arm the robot (called on ``reset``); the default does nothing."""

    @abc.abstractmethod
    def read_state(self) -> np.ndarray:
        """The newest ``(obs_dim,)`` state vector, in the order of :attr:`state_names`."""

    @abc.abstractmethod
    def write_command(self, command: np.ndarray) -> None:
        """Send a ``(action_dim,)`` command, already within the limits."""

    @abc.abstractmethod
    def estop(self) -> None:
        """Cut actuation now (latched by the bridge)."""

    def damping_command(self) -> np.ndarray:
        """The safe command for watchdog and estop; default: zero clipped to the limits."""
        return np.clip(np.zeros_like(self.command_low), self.command_low, self.command_high)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the connection to the robot."""


class HardwareBackend:
    """Adapts a :class:`RobotDriver` to the server's backend interface."""

    def __init__(self, driver: RobotDriver) -> None:
        self.driver = driver
        self._low = np.asarray(driver.command_low, dtype=np.float64).reshape(-1)
        self._high = np.asarray(driver.command_high, dtype=np.float64).reshape(-1)
        if self._low.shape != self._high.shape or np.any(self._high < self._low):
            raise ValueError(f"{driver.name}: command limits must be ordered and of equal shape")
        self._scale = (self._high - self._low) / 2.0
        self._offset = (self._high + self._low) / 2.0
        safe = np.where(self._scale != 0.0, self._scale, 1.0)
        damp = np.asarray(driver.damping_command(), dtype=np.float64)
        self._neutral = np.clip((damp - self._offset) / safe, -1.0, 1.0)
        names = list(driver.state_names)
        units = driver.state_units
        units = [units] * len(names) if isinstance(units, str) else list(units)
        self._contract = {
            "version": 1,
            "fields": [
                {"key": n, "size": 1, "unit": u, "names": [n], "scale": 1.0}
                for n, u in zip(names, units)
            ],
        }

    def describe(self) -> dict[str, Any]:
        d = self.driver
        return {
            "task_id": f"robot:{d.name}",
            "obs_dim": len(d.state_names),
            "action_dim": int(self._low.size),
            "control_period": float(d.control_period),
            "control_rate": 1.0 / d.control_period,
            "episode_length": 2**31 - 1,
            "physics_dt": float(d.control_period),
            "substeps": 1,
            "terminates": False,
            "success_return": None,
            "contract": self._contract,
            "contract_hash": contract_hash(self._contract),
            "action_mapping": affine_action_mapping(self._scale, self._offset),
        }

    def command(self, action: np.ndarray) -> np.ndarray:
        """Normalised action -> actuator command within the limits."""
        return np.clip(self._offset + self._scale * action, self._low, self._high)

    def reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]:
        self.driver.enable()
        return np.asarray(self.driver.read_state(), dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.driver.write_command(self.command(action))
        return np.asarray(self.driver.read_state(), dtype=np.float32), 0.0, False, False, {}

    def neutral_action(self) -> np.ndarray:
        return self._neutral

    def estop(self) -> None:
        self.driver.estop()

    def close(self) -> None:
        self.driver.close()


def serve_driver(
    driver: RobotDriver, config: ServerConfig, stop: threading.Event | None = None
) -> None:
    """Serve ``driver`` in real time until ``stop`` is set (or SIGINT/SIGTERM)."""
    if config.mode != "realtime":
        raise ValueError("a robot cannot run lockstep: use mode='realtime'")
    BridgeServer(HardwareBackend(driver), config).serve(stop)


def load_driver(spec: str) -> RobotDriver:
    """Build the driver named ``module:Class`` (constructed with no arguments).

    Raises:
        ValueError: malformed spec, missing module or class, or not a :class:`RobotDriver`.
    """
    module_name, sep, cls_name = spec.partition(":")
    if not sep or not module_name or not cls_name:
        raise ValueError(f"driver must look like 'package.module:Class', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import driver module {module_name!r}: {err}") from None
    cls = getattr(module, cls_name, None)
    # the package's class, also when this file runs as __main__ (python -m ...)
    base = importlib.import_module("sim_bridge.hardware").RobotDriver
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(
            f"{spec!r} is not a RobotDriver subclass "
            "(see sim_bridge/drivers/template.py for writing one)"
        )
    return cls()


def main(argv: list[str] | None = None, prog: str = "python -m sim_bridge robot") -> None:
    """``python -m sim_bridge robot MODULE:CLASS [--bind ...] [--watchdog N]``."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("driver", help="driver class as module:Class (built with no arguments)")
    parser.add_argument("--bind", default="tcp://127.0.0.1:5556")
    parser.add_argument("--watchdog", type=int, default=5)
    add_admission_arguments(parser)
    parser.add_argument("--allow-remote", action="store_true")
    parser.add_argument("--curve-secret-key")
    parser.add_argument("--curve-clients")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        driver = load_driver(args.driver)
    except ValueError as err:
        parser.error(str(err))
    try:
        config = ServerConfig(
            endpoint=args.bind,
            mode="realtime",
            on_late="hold",
            watchdog_periods=args.watchdog,
            allow_remote=args.allow_remote,
            lease_timeout=args.lease_timeout,
            max_clients=args.max_clients,
            client_timeout=args.client_timeout,
            curve_secret_key=args.curve_secret_key,
            curve_clients=args.curve_clients,
            name=f"robot:{driver.name}",
        )
    except ValueError as err:  # a setting out of range
        parser.error(str(err))
    serve_driver(driver, config)


if __name__ == "__main__":
    main()
