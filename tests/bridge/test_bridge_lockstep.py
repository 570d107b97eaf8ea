"""Lockstep over the bridge: identical trajectories, handshake checks, bad input replies."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from boom_control.envs.registry import make_env
from boom_control.errors import TaskError
from boom_control.sim.backend import SimBackend
from sim_bridge import protocol as P
from sim_bridge.client import BridgeClient, HandshakeError
from sim_bridge.protocol import ErrorCode
from sim_bridge.server import ServerConfig
from sim_bridge.testing import free_tcp_endpoint, server_thread

TASK = "dmc:cartpole-swingup"


@pytest.fixture
def cartpole_server(tmp_path: Path) -> Iterator[str]:
    endpoint = f"ipc://{tmp_path}/sim.sock"
    env = make_env(TASK, seed=0)
    try:
        with server_thread(SimBackend(env), ServerConfig(endpoint=endpoint)):
            yield endpoint
    finally:
        env.close()


def _compare(task: str, endpoint: str, seed: int, steps: int) -> None:
    remote = make_env(f"zmq:{endpoint}", seed=seed, timeout=10.0)
    local = make_env(task, seed=seed)
    try:
        assert remote.spec.contract.hash == local.spec.contract.hash
        assert (remote.spec.obs_dim, remote.spec.action_dim) == (
            local.spec.obs_dim,
            local.spec.action_dim,
        )
        assert remote.spec.control_period == local.spec.control_period
        rng = np.random.default_rng(seed)
        for episode in range(2):  # second episode: explicit seed on both sides
            s = None if episode == 0 else seed + 1
            o_r, _ = remote.reset(s)
            o_l, _ = local.reset(s)
            assert np.array_equal(o_r, o_l)
            for _ in range(steps):
                a = rng.uniform(-1.2, 1.2, local.spec.action_dim)  # some out of range: clipped
                r, l_ = remote.step(a), local.step(a)
                assert np.array_equal(r[0], l_[0])
                assert r[1:4] == l_[1:4]
                if l_[2] or l_[3]:
                    break
    finally:
        remote.close()
        local.close()


def test_lockstep_trajectory_equals_local_env(cartpole_server: str) -> None:
    _compare(TASK, cartpole_server, seed=5, steps=60)


def test_lockstep_over_tcp_and_time_limit() -> None:
    endpoint = free_tcp_endpoint()
    env = make_env(TASK, seed=0, episode_length=7)
    try:
        with server_thread(SimBackend(env), ServerConfig(endpoint=endpoint)):
            remote = make_env(f"zmq:{endpoint}", seed=0)
            assert remote.spec.episode_length == 7
            remote.reset()
            flags = [remote.step(np.zeros(1))[3] for _ in range(7)]
            assert flags == [False] * 6 + [True]
            with pytest.raises(RuntimeError, match="reset"):
                remote.step(np.zeros(1))
            remote.close()
    finally:
        env.close()


@pytest.mark.skipif(
    importlib.util.find_spec("boom_control.envs.h1") is None,
    reason="boom_control.envs.h1 not available",
)
def test_lockstep_h1_walk_equals_local(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/h1.sock"
    try:
        env = make_env("h1:walk", seed=0)
    except TaskError as err:
        pytest.skip(f"h1 model unavailable: {err}")
    try:
        with server_thread(SimBackend(env), ServerConfig(endpoint=endpoint)):
            _compare("h1:walk", endpoint, seed=2, steps=25)
    finally:
        env.close()


def test_contract_mismatch_is_refused_by_name(cartpole_server: str) -> None:
    with pytest.raises(TaskError, match="contract_mismatch.*0123456789abcdef"):
        make_env(f"zmq:{cartpole_server}", contract_hash="0123456789abcdef")
    with pytest.raises(HandshakeError, match="task_mismatch"):
        BridgeClient(cartpole_server, task="dmc:walker-walk", timeout=2.0).connect()
    with pytest.raises(HandshakeError, match="wrong_mode"):
        BridgeClient(cartpole_server, mode="realtime", timeout=2.0).connect()
    good = make_env(f"zmq:{cartpole_server}", contract_hash=make_env(TASK).spec.contract.hash)
    assert good.spec.task_id == TASK
    good.close()


def test_non_loopback_bind_needs_a_flag() -> None:
    from sim_bridge.server import BridgeServer
    from sim_bridge.transport import BridgeSecurityError

    env = make_env(TASK, seed=0)
    with pytest.raises(BridgeSecurityError, match="allow-remote"):
        BridgeServer(SimBackend(env), ServerConfig(endpoint="tcp://0.0.0.0:5555"))
    BridgeServer(SimBackend(env), ServerConfig(endpoint="tcp://0.0.0.0:5555", allow_remote=True))


def _raw_request(sock: zmq.Socket, frame: bytes | list[bytes]) -> dict:
    if isinstance(frame, list):
        sock.send_multipart(frame)
    else:
        sock.send(frame)
    assert sock.poll(5000), "server did not answer"
    return msgpack.unpackb(sock.recv(), raw=False)


def _enc(msg_type: str, seq: int, **body: object) -> bytes:
    return P.Codec().encode(msg_type, seq, **body)


def test_bad_messages_get_error_replies_and_server_keeps_going(cartpole_server: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cartpole_server)
    try:
        assert _raw_request(sock, _enc(P.HELLO, 1))["type"] == P.HELLO
        assert _raw_request(sock, _enc(P.RESET, 2, seed=1))["type"] == P.OBSERVATION
        good = np.zeros(1, dtype=np.float64)
        f4 = {"dtype": "<f4", "shape": [1], "data": b"\0" * 4}
        cases = [
            (lambda s: b"\x00\xffnot msgpack at all", ErrorCode.MALFORMED),
            (lambda s: _enc(P.STEP, s, action=good)[:-4], ErrorCode.MALFORMED),  # truncated
            (lambda s: [b"two", b"frames"], ErrorCode.MALFORMED),
            (lambda s: _enc(P.STEP, s, action={**f4, "dtype": "<i4"}), ErrorCode.BAD_ARRAY),
            (lambda s: _enc(P.STEP, s, action=np.zeros(3)), ErrorCode.BAD_SHAPE),
            (lambda s: _enc(P.STEP, s, action={**f4, "shape": [1 << 40]}), ErrorCode.TOO_LARGE),
            (lambda s: b"\xdd\xff\xff\xff\xff", ErrorCode.TOO_LARGE),  # 4e9-element array
            (lambda s: b"\x00" * (P.MAX_REQUEST_BYTES + 10), ErrorCode.TOO_LARGE),
            (lambda s: _enc(P.STEP, s, action=np.array([np.nan])), ErrorCode.NOT_FINITE),
            (lambda s: _enc(P.STEP, s, action=np.array([np.inf])), ErrorCode.NOT_FINITE),
            (lambda s: _enc(P.RESET, s, seed="seven"), ErrorCode.MALFORMED),
            (lambda s: _enc(P.ACTION, s, action=good), ErrorCode.WRONG_MODE),
            (lambda s: _enc(P.OBSERVATION, s), ErrorCode.BAD_TYPE),
        ]
        seq = 10
        for make, code in cases:
            seq += 1
            reply = _raw_request(sock, make(seq))
            assert (reply["type"], reply["code"]) == (P.ERROR, code), reply
            # ... and a valid request right after still works
            seq += 1
            ok = _raw_request(sock, _enc(P.STEP, seq, action=good))
            assert ok["type"] == P.OBSERVATION and ok["re"] == seq
        # stale: an old sequence number is dropped without a reply
        sock.send(_enc(P.HEARTBEAT, 5))
        assert not sock.poll(300)
        stats = _raw_request(sock, _enc(P.HEARTBEAT, seq + 1))["stats"]
        assert stats["errors"] >= len(cases)
        assert stats["stale"] == 1
    finally:
        sock.close(0)
        ctx.term()


def test_requests_before_hello_are_refused(cartpole_server: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(cartpole_server)
    try:
        reply = _raw_request(sock, _enc(P.RESET, 1))
        assert (reply["type"], reply["code"]) == (P.ERROR, ErrorCode.HELLO_REQUIRED)
    finally:
        sock.close(0)
        ctx.term()


def test_curve_encryption_and_client_authentication(tmp_path: Path) -> None:
    import zmq.auth

    from sim_bridge.client import BridgeTimeout

    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    keys.mkdir()
    allowed.mkdir()
    _, server_secret = zmq.auth.create_certificates(keys, "server")
    client_public, client_secret = zmq.auth.create_certificates(keys, "client")
    (allowed / "client.key").write_text(Path(client_public).read_text())
    endpoint = free_tcp_endpoint()
    cfg = ServerConfig(
        endpoint=endpoint, curve_secret_key=str(server_secret), curve_clients=str(allowed)
    )
    env = make_env(TASK, seed=0)
    try:
        with server_thread(SimBackend(env), cfg):
            server_public = str(keys / "server.key")
            with BridgeClient(
                endpoint, curve_server_key=server_public, curve_client_cert=str(client_secret)
            ) as client:
                assert client.reset(seed=0).obs.shape == (5,)
            stranger = BridgeClient(
                endpoint, timeout=0.3, retries=0, curve_server_key=server_public
            )
            with pytest.raises(BridgeTimeout):
                stranger.connect()
            stranger.close()
    finally:
        env.close()
