"""Property-based fuzzing of the wire format and of every server handler: whatever a
peer sends, the codec returns a checked message or raises ProtocolError, and a server
answers or drops it without an unexpected exception."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim_bridge import protocol as P
from sim_bridge.drivers.mock import MockDriver
from sim_bridge.hardware import HardwareBackend
from sim_bridge.protocol import ProtocolError
from sim_bridge.server import BridgeServer, ServerConfig

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# any msgpack value: scalars of every kind, nested lists and maps
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.binary(max_size=64)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=20,
)
arrays = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["<f4", "<f8", "<i4", "|u1", ">f8"]) | values,
        "shape": st.lists(st.integers(-2, 2**40), max_size=5) | values,
        "data": st.binary(max_size=80) | values,
    }
)
FIELDS = (
    "client",
    "contract_hash",
    "task",
    "mode",
    "seed",
    "clear_estop",
    "take_over",
    "episode",
    "action",
)
# messages with a plausible header and any body: what gets past the header checks
messages = st.fixed_dictionaries(
    {
        "v": st.just(1) | values,
        "type": st.sampled_from(sorted(P.MESSAGE_TYPES)) | values,
        "seq": st.integers(0, 2**63 - 1) | values,
        "t": st.floats(0, 1e6) | values,
    },
    optional={key: values | arrays for key in FIELDS},
)


def _checked(msg: dict) -> None:
    """The header invariants :meth:`Codec.decode` promises."""
    assert msg["v"] == P.PROTOCOL_VERSION and not isinstance(msg["v"], bool)
    assert isinstance(msg["type"], str) and msg["type"] in P.MESSAGE_TYPES
    assert isinstance(msg["seq"], int) and not isinstance(msg["seq"], bool)
    assert 0 <= msg["seq"] <= P.MAX_SEQ
    assert math.isfinite(msg["t"]) and not isinstance(msg["t"], bool)


@pytest.mark.parametrize("limits", [P.REQUEST_LIMITS, P.REPLY_LIMITS], ids=["request", "reply"])
@FUZZ
@given(frame=st.binary(max_size=512))
def test_any_bytes_decode_or_raise_protocol_error(limits: P.Limits, frame: bytes) -> None:
    try:
        msg = P.Codec(limits=limits).decode(frame)
    except ProtocolError:
        return
    _checked(msg)


@FUZZ
@given(value=values)
def test_any_msgpack_value_decodes_or_raises_protocol_error(value) -> None:
    frame = msgpack.packb(value, use_bin_type=True)
    with contextlib.suppress(ProtocolError):
        _checked(P.Codec(limits=P.REQUEST_LIMITS).decode(frame))


@FUZZ
@given(msg=messages)
def test_any_field_types_decode_or_raise_protocol_error(msg: dict) -> None:
    codec = P.Codec(limits=P.REQUEST_LIMITS)
    try:
        decoded = codec.decode(msgpack.packb(msg, use_bin_type=True))
    except ProtocolError:
        return
    _checked(decoded)
    for key in ("action", "obs"):
        try:
            a = codec.read_array(decoded, key)
        except ProtocolError:
            continue
        assert isinstance(a, np.ndarray) and a.size <= codec.max_elements


class _Harness:
    """A real server whose handlers are called directly, its ROUTER bound in-process."""

    def __init__(self, mode: str) -> None:
        self.driver = MockDriver(n_joints=2)
        cfg = ServerConfig(endpoint=f"inproc://fuzz-{mode}-{os.getpid()}", mode=mode)
        self.server = BridgeServer(HardwareBackend(self.driver), cfg)
        self.ctx = zmq.Context()
        self.server._sock = self.ctx.socket(zmq.ROUTER)
        self.server._sock.bind(cfg.endpoint)
        self.peer = self.ctx.socket(zmq.DEALER)  # the server's replies land here
        self.peer.setsockopt(zmq.ROUTING_ID, b"fuzzer")
        self.peer.connect(cfg.endpoint)
        self.seq = 0

    def feed(self, msg: dict) -> None:
        now = 1000.0 + self.seq * 0.01
        self.server._handle(b"fuzzer", msgpack.packb(msg, use_bin_type=True), 0, now)
        if self.server.cfg.mode == "realtime":
            self.server._safe_tick(now)
        while self.peer.poll(0):
            self.peer.recv()

    def hello_and_reset(self) -> None:
        self.seq += 2
        self.feed({"v": 1, "type": "hello", "seq": self.seq - 1, "t": 0.0})
        self.feed({"v": 1, "type": "reset", "seq": self.seq, "t": 0.0})


@pytest.fixture(scope="module", params=["lockstep", "realtime"])
def harness(request):
    h = _Harness(request.param)
    yield h
    h.peer.close(0)
    h.server._sock.close(0)
    h.ctx.term()


@FUZZ
@given(msg=messages)
def test_every_handler_refuses_bad_fields_without_a_fault(harness: _Harness, msg: dict) -> None:
    harness.hello_and_reset()
    if isinstance(msg.get("seq"), int) and not isinstance(msg["seq"], bool):
        harness.seq += 1
        msg = {**msg, "seq": harness.seq}  # newer than the last, so it reaches its handler
    harness.feed(msg)
    assert harness.server.stats.faults == 0  # refused with a ProtocolError, never a crash
    sent = list(harness.driver.commands)
    assert all(
        np.isfinite(c).all() and np.all(np.abs(c) <= harness.driver.command_high) for c in sent
    )


FUZZ_TARGET = Path(__file__).with_name("fuzz_codec.py")


def test_coverage_guided_fuzz_target_runs() -> None:
    pytest.importorskip("atheris", reason="atheris (pip install atheris) runs the fuzz target")
    out = subprocess.run(
        [sys.executable, str(FUZZ_TARGET), "-runs=3000", "-seed=1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Done 3000 runs" in out.stderr
