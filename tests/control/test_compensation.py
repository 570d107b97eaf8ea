"""Latency compensation: a server that delays its observations on purpose, and a loop that
plans from the latent predicted through the actions already sent."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from boom_control.control.factory import build_backend
from boom_control.control.loop import Controller, LoopConfig
from boom_control.envs import make_env
from boom_control.sim.backend import SimBackend
from boom_control.telemetry import TelemetryWriter, TickRecord, read_telemetry
from export import load_bundle
from sim_bridge.client import BridgeClient
from sim_bridge.server import ServerConfig
from sim_bridge.testing import free_tcp_endpoint, server_thread

PERIOD = 0.02  # h1:stand, 50 Hz


def _delayed(ticks: int):
    cfg = ServerConfig(endpoint=free_tcp_endpoint(), mode="realtime", obs_delay_ticks=ticks)
    return cfg, server_thread(SimBackend(make_env("h1:stand", seed=0)), cfg)


def test_a_delayed_server_pushes_each_observation_ticks_late_and_says_so():
    with pytest.raises(ValueError, match="use mode realtime"):
        ServerConfig(mode="lockstep", obs_delay_ticks=1)
    cfg, server = _delayed(2)
    with server, BridgeClient(cfg.endpoint, mode="realtime") as client:
        first = client.reset(seed=0)
        zero = np.zeros(client.info.action_dim, np.float32)
        frames, last = [], first.seq
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            client.send_action(zero, first.control_episode)
            ob = client.latest_observation(timeout=0.05)
            if ob is not None and ob.seq != last:
                last = ob.seq
                frames.append((ob.info["tick"], ob.info["obs_delay"], ob.latency, ob.received_at))
    ticks = [f[0] for f in frames]
    assert len(frames) >= 15 and ticks == list(range(ticks[0], ticks[0] + len(ticks)))
    delays = np.array([f[1] for f in frames[1:]])
    # held back two ticks (the server's sleep-then-spin ticks keep to ~0.1 ms)
    assert np.all(np.abs(delays - 2 * PERIOD) < 0.3 * PERIOD), delays
    assert all(f[2] >= f[1] for f in frames)
    # still one observation per tick
    gaps = np.diff([f[3] for f in frames[1:]])
    assert np.median(gaps) == pytest.approx(PERIOD, rel=0.2)


def _run(bundle, cfg: ServerConfig, server, tmp_path, compensate: bool):
    backend = build_backend(bundle, "onnx", "cpu", threads=1, samples=16, iterations=1)
    loop_cfg = LoopConfig(rate=50.0, budget_ms=12.0, duration=1.5, compensate=compensate)
    path = tmp_path / f"c{int(compensate)}.jsonl"
    with server, BridgeClient(cfg.endpoint, mode="realtime") as client:
        loop = Controller(backend, client, loop_cfg, TelemetryWriter(path, {}), status=None)
        loop.run()
    return read_telemetry(path).ticks


def test_the_loop_predicts_through_as_many_sent_actions_as_the_delay_spans(random_bundle, tmp_path):
    bundle = load_bundle(random_bundle)
    for compensate in (False, True):
        cfg, server = _delayed(1)
        ticks = _run(bundle, cfg, server, tmp_path, compensate)
        steady = [t for t in ticks[5:] if t.obs_latency_ms >= 0]
        assert len(steady) > 50
        latency = np.array([t.obs_latency_ms for t in steady])
        assert np.median(latency) == pytest.approx(1e3 * PERIOD, abs=6.0)  # one tick + phase
        used = [t.compensated for t in steady]
        if compensate:
            assert np.mean(np.array(used) == 1) > 0.9, used
        else:
            assert set(used) == {0}
    cfg, server = _delayed(0)  # nothing to compensate without a delay
    ticks = _run(bundle, cfg, server, tmp_path, True)
    assert np.mean([t.compensated == 0 for t in ticks[5:]]) > 0.9


def test_compensation_rolls_the_latent_through_the_newest_sent_actions(random_bundle):
    bundle = load_bundle(random_bundle)
    backend = build_backend(bundle, "torch", "cpu")
    cfg, server = _delayed(0)
    with server, BridgeClient(cfg.endpoint, mode="realtime") as client:
        ob = client.reset(seed=0)
        loop = Controller(
            backend, client, LoopConfig(rate=50.0, budget_ms=12.0, compensate=True), status=None
        )
        sent = [np.full(bundle.action_dim, v, np.float32) for v in (0.1, -0.2, 0.3)]
        for a in sent:
            loop._in_force(a)
        loop._in_force(None)  # a tick that sent nothing: the server held the last one
        aged = dataclasses.replace(ob, sent_at=time.monotonic() - 2.4 * PERIOD)
        z = backend.encode(torch.tensor(ob.obs).unsqueeze(0))
        rec = TickRecord(0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0)
        got = loop._compensated(z, aged, rec)
        assert rec.compensated == 2 and rec.obs_latency_ms >= 2.4e3 * PERIOD
        with torch.no_grad():
            want = bundle.eager_model().next(z, torch.as_tensor(sent[2]).unsqueeze(0))
            want = bundle.eager_model().next(want, torch.as_tensor(sent[2]).unsqueeze(0))
        torch.testing.assert_close(got, want)
        loop._new_episode()  # a new episode: nothing sent in it has acted yet
        assert loop._compensated(z, aged, rec) is z
