"""Polling options (server ``busy_poll``, client ``spin``): same answers, same validation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from boom_control.cli import cli
from boom_control.envs.registry import make_env
from boom_control.sim.backend import SimBackend
from sim_bridge.client import BridgeClient, RemoteError
from sim_bridge.protocol import ErrorCode
from sim_bridge.server import ServerConfig, effective_busy_poll
from sim_bridge.testing import ServerProcess, server_thread

TASK = "dmc:cartpole-swingup"


def test_polling_settings_must_be_short_non_negative_times() -> None:
    with pytest.raises(ValueError, match="busy_poll"):
        ServerConfig(busy_poll=-1e-3)
    with pytest.raises(ValueError, match="busy_poll"):
        ServerConfig(busy_poll=5.0)
    with pytest.raises(ValueError, match="spin"):
        BridgeClient("ipc:///nonexistent", spin=-1.0)


@pytest.mark.parametrize(
    ("busy_poll", "spin"), [(0.0, 0.0), (2e-4, 0.0), (0.0, 1e-3), (2e-4, 1e-3)]
)
def test_polling_server_and_client_answer_like_blocking_ones(
    tmp_path: Path, busy_poll: float, spin: float
) -> None:
    endpoint = f"ipc://{tmp_path}/busy.sock"
    served, local = make_env(TASK, seed=0), make_env(TASK, seed=0)
    try:
        config = ServerConfig(endpoint=endpoint, busy_poll=busy_poll)
        with (
            server_thread(SimBackend(served), config),
            BridgeClient(endpoint, timeout=5.0, spin=spin) as client,
        ):
            assert np.array_equal(client.reset(3).obs, local.reset(3)[0])
            for a in np.linspace(-1, 1, 20):
                assert np.array_equal(client.step(np.array([a])).obs, local.step([a])[0])
            with pytest.raises(RemoteError) as err:
                client.step(np.array([np.nan]))
            assert err.value.code == ErrorCode.NOT_FINITE
    finally:
        served.close()
        local.close()


def test_busy_poll_is_off_when_the_server_may_use_one_cpu_only(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1})
    assert effective_busy_poll(5e-4) == 5e-4
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {1})
    assert effective_busy_poll(5e-4) == 0.0
    assert effective_busy_poll(0.0) == 0.0


def test_boom_sim_pins_to_cpus_and_rejects_unknown_ones(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/pinned.sock"
    args = ["-m", "boom_control", "sim", TASK, "--bind", endpoint, "--cpus", "0"]
    with ServerProcess(args, endpoint) as server:
        assert os.sched_getaffinity(server.proc.pid) == {0}
        with BridgeClient(endpoint, timeout=5.0) as client:
            assert client.reset(0).obs.shape == (5,)
    result = CliRunner().invoke(cli, ["sim", TASK, "--cpus", "0,9999"])
    assert result.exit_code == 2 and "CPUs must be in 0.." in result.output
