"""Sessions on a lockstep server: a simulation per client (up to max_instances), sessions
kept alive by the client library's heartbeats, resumed on a new connection, and a lost
step reported as an error, never as a made-up transition."""

from __future__ import annotations

import time

import numpy as np
import pytest

from boom_control.envs import make_env
from boom_control.errors import EpisodeLostError, TaskError
from boom_control.sim.backend import SimBackend
from sim_bridge.client import BridgeClient, EpisodeLost
from sim_bridge.pool import InstancePool
from sim_bridge.server import ServerConfig
from sim_bridge.testing import free_tcp_endpoint, server_thread

TASK = "h1:walk"  # terminates when the robot falls


def _serve(endpoint: str, **config):
    """A lockstep server of TASK with a simulation per client."""
    return server_thread(
        SimBackend(make_env(TASK, seed=0)),
        ServerConfig(endpoint=endpoint, **config),
        lambda: SimBackend(make_env(TASK, seed=0)),
    )


def _actions(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, dim))


def test_each_client_steps_its_own_simulation():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint) as server:
        a = make_env(f"zmq:{endpoint}", seed=0)
        b = make_env(f"zmq:{endpoint}", seed=0)
        local_a, local_b = make_env(TASK, seed=0), make_env(TASK, seed=0)
        try:
            assert a.spec.extras["instances"] == 8
            assert np.array_equal(a.reset(seed=3)[0], local_a.reset(seed=3)[0])
            assert np.array_equal(b.reset(seed=4)[0], local_b.reset(seed=4)[0])
            acts_a, acts_b = _actions(30, a.spec.action_dim, 0), _actions(30, 19, 1)
            for x, y in zip(acts_a, acts_b, strict=True):  # interleaved, never mixed up
                ra, rb = a.step(x), b.step(y)
                la, lb = local_a.step(x), local_b.step(y)
                assert np.array_equal(ra[0], la[0]) and ra[1:4] == la[1:4]
                assert np.array_equal(rb[0], lb[0]) and rb[1:4] == lb[1:4]
                if ra[2] or ra[3]:
                    break
            assert server._pool.built == 2 and server._pool.in_use == 2
        finally:
            for env in (a, b, local_a, local_b):
                env.close()
        deadline = time.monotonic() + 5.0
        while server._pool.in_use and time.monotonic() < deadline:  # closed: given back
            time.sleep(0.01)
        assert server._pool.in_use == 0


def test_a_full_server_refuses_clearly_and_reuses_a_released_simulation():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint, max_instances=1) as server:
        first = make_env(f"zmq:{endpoint}", seed=0)
        second = make_env(f"zmq:{endpoint}", seed=0)
        try:
            first.reset(seed=1)
            assert first.spec.extras["instances"] == 1
            with pytest.raises(TaskError, match="every simulation of this server is in use"):
                second.reset(seed=2)
            assert server.stats.full == 1
            first.step(np.zeros(19))
            first.close()
            # the same simulation, handed to the next client, starts from its reset seed
            local = make_env(TASK, seed=0)
            assert np.array_equal(second.reset(seed=2)[0], local.reset(seed=2)[0])
            for x in _actions(10, 19, 2):
                assert np.array_equal(second.step(x)[0], local.step(x)[0])
            assert server._pool.built == 1
        finally:
            second.close()


def test_a_busy_client_keeps_its_session_by_heartbeats():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint, client_timeout=0.4) as server:
        env = make_env(f"zmq:{endpoint}", seed=0)
        local = make_env(TASK, seed=0)
        try:
            env.reset(seed=5)
            local.reset(seed=5)
            time.sleep(1.5)  # a long plan, compile or batch of updates: > 3 timeouts
            x = np.full(19, 0.1)
            assert np.array_equal(env.step(x)[0], local.step(x)[0])
            assert env.client.heartbeats >= 2
            assert server.stats.clients_expired == 0
        finally:
            env.close()


