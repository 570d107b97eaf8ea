"""Real-time mode: late actions counted and held (or damped); watchdog, limits and estop."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.envs.registry import make_env
from boom_control.sim.backend import SimBackend
from sim_bridge.client import BridgeClient, RemoteError
from sim_bridge.drivers.mock import MockDriver
from sim_bridge.hardware import HardwareBackend
from sim_bridge.protocol import ErrorCode
from sim_bridge.server import ServerConfig
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


def _newer(client: BridgeClient, seq: int, timeout: float = 1.0):
    """The newest observation after message ``seq`` (None if none came in ``timeout``)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ob = client.latest_observation(timeout=0.05)
        if ob is not None and ob.seq > seq:
            return ob
    return None


def test_a_sim_episode_starts_with_its_own_first_action(tmp_path: Path) -> None:
    """After a reset a simulator holds still until that episode's first action; an episode
    end carries the next episode's first observation; actions computed for an episode
    that is over are dropped."""
    env = make_env("h1:stand", seed=0, episode_length=4)
    period = env.spec.control_period
    cfg = ServerConfig(endpoint=f"ipc://{tmp_path}/ep.sock", mode="realtime")
    backend = SimBackend(env)
    backend.warm_up(0)
    try:
        with (
            server_thread(backend, cfg),
            BridgeClient(cfg.endpoint, mode="realtime", timeout=5.0) as client,
        ):
            assert client.info.raw["waits_for_first_action"] is True
            first = client.reset(seed=3)
            assert first.info["episode"] == 1 and first.control_episode == 1
            time.sleep(6 * period)  # no action yet: the sim must not move
            stats = client.heartbeat()["stats"]
            assert stats["ticks"] == 0 and stats["waiting"] >= 3
            assert client.latest_observation().seq == first.seq

            # drive the episode to its end (4 steps), each action tagged with its episode
            ob, steps = first, []
            while not (ob.terminated or ob.truncated):
                action = np.full(env.spec.action_dim, 0.01 * (len(steps) + 1))
                client.send_action(action, episode=ob.control_episode)
                ob = _newer(client, ob.seq)
                assert ob is not None and ob.info["episode"] == 1
                steps.append(ob.info["step"])
                assert np.allclose(ob.info["action"], action)  # the action of this episode
            assert steps == [1, 2, 3, 4] and ob.truncated
            # the terminal observation brings the next episode's first one
            assert ob.info["next_episode"] == 2 and ob.control_episode == 2
            assert ob.control_obs.shape == (env.spec.obs_dim,)
            assert not np.allclose(ob.control_obs, ob.obs)
            ticks = client.heartbeat()["stats"]["ticks"]

            # an action computed for the finished episode is dropped, and episode 2 waits
            client.send_action(np.full(env.spec.action_dim, 0.5), episode=1)
            time.sleep(5 * period)
            stats = client.heartbeat()["stats"]
            assert stats["stale_actions"] == 1 and stats["ticks"] == ticks
            # its own first action starts it, from the observation the server announced
            client.send_action(np.full(env.spec.action_dim, -0.2), episode=2)
            nxt = _newer(client, ob.seq)
            assert nxt is not None and nxt.info["episode"] == 2 and nxt.info["step"] == 1
            assert np.allclose(nxt.info["action"], -0.2)
            # an untagged action is always accepted (clients that do not track episodes)
            client.send_action(np.zeros(env.spec.action_dim))
            assert _newer(client, nxt.seq) is not None
    finally:
        env.close()


def test_a_robot_keeps_ticking_after_reset(tmp_path: Path) -> None:
    """Hardware cannot hold time still: after a reset the server ticks at once, applying
    the damping command until the first action."""
    driver = MockDriver(n_joints=2, control_period=0.01, limit=0.5, damping=0.1)
    cfg = ServerConfig(endpoint=f"ipc://{tmp_path}/hw.sock", mode="realtime")
    with (
        server_thread(HardwareBackend(driver), cfg),
        BridgeClient(cfg.endpoint, mode="realtime", timeout=5.0) as client,
    ):
        assert not client.info.raw.get("waits_for_first_action", False)
        first = client.reset()
        ob = _newer(client, first.seq)
        assert ob is not None and ob.info["step"] >= 1 and np.allclose(ob.info["action"], 0.2)
        assert client.heartbeat()["stats"]["waiting"] == 0


def test_malformed_episode_tag_is_refused(tmp_path: Path) -> None:
    env = make_env("dmc:cartpole-swingup", seed=0)
    cfg = ServerConfig(endpoint=f"ipc://{tmp_path}/bad.sock", mode="realtime")
    try:
        with (
            server_thread(SimBackend(env), cfg),
            BridgeClient(cfg.endpoint, mode="realtime", timeout=5.0) as client,
        ):
            client.reset(seed=0)
            client._send("action", action=np.zeros(1), episode="one")
            time.sleep(0.1)
            client.latest_observation()
            assert any(e.code == ErrorCode.MALFORMED for e in client.errors)
    finally:
        env.close()
