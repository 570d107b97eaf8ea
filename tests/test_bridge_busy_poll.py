"""Lockstep server with ``busy_poll``: same answers, same validation, bounded setting."""

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


def test_busy_poll_must_be_a_short_non_negative_time() -> None:
    with pytest.raises(ValueError, match="busy_poll"):
        ServerConfig(busy_poll=-1e-3)
    with pytest.raises(ValueError, match="busy_poll"):
        ServerConfig(busy_poll=5.0)


def test_busy_poll_server_answers_like_a_blocking_one(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/busy.sock"
    served, local = make_env(TASK, seed=0), make_env(TASK, seed=0)
    try:
        config = ServerConfig(endpoint=endpoint, busy_poll=2e-4)
        with (
            server_thread(SimBackend(served), config),
            BridgeClient(endpoint, timeout=5.0) as client,
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