def test_a_silent_client_without_keepalive_loses_its_episode_with_the_reason():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint, client_timeout=0.3) as server:
        client = BridgeClient(endpoint, timeout=2.0, keepalive=False)
        try:
            client.connect()
            client.reset(seed=1)
            time.sleep(1.6)  # the server checks for silent clients once a second
            with pytest.raises(EpisodeLost, match="forgotten this client") as lost:
                client.step(np.zeros(19))
            assert "client_timeout of 0.3 s" in lost.value.reason
            assert server.stats.clients_expired == 1
            client.reset(seed=1)  # reset goes on, on a new simulation session
            client.step(np.zeros(19))
        finally:
            client.close()


def test_remote_env_raises_a_lost_step_instead_of_inventing_one():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint, client_timeout=0.3):
        env = make_env(f"zmq:{endpoint}", seed=0, keepalive=False)  # the session will expire
        try:
            env.reset(seed=1)
            env.step(np.zeros(19))
            time.sleep(1.6)
            with pytest.raises(EpisodeLostError, match="episode lost at step 2: the server had"):
                env.step(np.zeros(19))
            with pytest.raises(RuntimeError, match="reset"):
                env.step(np.zeros(19))
            env.reset(seed=1)
            env.step(np.zeros(19))
        finally:
            env.close()


def test_a_reconnection_resumes_the_session_and_its_episode():
    endpoint = free_tcp_endpoint()
    with _serve(endpoint) as server:
        client = BridgeClient(endpoint, timeout=2.0)
        local = make_env(TASK, seed=0)
        try:
            client.connect()
            assert np.array_equal(client.reset(seed=7).obs, local.reset(seed=7)[0])
            acts = _actions(6, 19, 3)
            for x in acts[:3]:
                client.step(x)
                local.step(x)
            with client._lock:
                client._reconnect()  # a new socket, as after a timeout
            assert client._resumed and server.stats.resumed == 1
            for x in acts[3:]:  # the same simulation, mid-episode
                assert np.array_equal(client.step(x).obs, local.step(x)[0])
            assert server._pool.built == 1
        finally:
            client.close()


def test_instance_pool_hands_out_up_to_its_capacity():
    built = []

    class Sim:
        def close(self) -> None:
            built.remove(self)

    def make() -> Sim:
        built.append(Sim())
        return built[-1]

    first = make()
    pool = InstancePool(first, make, capacity=2)
    a, b = pool.acquire(), pool.acquire()
    assert a is first and b is not first and pool.acquire() is None
    pool.release(a)
    assert pool.acquire() is a and pool.in_use == 2 and pool.built == 2
    pool.close()
    assert built == []
    single = InstancePool(object(), None, capacity=8)
    assert single.capacity == 1 and single.acquire() is not None and single.acquire() is None


def test_a_malformed_client_id_is_refused_by_name():
    import zmq

    from sim_bridge import protocol as P

    endpoint = free_tcp_endpoint()
    with _serve(endpoint) as server:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.rcvtimeo = 2000
        sock.connect(endpoint)
        codec = P.Codec()
        try:
            for seq, bad in enumerate(("abc", -1, 2**63, True), start=1):
                sock.send(codec.encode(P.HELLO, seq, client="probe", client_id=bad))
                reply = codec.decode(sock.recv())
                assert reply["type"] == P.ERROR and reply["code"] == P.ErrorCode.MALFORMED
                assert "client_id" in reply["message"]
            assert server.stats.faults == 0 and not server._clients
        finally:
            sock.close(0)
            ctx.term()


def test_adapter_refuses_kwargs_that_are_not_a_json_object():
    import subprocess
    import sys

    for kwargs, message in (("{not json", "--kwargs is not JSON"), ("[1]", "JSON object")):
        done = subprocess.run(
            [sys.executable, "-m", "sim_bridge", "gym", "Pendulum-v1", "--kwargs", kwargs],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and message in done.stderr
