"""Polling options (server ``busy_poll``, client ``spin``): same answers, same validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from boom_control.envs.registry import make_env
from sim_bridge.client import BridgeClient, RemoteError
from sim_bridge.protocol import ErrorCode
from sim_bridge.server import ServerConfig
from sim_bridge.sim_server import SimBackend
from sim_bridge.testing import server_thread

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
