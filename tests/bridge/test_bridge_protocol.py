"""Wire format: round trips, limits and validation, without sockets."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest

from boom_control.envs.registry import make_env
from sim_bridge import protocol as P
from sim_bridge.protocol import ErrorCode, ProtocolError


def test_round_trip_keeps_arrays_bit_exact() -> None:
    codec = P.Codec()
    obs = np.random.default_rng(0).standard_normal(51).astype(np.float32)
    frame = codec.encode(P.OBSERVATION, 7, obs=obs, reward=1.5, terminated=False)
    msg = codec.decode(frame)
    assert (msg["type"], msg["seq"], msg["v"]) == (P.OBSERVATION, 7, P.PROTOCOL_VERSION)
    assert isinstance(msg["t"], float)
    back = codec.read_array(msg, "obs", shape=(51,))
    assert back.dtype == np.float32 and np.array_equal(back, obs)
    assert msg["obs"]["dtype"] == "<f4" and msg["obs"]["shape"] == [51]


def test_big_endian_arrays_are_sent_little_endian() -> None:
    a = np.arange(3, dtype=">f8")
    enc = P.pack_array(a)
    assert enc["dtype"] == "<f8"
    assert np.array_equal(np.frombuffer(enc["data"], "<f8"), a)


def test_contract_hash_matches_the_task_layer() -> None:
    env = make_env("dmc:cartpole-swingup", seed=0)
    assert P.contract_hash(env.spec.contract.to_json()) == env.spec.contract.hash


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1\xff garbage", ErrorCode.MALFORMED),
        (msgpack.packb({"v": 1, "type": "step", "seq": 1, "t": 0.0})[:-3], ErrorCode.MALFORMED),
        (msgpack.packb([1, 2, 3]), ErrorCode.MALFORMED),
        (msgpack.packb({"v": 99, "type": "step", "seq": 1, "t": 0.0}), ErrorCode.BAD_VERSION),
        (msgpack.packb({"v": 1, "type": "launch", "seq": 1, "t": 0.0}), ErrorCode.BAD_TYPE),
        (msgpack.packb({"v": 1, "type": "step", "seq": -4, "t": 0.0}), ErrorCode.MALFORMED),
        (msgpack.packb({"v": 1, "type": "step", "seq": 1}), ErrorCode.MALFORMED),
        (b"\xdd\xff\xff\xff\xff", ErrorCode.TOO_LARGE),  # array32 header: 4e9 elements
        (b"\xc6\x7f\xff\xff\xff" + b"x" * 8, ErrorCode.MALFORMED),  # 2 GB bin declared
        (b"\x00" * (P.MAX_MESSAGE_BYTES + 1), ErrorCode.TOO_LARGE),
    ],
)
def test_decode_rejects_bad_frames(frame: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        P.Codec().decode(frame)
    assert err.value.code == code


def _msg(**arr: object) -> dict:
    return {"action": arr}


@pytest.mark.parametrize(
    ("enc", "code"),
    [
        ({"dtype": "<i8", "shape": [2], "data": b"\0" * 16}, ErrorCode.BAD_ARRAY),
        ({"dtype": "|O", "shape": [2], "data": b"\0" * 16}, ErrorCode.BAD_ARRAY),
        ({"dtype": "<f4", "shape": [3], "data": b"\0" * 8}, ErrorCode.BAD_ARRAY),
        ({"dtype": "<f4", "shape": [3], "data": b"\0" * 12}, ErrorCode.BAD_SHAPE),
        ({"dtype": "<f4", "shape": [1 << 40], "data": b""}, ErrorCode.TOO_LARGE),
        ({"dtype": "<f4", "shape": [-2], "data": b""}, ErrorCode.BAD_ARRAY),
        ({"dtype": "<f4", "shape": [1, 1, 1, 1, 1, 2], "data": b"\0" * 8}, ErrorCode.BAD_ARRAY),
        ({"dtype": "<f4", "shape": [2], "data": "text"}, ErrorCode.BAD_ARRAY),
    ],
)
def test_read_array_validates(enc: dict, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        P.Codec().read_array({"action": enc}, "action", shape=(2,))
    assert err.value.code == code


def test_no_pickle_on_the_wire() -> None:
    with pytest.raises(TypeError):
        P.Codec().encode(P.STEP, 1, action=object())
    for path in Path(P.__file__).parent.rglob("*.py"):
        src = path.read_text().replace("Nothing is ever pickled", "")
        assert "import pickle" not in src and "pickle." not in src, path
