"""Real-time mode: late actions counted and held (or damped); watchdog, limits and estop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.envs.registry import make_env
from sim_bridge.client import BridgeClient, RemoteError
from sim_bridge.drivers.mock import MockDriver
from sim_bridge.hardware import HardwareBackend
from sim_bridge.protocol import ErrorCode
from sim_bridge.server import ServerConfig
from sim_bridge.sim_server import SimBackend
from sim_bridge.testing import ServerProcess, server_thread


@pytest.mark.parametrize("on_late", ["hold", "damp"])
def test_late_actions_are_counted_and_held(tmp_path: Path, on_late: str) -> None:
    env = make_env("dmc:cartpole-swingup", seed=0)
    period = env.spec.control_period  # 20 ms
    cfg = ServerConfig(
        endpoint=f"ipc://{tmp_path}/rt.sock",
        mode="realtime",
        on_late=on_late,
        watchdog_periods=1000,
    )
    gaps = 5
    backend = SimBackend(env)
    backend.warm_up(0)  # what `boom sim --mode realtime` does before serving
    try:
        with (
            server_thread(backend, cfg),
            BridgeClient(cfg.endpoint, mode="realtime", timeout=5.0) as client,
        ):
            client.reset(seed=0)
            held_ok = 0
            for k in range(gaps):
                action = np.array([0.1 * (k + 1)])
                client.send_action(action)
                time.sleep(3 * period)  # the client is too slow: 3 periods per action
                ob = client.latest_observation(timeout=2 * period)
                assert ob is not None and ob.obs.shape == (env.spec.obs_dim,)
                assert ob.age < 5.0
                # at the newest tick no new action had come: late, and the action applied
                # was the last one sent (hold) or the neutral one (damp)
                if ob.info["late"]:
                    expected = action if on_late == "hold" else np.zeros(1)
                    assert np.allclose(ob.info["action"], expected)
                    held_ok += 1
            stats = client.heartbeat()["stats"]
        assert stats["late"] >= gaps  # >= 2 per gap when the machine keeps up
        assert held_ok >= 1
        assert stats["watchdog"] == 0
    finally:
        env.close()


def _commands(driver: MockDriver, n: int) -> np.ndarray:
    return np.array(list(driver.commands)[-n:])


def test_watchdog_limits_and_estop_with_mock_driver(tmp_path: Path) -> None:
    driver = MockDriver(n_joints=2, control_period=0.01, limit=0.5, damping=0.1)
    cfg = ServerConfig(endpoint=f"ipc://{tmp_path}/robot.sock", mode="realtime", watchdog_periods=3)
    period = driver.control_period
    with (
        server_thread(HardwareBackend(driver), cfg),
        BridgeClient(cfg.endpoint, mode="realtime", timeout=5.0) as client,
    ):
        assert client.info.task_id == "robot:mock" and client.info.obs_dim == 4
        client.reset()
        assert driver.enabled
        # limits: out-of-range actions are clipped, the command stays within [-0.5, 0.5]
        client.send_action(np.array([3.0, -0.5]))
        time.sleep(2 * period)
        assert np.any(np.all(np.isclose(_commands(driver, 50), [0.5, -0.25]), axis=1))
        # NaN is refused with an error reply and never reaches the driver
        client.send_action(np.array([np.nan, 0.0]))
        time.sleep(3 * period)
        client.latest_observation()
        assert any(e.code == ErrorCode.NOT_FINITE for e in client.errors)
        assert np.all(np.isfinite(np.array(driver.commands)))
        assert np.all(np.abs(np.array(driver.commands)) <= 0.5)
        # watchdog: silence for well over 3 periods -> the damping command
        time.sleep(15 * period)
        assert np.allclose(_commands(driver, 3), 0.1)
        ob = client.latest_observation(timeout=0.5)
        assert ob.info["watchdog"]
        assert client.heartbeat()["stats"]["watchdog"] == 1
        # a fresh action ends the watchdog
        client.send_action(np.array([0.6, 0.6]))
        time.sleep(3 * period)
        assert np.any(np.all(np.isclose(_commands(driver, 5), 0.3), axis=1))
        # estop: latched, driver told, only damping from now on, actions refused
        client.estop()
        assert driver.estopped
        n = len(driver.commands)
        client.send_action(np.array([0.4, 0.4]))
        time.sleep(5 * period)
        client.latest_observation()
        assert any(e.code == ErrorCode.ESTOPPED for e in client.errors)
        assert len(driver.commands) > n and np.allclose(
            _commands(driver, len(driver.commands) - n), 0.1
        )
        with pytest.raises(RemoteError, match="estopped"):
            client.reset()
        client.reset(clear_estop=True)
        assert driver.enabled and not driver.estopped


def test_boom_sim_serves_a_driver_in_real_time(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/drv.sock"
    args = ["-m", "boom_control", "sim", "--driver", "sim_bridge.drivers.mock:MockDriver"]
    with (
        ServerProcess([*args, "--bind", endpoint], endpoint),
        BridgeClient(endpoint, mode="realtime", timeout=5.0) as client,
    ):
        assert client.info.task_id == "robot:mock" and client.info.mode == "realtime"
        first = client.reset()
        client.send_action(np.zeros(client.info.action_dim))
        later = client.latest_observation(timeout=1.0)
        assert later is not None and later.seq > first.seq
        client.estop()
        with pytest.raises(RemoteError, match="estopped"):
            client.reset()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--driver", "sim_bridge.drivers.mock:MockDriver", "--mode", "lockstep"], "lockstep"),
        (["h1:stand", "--driver", "sim_bridge.drivers.mock:MockDriver"], "not both"),
        ([], "not both"),
        (["--driver", "sim_bridge.drivers.mock"], "package.module:Class"),
        (["--driver", "no_such_module_xyz:Driver"], "cannot import"),
        (["--driver", "sim_bridge.server:ServerConfig"], "not a RobotDriver"),
        (["dmc:cartpole-swingup", "--busy-poll", "3"], "busy-poll"),
    ],
)
def test_boom_sim_rejects_bad_driver_and_polling_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["sim", *args])
    assert result.exit_code == 2
    assert message in result.output
