"""The low-level bridge client (a DEALER socket), for lockstep requests and real-time use.

Lockstep: :meth:`BridgeClient.reset` / :meth:`BridgeClient.step` send a request and wait
for the reply whose ``re`` matches its sequence number; replies to older requests are
stale and dropped. When no reply comes within ``timeout`` the socket is thrown away and
rebuilt and the handshake repeated (the "lazy pirate" pattern). Idempotent requests
(hello, reset, heartbeat) are then retried; a ``step`` is not (it may already have been
applied, or the server restarted and lost the episode) and raises :class:`EpisodeLost`.
Every reconnection is counted in :attr:`BridgeClient.reconnects`, every server restart
(a new session id) in :attr:`BridgeClient.restarts`, and both are logged.

Real time: :meth:`send_action` never waits; :meth:`latest_observation` drains whatever the
server pushed and returns the newest observation (with its sequence, tick and age).

Sessions: every hello names this client's random ``client_id``, so a reconnection on a new
socket gets the same session (and simulation) back. A lockstep client keeps its session
alive while its user is busy elsewhere (a long plan, a compile, a batch of updates): a
background thread sends a heartbeat whenever no request went out for a quarter of the
server's ``client_timeout`` (``keepalive``).

No boom_control import: the controller and external tools can use it as is.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from sim_bridge import protocol as P
from sim_bridge.protocol import ErrorCode, ProtocolError
from sim_bridge.transport import is_local, setup_client_curve

log = logging.getLogger(__name__)


class BridgeError(RuntimeError):
    """Base class of client-side bridge failures."""


class BridgeTimeout(BridgeError):
    """The server did not answer within the timeout, retries included."""


class HandshakeError(BridgeError):
    """The server is not what the client expects (contract, task, mode, protocol)."""


class EpisodeLost(BridgeError):
    """A step could not be completed: the server restarted, forgot this client, or went
    silent mid-episode. ``reason`` says which, in words."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class RemoteError(BridgeError):
    """The server answered with an ``error`` message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"server error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ServerInfo:
    """What the server announced in the handshake (``raw`` holds every field)."""

    session: int
    task_id: str
    mode: str
    obs_dim: int
    action_dim: int
    control_period: float
    contract_hash: str
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_hello(cls, msg: dict[str, Any]) -> ServerInfo:
        try:
            info = cls(
                int(msg["session"]),
                str(msg["task_id"]),
                str(msg["mode"]),
                int(msg["obs_dim"]),
                int(msg["action_dim"]),
                float(msg["control_period"]),
                str(msg["contract_hash"]),
                msg,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise HandshakeError(f"incomplete hello from server: {err!r}") from None
        if P.contract_hash(msg.get("contract") or {}) != info.contract_hash:
            raise HandshakeError("server's contract JSON does not match its announced hash")
        return info


@dataclass(frozen=True)
class Observation:
    """One observation message.

    Attributes:
        obs: ``(obs_dim,)`` float32.
        seq: the server's message sequence number.
        re: the request (lockstep) or action (real time) sequence number it answers.
        sent_at: server ``time.monotonic()`` when sent.
        received_at: local ``time.monotonic()`` when received.
        info: the rest of the message (tick, step, episode, late, watchdog, applied
            action; after an episode end in real time ``next_obs`` and ``next_episode``).
    """

    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    seq: int
    re: int
    sent_at: float
    received_at: float
    shared_clock: bool
    info: dict[str, Any]

    @property
    def age(self) -> float:
        """Seconds since the server sent it (since it was received, across machines)."""
        ref = self.sent_at if self.shared_clock else self.received_at
        return time.monotonic() - ref

    @property
    def latency(self) -> float:
        """Seconds since the observation was produced: :attr:`age` plus the time the server
        says it held the observation back before sending it (``obs_delay``: a sensor's
        latency, or a test's injected delay)."""
        return self.age + float(self.info.get("obs_delay", 0.0))

    @property
    def control_obs(self) -> np.ndarray:
        """``(obs_dim,)``: what the next action acts on. After an episode end in real time
        that is the next episode's first observation (``info["next_obs"]``)."""
        return self.info.get("next_obs", self.obs)

    @property
    def control_episode(self) -> int | None:
        """The episode :attr:`control_obs` belongs to (None when the server does not say);
        pass it to :meth:`BridgeClient.send_action`."""
        return self.info.get("next_episode", self.info.get("episode"))


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _keep_alive(ref: weakref.ref, closing: threading.Event) -> None:
    """The keep-alive thread of a :class:`BridgeClient` (held weakly: a client dropped
    without ``close`` stops it, and its session expires as it should)."""
    while True:
        client = ref()
        if client is None:
            return
        pause = client.keepalive_period / 4.0
        del client
        if closing.wait(pause):
            return
        client = ref()
        if client is None:
            return
        client._beat()
        del client


_NOT_OBS = {"v", "type", "seq", "t", "re", "sid", "obs", "reward", "terminated", "truncated"}


class BridgeClient:
    """One connection to a bridge server.

    Args:
        endpoint: e.g. ``tcp://127.0.0.1:5555`` or ``ipc:///tmp/boom.sock``.
        timeout: seconds to wait for each reply.
        retries: reconnection attempts before :class:`BridgeTimeout`.
        mode: require this server mode (``lockstep``/``realtime``), or None for any.
        contract_hash: require this observation-contract hash (refused by name otherwise).
        task: require this task id.
        curve_server_key / curve_client_cert: certificate files enabling CURVE.
        take_over: every ``reset`` takes the server's control lease from whichever client
            holds it (a server with a lease admits one controlling client at a time).
        keepalive: lockstep, send heartbeats from a background thread while no request
            goes out, so the server never forgets a client that is only busy.
        spin: seconds spent retrying non-blocking receives for a lockstep reply before
            blocking (0: block at once). The reply to a step usually comes within a few
            hundred microseconds; spinning for it saves this process a wake-up from
            idle, which dominates the round trip on machines with slow wake-ups.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 2.0,
        retries: int = 3,
        mode: str | None = None,
        contract_hash: str | None = None,
        task: str | None = None,
        name: str = "boom-client",
        curve_server_key: str | None = None,
        curve_client_cert: str | None = None,
        max_message_bytes: int = P.MAX_MESSAGE_BYTES,
        spin: float = 0.0,
        take_over: bool = False,
        keepalive: bool = True,
    ) -> None:
        if not 0.0 <= spin <= 1.0:
            raise ValueError(f"spin must be in [0, 1] seconds, got {spin!r}")
        self.keepalive = keepalive
        self.client_id = secrets.randbits(62)
        self.endpoint = endpoint
        self.spin = spin
        self.take_over = take_over
        self.timeout = timeout
        self.retries = retries
        self._want = {"mode": mode, "contract_hash": contract_hash, "task": task}
        self._name = name
        self._curve = (curve_server_key, curve_client_cert)
        self._shared_clock = is_local(endpoint)
        self.codec = P.Codec(max_bytes=max_message_bytes)
        self._ctx = zmq.Context()
        self._sock: zmq.Socket | None = None
        self._seq = 0
        self._info: ServerInfo | None = None
        self._latest: Observation | None = None
        self._hello_seq = -1  # the newest hello answered, or sent in real time
        self._hello_sent = -float("inf")  # when latest_observation last sent a hello
        self._rcvtimeo = -1
        self.reconnects = 0
        self.restarts = 0
        self.stale = 0
        self.errors: list[RemoteError] = []  # asynchronous (real-time) error replies
        self.error_count = 0  # how many were ever received (``errors`` keeps the last 100)
        self.heartbeats = 0  # keep-alive heartbeats sent by the background thread
        self._lock = threading.RLock()  # one user of the socket at a time (keep-alive)
        self._last_sent = time.monotonic()
        self._keeper: threading.Thread | None = None
        self._closing = threading.Event()
        self._resumed = False  # whether the latest hello got this client's session back

    # ---- socket and handshake -----------------------------------------------------------
    @property
    def info(self) -> ServerInfo:
        if self._info is None:
            raise BridgeError("not connected: call connect() first")
        return self._info

    def _new_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, 16 * self.codec.max_bytes)
        setup_client_curve(sock, *self._curve)
        sock.connect(self.endpoint)
        self._sock = sock
        self._rcvtimeo = -1  # the socket's receive timeout in ms (-1: block, zmq default)

    def _send(self, msg_type: str, **body: Any) -> int:
        self._seq += 1
        self._sock.send(self.codec.encode(msg_type, self._seq, **body))
        self._last_sent = time.monotonic()
        return self._seq

    def _hello_body(self) -> dict[str, Any]:
        wanted = {k: v for k, v in self._want.items() if v is not None}
        return {"client": self._name, "client_id": self.client_id, **wanted}

    def _accept_hello(self, msg: dict[str, Any]) -> ServerInfo:
        info = ServerInfo.from_hello(msg)
        self._resumed = bool(msg.get("resumed"))
        old = self._info
        if old is not None:
            if (info.task_id, info.contract_hash, info.obs_dim, info.action_dim) != (
                old.task_id,
                old.contract_hash,
                old.obs_dim,
                old.action_dim,
            ):
                raise HandshakeError(
                    f"server at {self.endpoint} came back serving {info.task_id} "
                    f"(contract {info.contract_hash}), was {old.task_id} ({old.contract_hash})"
                )
            if info.session != old.session:
                self._latest = None  # a new server numbers its messages from 1 again
                self.restarts += 1
                log.warning(
                    "bridge: server at %s restarted (session %x -> %x)",
                    self.endpoint,
                    old.session,
                    info.session,
                )
        self._info = info
        return info

    def _wait(self, seq: int, timeout: float) -> dict[str, Any] | None:
        """The reply to ``seq``, or None on timeout; other messages are handled or dropped.

        Blocks in ``recv`` under the socket's receive timeout (one system call per
        reply rather than ``poll`` then ``recv``); the timeout is shortened to what is
        left of ``timeout`` whenever another message arrives first.
        """
        deadline = time.monotonic() + timeout
        if self.spin > 0.0:
            msg = self._spin_for(seq)
            if msg is not None:
                return msg
        remaining = deadline - time.monotonic()
        while remaining > 0:
            msg = self._recv_one(max(1, int(remaining * 1000)))
            if msg is not None and msg.get("re") == seq:
                return msg
            if msg is not None and msg["type"] != P.OBSERVATION:
                self.stale += 1
            remaining = deadline - time.monotonic()
        return None

    def _spin_for(self, seq: int) -> dict[str, Any] | None:
        """Non-blocking receives for up to ``spin`` seconds: the reply to ``seq`` or None."""
        clock = time.perf_counter
        end = clock() + self.spin
        while clock() < end:
            msg = self._recv_one()
            if msg is None:
                continue
            if msg.get("re") == seq:
                return msg
            if msg["type"] != P.OBSERVATION:
                self.stale += 1
        return None

    def _recv_one(self, timeout_ms: int = 0) -> dict[str, Any] | None:
        """One message (None if none came within ``timeout_ms``, or it was undecodable)."""
        try:
            if timeout_ms > 0:
                if timeout_ms != self._rcvtimeo:
                    self._sock.rcvtimeo = self._rcvtimeo = timeout_ms
                frame = self._sock.recv()
            else:
                frame = self._sock.recv(zmq.NOBLOCK)
            msg = self.codec.decode(frame)
        except zmq.Again:
            return None
        except ProtocolError as err:
            log.warning("bridge: undecodable message from server: %s", err)
            return None
        if (
            msg["type"] == P.OBSERVATION
            and self._info is not None
            and self._info.mode == "realtime"
        ):
            self._keep_observation(msg)
        return msg

    def connect(self) -> ServerInfo:
        """Open the socket and do the handshake (retrying ``retries`` times); a lockstep
        client with ``keepalive`` then starts its heartbeat thread."""
        with self._lock:
            self._reconnect(first=True)
        if self.keepalive and self.info.mode == "lockstep" and self._keeper is None:
            self._keeper = threading.Thread(
                target=_keep_alive,
                args=(weakref.ref(self), self._closing),
                name="bridge-keepalive",
                daemon=True,
            )
            self._keeper.start()
        return self.info

    @property
    def keepalive_period(self) -> float:
        """Seconds without a request after which the keep-alive thread sends a heartbeat:
        a quarter of the server's ``client_timeout`` (10 s when it does not say)."""
        timeout = self._info.raw.get("client_timeout") if self._info is not None else None
        timeout = timeout if isinstance(timeout, (int, float)) and timeout > 0 else 10.0
        return max(0.02, float(timeout) / 4.0)

    def _beat(self) -> None:
        """One keep-alive heartbeat if the socket was quiet for :attr:`keepalive_period`;
        skipped while the owner is using the socket (then the session is alive anyway)."""
        if time.monotonic() - self._last_sent < self.keepalive_period:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._sock is None or self._closing.is_set():
                return
            seq = self._send(P.HEARTBEAT)
            self.heartbeats += 1
            self._wait(seq, self.timeout)  # its reply, or nothing (the owner recovers)
        except Exception as err:  # never take the owner's process down
            log.debug("bridge: keep-alive heartbeat failed: %s", err)
        finally:
            self._lock.release()

    def _reconnect(self, first: bool = False) -> None:
        for attempt in range(self.retries + 1):
            self._new_socket()
            seq = self._send(P.HELLO, **self._hello_body())
            reply = self._wait(seq, self.timeout)
            if reply is None:
                log.info(
                    "bridge: no answer from %s (attempt %d/%d)",
                    self.endpoint,
                    attempt + 1,
                    self.retries + 1,
                )
                continue
            if reply["type"] == P.ERROR:
                raise HandshakeError(
                    f"server at {self.endpoint} refused: {reply.get('code')}: "
                    f"{reply.get('message')}"
                )
            if reply["type"] != P.HELLO:
                raise HandshakeError(f"expected hello, got {reply['type']!r}")
            self._accept_hello(reply)
            if not first:
                self.reconnects += 1
                log.warning(
                    "bridge: reconnected to %s (%d reconnections, %d server restarts)",
                    self.endpoint,
                    self.reconnects,
                    self.restarts,
                )
            return
        raise BridgeTimeout(
            f"no answer from {self.endpoint} after {self.retries + 1} tries "
            f"of {self.timeout:g} s; is `boom sim` running there?"
        )

    # ---- lockstep requests --------------------------------------------------------------
    def request(self, msg_type: str, idempotent: bool = True, **body: Any) -> dict[str, Any]:
        """Send one request and return its reply (lazy pirate on timeout).

        Raises:
            RemoteError: the server answered with an error.
            EpisodeLost: a non-idempotent request (a step) could not be completed; the
                connection is back, the episode is not (reset to go on).
            BridgeTimeout: no answer, reconnections included.
        """
        if self._sock is None:
            self.connect()
        with self._lock:
            for _ in range(self.retries + 1):
                seq = self._send(msg_type, **body)
                reply = self._wait(seq, self.timeout)
                if reply is not None and reply["type"] == P.ERROR:
                    if reply.get("code") != ErrorCode.HELLO_REQUIRED:
                        raise RemoteError(str(reply.get("code")), str(reply.get("message")))
                    forgotten = True
                elif reply is not None:
                    if reply.get("sid") != self.info.session:  # answered by a restarted server
                        self._accept_hello({**self.info.raw, "session": reply.get("sid")})
                    return reply
                else:
                    forgotten = False
                session, restarts = self.info.session, self.restarts
                self._reconnect()
                if not idempotent:
                    reason = self._lost_reason(forgotten, session, restarts)
                    raise EpisodeLost(
                        f"{msg_type} to {self.endpoint} failed: {reason}; reconnected "
                        f"({self.reconnects} reconnections, {self.restarts} server restarts); "
                        "reset to go on",
                        reason,
                    )
            raise BridgeTimeout(f"{msg_type} to {self.endpoint}: no answer after reconnecting")

    def _lost_reason(self, forgotten: bool, session: int, restarts: int) -> str:
        """Why a step was lost, in words, from what the reconnection found."""
        if self.restarts > restarts or self.info.session != session:
            return "the server restarted (its episodes are gone)"
        if forgotten:
            timeout = self.info.raw.get("client_timeout", "?")
            return (
                f"the server had forgotten this client (nothing sent for more than its "
                f"client_timeout of {timeout} s)"
            )
        return f"no answer within {self.timeout:g} s (the step may or may not have been applied)"

    def _to_observation(self, msg: dict[str, Any]) -> Observation:
        obs = self.codec.read_array(msg, "obs", shape=(self.info.obs_dim,), dtypes=("<f4",))
        info = {k: v for k, v in msg.items() if k not in _NOT_OBS}
        if "action" in info:  # real time: the action the server applied at this tick
            info["action"] = self.codec.read_array(msg, "action", shape=(self.info.action_dim,))
        if "next_obs" in info:  # real time, an episode ended: the next one's first observation
            info["next_obs"] = self.codec.read_array(
                msg, "next_obs", shape=(self.info.obs_dim,), dtypes=("<f4",)
            )
        return Observation(
            obs=obs,
            reward=float(msg.get("reward", 0.0)),
            terminated=bool(msg.get("terminated")),
            truncated=bool(msg.get("truncated")),
            seq=msg["seq"],
            re=int(msg.get("re", -1)),
            sent_at=float(msg["t"]),
            received_at=time.monotonic(),
            shared_clock=self._shared_clock,
            info=info,
        )

    def reset(
        self, seed: int | None = None, clear_estop: bool = False, take_over: bool | None = None
    ) -> Observation:
        """Start an episode; returns the first observation.

        ``take_over``: take the control lease from the client that holds it (default:
        the client's ``take_over`` setting). Without it a server whose lease another live
        client holds refuses with ``lease_held`` (:class:`RemoteError`).
        """
        body: dict[str, Any] = {"seed": seed}
        if clear_estop:
            body["clear_estop"] = True
        if self.take_over if take_over is None else take_over:
            body["take_over"] = True
        return self._to_observation(self.request(P.RESET, **body))

    def step(self, action: np.ndarray) -> Observation:
        """Lockstep: apply ``(action_dim,)`` and return the next observation."""
        a = np.asarray(action, dtype=np.float64)  # float64: bit-identical to a local env
        return self._to_observation(self.request(P.STEP, idempotent=False, action=a))

    def heartbeat(self) -> dict[str, Any]:
        """Server counters (requests, errors, stale, ticks, late, watchdog, overruns ...)."""
        return self.request(P.HEARTBEAT)

    def estop(self) -> None:
        """Latch the server's emergency stop (it then applies only the neutral command)."""
        self.request(P.ESTOP)

    # ---- real time ----------------------------------------------------------------------
    def send_action(self, action: np.ndarray, episode: int | None = None) -> int:
        """Send the newest action without waiting; returns its sequence number.

        ``episode``: the episode of the observation it was computed from
        (:attr:`Observation.control_episode`); the server drops it if that episode is over.
        """
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.info.action_dim,):
            raise ValueError(f"action must have shape ({self.info.action_dim},), got {a.shape}")
        if episode is None:
            return self._send(P.ACTION, action=a)
        return self._send(P.ACTION, action=a, episode=int(episode))

    def _keep_observation(self, msg: dict[str, Any]) -> None:
        if msg.get("sid") != self.info.session:  # a restarted server: sequence starts over
            self._accept_hello({**self.info.raw, "session": msg.get("sid")})
            self._latest = None
        if self._latest is not None and msg["seq"] <= self._latest.seq:
            self.stale += 1
            return
        try:
            self._latest = self._to_observation(msg)
        except ProtocolError as err:
            log.warning("bridge: bad observation from server: %s", err)

    def latest_observation(self, timeout: float = 0.0) -> Observation | None:
        """Drain pending messages and return the newest observation (None if none yet).

        Waits up to ``timeout`` seconds for a *new* one when nothing newer is queued.
        Error replies are appended to :attr:`errors`; a ``hello_required`` error (the
        server restarted) triggers a new hello without blocking.
        """
        before = self._latest.seq if self._latest is not None else -1
        deadline = time.monotonic() + timeout
        while True:
            while (msg := self._recv_one()) is not None:
                if msg["type"] == P.ERROR:
                    err = RemoteError(str(msg.get("code")), str(msg.get("message")))
                    self.errors.append(err)
                    self.error_count += 1
                    del self.errors[:-100]
                    if err.code == ErrorCode.HELLO_REQUIRED:
                        self._hello_again()
                elif msg["type"] == P.HELLO and _int_or(msg.get("re"), -1) > self._hello_seq:
                    # any hello reply on this socket answers one of this client's hellos
                    self._hello_seq = msg["re"]
                    self._accept_hello(msg)
                    self.reconnects += 1
            newest = self._latest.seq if self._latest is not None else -1
            remaining = deadline - time.monotonic()
            if newest > before or remaining <= 0:
                return self._latest
            self._sock.poll(max(1, int(remaining * 1000)))

    def _hello_again(self) -> None:
        """Real time, the server forgot this client: say hello without waiting for the
        answer, at most once per ``timeout`` (one error per action would otherwise send
        a hello per action, and a server limits hellos per client)."""
        now = time.monotonic()
        if now - self._hello_sent >= self.timeout:
            self._hello_sent = now
            self._send(P.HELLO, **self._hello_body())

    def close(self) -> None:
        """Stop the keep-alive thread, say goodbye (best effort) and release the socket."""
        self._closing.set()
        if self._keeper is not None:
            self._keeper.join(timeout=self.timeout + 1.0)
            self._keeper = None
        with self._lock:
            if self._sock is not None:
                try:
                    if self._info is not None:
                        self._send(P.CLOSE)
                except zmq.ZMQError:
                    pass
                self._sock.close(0)
                self._sock = None
            self._ctx.term()

    def __enter__(self) -> BridgeClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
