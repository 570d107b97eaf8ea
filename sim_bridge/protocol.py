"""Wire format of the sim bridge: versioned msgpack messages, arrays as raw bytes.

Every message is one msgpack map with a header and a type-specific body::

    {"v": 1, "type": "step", "seq": 42, "t": 12345.678, ...body}

* ``v``: protocol version (:data:`PROTOCOL_VERSION`); a mismatch is refused.
* ``seq``: the sender's sequence number, strictly increasing per connection; a message
  whose number is not newer than the last one seen is stale and dropped.
* ``t``: the sender's ``time.monotonic()`` when the message was packed.
* Replies carry ``re`` (the ``seq`` they answer, -1 for undecodable input) and ``sid``
  (the server's session id, new on every server start: a change means a restart).

Arrays travel as ``{"dtype": "<f4", "shape": [51], "data": <raw little-endian bytes>}``.
Nothing is ever pickled. Decoding enforces a frame-size limit and msgpack's
``max_*_len`` limits (:class:`Limits`), so a 5-byte message cannot declare a
four-billion-element array. Requests (client to server) are held to
:data:`REQUEST_LIMITS`, small enough that no frame costs more than a fraction of a
millisecond to decode; replies (server to client, which carry the observation contract)
to :data:`REPLY_LIMITS`. Every header field is type-checked: :meth:`Codec.decode` returns
a message or raises :class:`ProtocolError`, whatever the bytes.

This module needs only numpy and msgpack: the stand-alone Gymnasium adapter imports it
from another environment's Python.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # one reply frame; an H1 observation message is ~300 bytes
MAX_REQUEST_BYTES = 1 << 16  # one request frame: an action of up to 8192 float64 values
MAX_ARRAY_ELEMENTS = 1 << 16
MAX_NDIM = 4
MAX_SEQ = (1 << 63) - 1  # sequence numbers are non-negative int64
QUOTE_CHARS = 80  # client data quoted in error replies and log lines is cut to this
_ITEMSIZE = {"<f4": 4, "<f8": 8}  # the dtypes arrays usually travel as, without np.dtype()

# Message types.
HELLO = "hello"  # client -> server: who are you; server -> client: task and specs
RESET = "reset"  # client -> server: start an episode (body: seed)
STEP = "step"  # client -> server, lockstep: apply action, advance one control step
ACTION = "action"  # client -> server, real time: newest action, no reply
OBSERVATION = "observation"  # server -> client
HEARTBEAT = "heartbeat"  # both ways: liveness and server counters
ESTOP = "estop"  # client -> server: latch the emergency stop; server acknowledges
ERROR = "error"  # server -> client: code and message
CLOSE = "close"  # both ways: the client leaves / the server acknowledges
MESSAGE_TYPES = frozenset({HELLO, RESET, STEP, ACTION, OBSERVATION, HEARTBEAT, ESTOP, ERROR, CLOSE})


class ErrorCode:
    """Codes of ``error`` replies (a stable vocabulary clients can branch on)."""

    MALFORMED = "malformed"  # not msgpack, not a map, truncated, bad field types
    TOO_LARGE = "too_large"  # frame or declared size over the limits
    BAD_VERSION = "bad_version"
    BAD_TYPE = "bad_type"  # unknown or unexpected message type
    BAD_ARRAY = "bad_array"  # array encoding wrong (dtype, byte count)
    BAD_SHAPE = "bad_shape"  # array of the wrong shape for this server
    NOT_FINITE = "not_finite"  # NaN or Inf in an action
    HELLO_REQUIRED = "hello_required"  # this connection never said hello (or the server restarted)
    CONTRACT_MISMATCH = "contract_mismatch"
    TASK_MISMATCH = "task_mismatch"
    WRONG_MODE = "wrong_mode"  # e.g. ``step`` sent to a real-time server
    NEEDS_RESET = "needs_reset"
    ESTOPPED = "estopped"
    BACKEND = "backend"  # the simulator or driver raised
    BUSY = "busy"  # the server admits no more clients
    FULL = "full"  # every simulation of a lockstep server is in use (see max_instances)
    LEASE_HELD = "lease_held"  # another client holds the control lease (see take_over)
    STALE_EPISODE = "stale_episode"  # the action named an episode that is over
    INTERNAL = "internal"  # the server failed on this message; it goes on serving


class ProtocolError(ValueError):
    """A message that cannot be accepted; ``code`` is one of :class:`ErrorCode`."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def pack_array(a: np.ndarray) -> dict[str, Any]:
    """``{"dtype", "shape", "data"}`` with little-endian raw bytes (C order)."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype.kind not in "fiub":
        raise TypeError(f"cannot send arrays of dtype {a.dtype}")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return pack_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot pack {type(obj).__name__} (only msgpack types and numpy arrays)")


def contract_hash(contract_json: dict[str, Any]) -> str:
    """Hash of an observation contract's JSON, identical to ``ObservationContract.hash``."""
    blob = json.dumps(contract_json, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def action_mapping_json(
    scale: Any,
    offset: Any,
    names: Any = (),
    kind: str = "actuator",
    kp: Any = (),
    kd: Any = (),
) -> dict[str, Any]:
    """The wire form of an action mapping (the handshake's ``action_mapping``):
    ``command = offset + scale * a`` per actuator (``kind`` ``actuator``), or a PD target
    with gains ``kp``/``kd`` (``position``)."""
    return {
        "kind": kind,
        "names": [str(n) for n in names],
        "scale": [float(x) for x in scale],
        "offset": [float(x) for x in offset],
        "kp": [float(x) for x in kp],
        "kd": [float(x) for x in kd],
    }


def affine_action_mapping(scale: Any, offset: Any, names: Any = ()) -> dict[str, Any]:
    """Handshake ``action_mapping`` of a plain actuator: ``command = offset + scale * a``."""
    return action_mapping_json(scale, offset, names)


def neutral_action(scale: Any, offset: Any) -> np.ndarray:
    """``(A,)`` the normalised action whose command is zero (no torque, or the zero target):
    ``-offset / scale``, clipped to [-1, 1]; 0 where the scale is 0."""
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    offset = np.asarray(offset, dtype=np.float64).reshape(-1)
    safe = np.where(scale != 0.0, scale, 1.0)
    return np.clip(np.where(scale != 0.0, -offset / safe, 0.0), -1.0, 1.0)


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters: client data safe to log or echo.

    ``repr`` escapes newlines and control characters, so a client cannot forge log lines;
    the cut bounds what an error reply or a log line can cost.
    """
    try:
        text = repr(value)
    except Exception:  # a repr that raises (never from msgpack values) is still quotable
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Limits:
    """What one frame may contain.

    Attributes:
        max_bytes: largest frame.
        max_elements: largest array (elements) accepted by :meth:`Codec.read_array`.
        max_container: largest msgpack array or map (entries).
        max_str: longest msgpack string (bytes).
        max_depth: deepest nesting of maps and lists inside the top-level map's values.
    """

    max_bytes: int = MAX_MESSAGE_BYTES
    max_elements: int = MAX_ARRAY_ELEMENTS
    max_container: int = MAX_ARRAY_ELEMENTS
    max_str: int = MAX_MESSAGE_BYTES
    max_depth: int = 64

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_elements, self.max_container, self.max_str) < 1:
            raise ValueError(f"limits must be positive: {self}")


REQUEST_LIMITS = Limits(
    max_bytes=MAX_REQUEST_BYTES, max_elements=8192, max_container=16, max_str=256, max_depth=2
)
"""Client to server. Requests are flat maps (arrays are ``bin``; a shape has <= 4
entries), so lists and maps stay tiny and a 64 KiB frame decodes in well under 1 ms."""

REPLY_LIMITS = Limits()
"""Server to client: the hello reply carries the observation contract (a list per field,
names per element), so lists may be long."""


def _depth_ok(value: Any, budget: int) -> bool:
    """Whether the maps and lists in ``value`` nest at most ``budget`` levels."""
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return True
    if budget <= 0:
        return False
    return all(_depth_ok(v, budget - 1) for v in value)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class Codec:
    """Packs and validates messages under fixed size limits.

    Args:
        max_bytes: largest frame accepted by :meth:`decode` (overrides ``limits``).
        max_elements: largest array (elements) accepted by :meth:`read_array` (overrides
            ``limits``).
        limits: the full set of limits; :data:`REPLY_LIMITS` by default, servers decode
            requests under :data:`REQUEST_LIMITS`.
    """

    def __init__(
        self,
        max_bytes: int | None = None,
        max_elements: int | None = None,
        limits: Limits = REPLY_LIMITS,
    ) -> None:
        self.limits = Limits(
            max_bytes=max_bytes or limits.max_bytes,
            max_elements=max_elements or limits.max_elements,
            max_container=limits.max_container,
            max_str=limits.max_str,
            max_depth=limits.max_depth,
        )
        self.max_bytes = self.limits.max_bytes
        self.max_elements = self.limits.max_elements
        self._unpack_limits = {
            "max_bin_len": self.max_bytes,
            "max_str_len": min(self.limits.max_str, self.max_bytes),
            "max_array_len": self.limits.max_container,
            "max_map_len": self.limits.max_container,
            "max_ext_len": 0,
        }
        self._packer = msgpack.Packer(default=_default, use_bin_type=True)

    def encode(self, msg_type: str, seq: int, **body: Any) -> bytes:
        """One message as bytes; ``body`` values may be numpy arrays."""
        body.update(v=PROTOCOL_VERSION, type=msg_type, seq=seq, t=time.monotonic())
        return self._packer.pack(body)

    def decode(self, frame: Any) -> dict[str, Any]:
        """Unpack and check the header; raises :class:`ProtocolError` on any problem.

        Whatever ``frame`` holds, the result is a map whose ``v`` is this protocol's
        version, ``type`` one of :data:`MESSAGE_TYPES`, ``seq`` an int in
        ``[0, MAX_SEQ]`` and ``t`` a finite number; nothing else escapes.
        """
        if not isinstance(frame, (bytes, bytearray, memoryview)):
            raise ProtocolError(
                ErrorCode.MALFORMED, f"a frame is bytes, not {type(frame).__name__}"
            )
        if len(frame) > self.max_bytes:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"message of {len(frame)} bytes, limit {self.max_bytes}"
            )
        try:
            msg = msgpack.unpackb(frame, raw=False, strict_map_key=True, **self._unpack_limits)
        except Exception as err:  # msgpack raises several unrelated types
            code = ErrorCode.TOO_LARGE if "exceeds max" in str(err) else ErrorCode.MALFORMED
            raise ProtocolError(code, f"cannot unpack message: {quote(str(err))}") from None
        if not isinstance(msg, dict):
            raise ProtocolError(
                ErrorCode.MALFORMED, f"message is a {type(msg).__name__}, not a map"
            )
        if not _depth_ok(msg, self.limits.max_depth + 1):  # +1: the message map itself
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"message nests deeper than {self.limits.max_depth} levels"
            )
        version = msg.get("v")
        if not _is_int(version) or version != PROTOCOL_VERSION:
            raise ProtocolError(
                ErrorCode.BAD_VERSION,
                f"protocol version {quote(version)}, this side speaks {PROTOCOL_VERSION}",
            )
        msg_type = msg.get("type")
        if not isinstance(msg_type, str) or msg_type not in MESSAGE_TYPES:
            raise ProtocolError(ErrorCode.BAD_TYPE, f"unknown message type {quote(msg_type)}")
        seq = msg.get("seq")
        if not _is_int(seq) or not 0 <= seq <= MAX_SEQ:
            raise ProtocolError(
                ErrorCode.MALFORMED, f"seq must be an int in [0, 2**63), got {quote(seq)}"
            )
        t = msg.get("t")
        if not (_is_int(t) or isinstance(t, float)) or not math.isfinite(t):
            raise ProtocolError(
                ErrorCode.MALFORMED, f"'t' must be a finite monotonic time, got {quote(t)}"
            )
        return msg

    def read_array(
        self,
        msg: dict[str, Any],
        key: str,
        shape: tuple[int, ...] | None = None,
        dtypes: tuple[str, ...] = ("<f4", "<f8"),
    ) -> np.ndarray:
        """Decode the array under ``key``, checking dtype, byte count and (optionally) shape."""
        enc = msg.get(key)
        if not isinstance(enc, dict):
            raise ProtocolError(ErrorCode.MALFORMED, f"{key!r} must be an encoded array")
        dtype, dims, data = enc.get("dtype"), enc.get("shape"), enc.get("data")
        if dtype not in dtypes:
            raise ProtocolError(
                ErrorCode.BAD_ARRAY,
                f"{key!r}: dtype {quote(dtype)} not accepted (use one of {dtypes})",
            )
        if (
            not isinstance(dims, list)
            or len(dims) > MAX_NDIM
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims)
        ):
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{key!r}: bad shape {quote(dims)}")
        count = 1
        for d in dims:
            count *= d
        if count > self.max_elements:
            raise ProtocolError(
                ErrorCode.TOO_LARGE,
                f"{key!r}: shape {dims} has {count} elements, limit {self.max_elements}",
            )
        if not isinstance(data, bytes):
            raise ProtocolError(ErrorCode.BAD_ARRAY, f"{key!r}: data must be bytes")
        itemsize = _ITEMSIZE.get(dtype) or np.dtype(dtype).itemsize
        if len(data) != count * itemsize:
            raise ProtocolError(
                ErrorCode.BAD_ARRAY,
                f"{key!r}: {len(data)} bytes for shape {dims} of {dtype} "
                f"(expected {count * itemsize})",
            )
        if shape is not None and tuple(dims) != tuple(shape):
            raise ProtocolError(
                ErrorCode.BAD_SHAPE, f"{key!r} must have shape {list(shape)}, got {dims}"
            )
        return np.frombuffer(data, dtype=dtype).reshape(dims)


def read_seed(msg: dict[str, Any]) -> int | None:
    """The optional ``seed`` of a ``reset`` message (None or 0 <= seed < 2**32)."""
    seed = msg.get("seed")
    if seed is None:
        return None
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ProtocolError(
            ErrorCode.MALFORMED, f"seed must be null or in [0, 2**32), got {quote(seed)}"
        )
    return seed


def read_field(
    msg: dict[str, Any], key: str, kind: type | tuple[type, ...], max_len: int = 0
) -> Any:
    """The optional field ``key`` (None when absent), checked to be of ``kind``.

    ``bool`` is never taken for ``int``; ``max_len`` caps strings (0: no cap).
    """
    value = msg.get(key)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _kinds(kind))
    if ok and max_len and isinstance(value, str) and len(value) > max_len:
        ok = False
    if not ok:
        raise ProtocolError(
            ErrorCode.MALFORMED, f"{key!r} must be null or {_kind_name(kind)}, got {quote(value)}"
        )
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _kinds(kind))
