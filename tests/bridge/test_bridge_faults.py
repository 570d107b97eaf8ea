"""Faults: a server killed and restarted mid-episode, a client killed mid-episode."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from boom_control.envs.registry import make_env
from boom_control.errors import EpisodeLostError
from boom_control.sim.backend import SimBackend
from sim_bridge.client import BridgeClient
from sim_bridge.server import ServerConfig
from sim_bridge.testing import ServerProcess, free_tcp_endpoint, server_thread

TASK = "dmc:cartpole-swingup"


def test_client_recovers_from_server_restart(caplog: pytest.LogCaptureFixture) -> None:
    endpoint = free_tcp_endpoint()
    args = ["-m", "boom_control", "sim", TASK, "--bind", endpoint]
    servers = [ServerProcess(args, endpoint).start()]
    env = None
    try:
        env = make_env(f"zmq:{endpoint}", seed=0, timeout=1.0, retries=40)
        env.reset()
        for _ in range(5):
            assert not env.step(np.array([0.3]))[3]
        servers[0].kill()  # crash mid-episode
        servers.append(ServerProcess(args, endpoint).launch())  # comes back in a moment
        with (
            caplog.at_level(logging.WARNING, logger="sim_bridge.client"),
            pytest.raises(EpisodeLostError, match="step 6: the server restarted"),
        ):
            env.step(np.array([0.3]))  # the lost step is an error, never a made-up result
        assert env.restarts == 1 and env.reconnects >= 1
        assert "restarted" in caplog.text
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.array([0.3]))
        # the new server serves the same task bit for bit
        local = make_env(TASK, seed=0)
        o_r, _ = env.reset(seed=11)
        assert np.array_equal(o_r, local.reset(seed=11)[0])
        for a in np.linspace(-1, 1, 10):
            assert np.array_equal(env.step([a])[0], local.step([a])[0])
    finally:
        if env is not None:
            env.close()
        for server in servers:
            server.stop()


_CLIENT = """
import sys, numpy as np
from boom_control.envs.registry import make_env
env = make_env("zmq:" + sys.argv[1], seed=0, timeout=5.0)
env.reset(seed=1)
for i in range(100000):
    env.step(np.array([0.5]))
    if i == 20:
        print("stepping", flush=True)
"""


def test_server_keeps_serving_after_client_is_killed(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/sim.sock"
    served = make_env(TASK, seed=0)
    proc = None
    try:
        with server_thread(
            SimBackend(served),
            ServerConfig(endpoint=endpoint),
            lambda: SimBackend(make_env(TASK, seed=0)),
        ) as server:
            proc = subprocess.Popen(
                [sys.executable, "-c", _CLIENT, endpoint], stdout=subprocess.PIPE, text=True
            )
            assert proc.stdout.readline().strip() == "stepping"
            proc.kill()  # mid-episode, mid-request perhaps
            proc.wait(10)
            steps_before = server.stats.ticks
            assert steps_before > 20
            # the next client gets a working server and an exact fresh episode
            env = make_env(f"zmq:{endpoint}", seed=0, timeout=5.0)
            local = make_env(TASK, seed=0)
            try:
                assert np.array_equal(env.reset(seed=4)[0], local.reset(seed=4)[0])
                for a in np.linspace(-1, 1, 15):
                    assert np.array_equal(env.step([a])[0], local.step([a])[0])
            finally:
                env.close()
                local.close()
            with BridgeClient(endpoint, timeout=5.0) as probe:
                stats = probe.heartbeat()["stats"]
            assert stats["ticks"] == server.stats.ticks >= steps_before + 15
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        served.close()
