"""The bridge server: one ROUTER socket in front of a :class:`Backend`.

The backend is a simulator (``boom_control.sim.backend.SimBackend``), any Gymnasium env
(``gym_server.GymBackend``) or a robot driver (``hardware.HardwareBackend``); the protocol,
validation, watchdog, action limits and emergency stop live here, so every backend gets
them.

Modes:

* ``lockstep``: each ``step`` request advances one control step and is answered with the
  observation. Deterministic. Every client gets a simulation of its own at its first
  ``reset`` (see :mod:`sim_bridge.pool`; ``max_instances`` at once, a ``full`` error past
  it), so a trainer, its evaluation workers and other users never share an episode.
* ``realtime``: after a ``reset`` the backend advances every ``control_period`` seconds of
  wall time (monotonic clock, absolute deadlines, sleep then spin). Clients send ``action``
  messages whenever they like; each tick applies the newest one. A tick with no new action
  is *late*: counted, and the last action is held (``on_late="hold"``) or the neutral
  (damping) action is applied (``on_late="damp"``). After ``watchdog_periods`` periods with
  no action at all the neutral action is applied until a fresh one arrives. Every tick's
  observation is pushed to each real-time client.

  Episodes: when an episode ends the server starts the next one itself; the terminal
  observation then carries the new episode's first observation (``next_obs``) and number
  (``next_episode``), so a controller plans the new episode's first action from its real
  state. Actions that name an older ``episode`` are dropped (``stale_actions``): an action
  computed for a fallen robot is never applied to the fresh one. A simulator backend
  (``waits_for_first_action`` in its handshake) holds its clock still after every reset
  until that episode's first action arrives (``waiting`` ticks), so no episode starts with
  a held or neutral action it was never given; a robot keeps ticking from the reset on.

Hostile input: every field is type-checked before use, every handler and every tick runs
under a last-resort handler (an unexpected exception becomes an ``internal`` error reply or
a counted fault, never an exit), frames are read one at a time under per-peer budgets
(:mod:`sim_bridge.peers`), and in real time the messages between two ticks are handled
only until the next tick is due.

Control lease: where a lease is on (real time by default), one client at a time controls
the server. It takes the lease with its first ``reset``, ``step`` or ``action``, renews it
with every such message and its heartbeats, and gives it up with ``close``; after
``lease_timeout`` seconds of silence any client may take it, and ``take_over=true`` on a
``reset`` takes it at once. Others may connect and observe; ``estop`` is always accepted.

Sessions: a client is forgotten (its simulation given back, its lease released) after
``client_timeout`` seconds without a message; the client library sends heartbeats while
its user is busy elsewhere. A client that reconnects on a new socket names its
``client_id`` in its hello and gets its session back (its simulation and its lease).

This module does not import boom_control (the Gymnasium adapter runs it stand-alone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import zmq

from sim_bridge import protocol as P
from sim_bridge.peers import Peer, PeerLimits, PeerTable
from sim_bridge.pool import InstancePool
from sim_bridge.protocol import ErrorCode, ProtocolError, quote
from sim_bridge.transport import check_bind, setup_server_curve

BUSY_POLL_DEFAULT = 5e-4
"""Lockstep servers poll for 0.5 ms after each reply before blocking (``busy_poll``)."""


def effective_busy_poll(busy_poll: float) -> float:
    """``busy_poll``, or 0 when this thread may run on one CPU only.

    Spinning pays when the client runs on another core. Pinned to a single CPU the
    server would only take that CPU from its client (or from the next request's
    processing), so it blocks instead.
    """
    if busy_poll > 0.0 and hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1:
        return 0.0
    return busy_poll


log = logging.getLogger(__name__)
MODES = ("lockstep", "realtime")
RCVHWM = 64  # frames queued per connection before libzmq stops reading from it


class Backend(Protocol):
    """What the server drives. Actions are normalised to [-1, 1] and already validated."""

    def describe(self) -> dict[str, Any]:
        """Handshake fields: task_id, obs_dim, action_dim, control_period, episode_length,
        contract (JSON), contract_hash, action_mapping, physics_dt, substeps, terminates,
        success_return; optionally waits_for_first_action (a simulator that can hold its
        clock still until an episode's first action, default False)."""

    def reset(self, seed: int | None) -> tuple[np.ndarray, dict[str, Any]]: ...

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """``(obs, reward, terminated, truncated, info)`` for a ``(action_dim,)`` action."""

    def neutral_action(self) -> np.ndarray:
        """The hold/damping action applied on watchdog, estop or (optionally) late actions."""

    def estop(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ServerConfig:
    """How a bridge server listens and behaves."""

    endpoint: str = "tcp://127.0.0.1:5555"  # where to bind
    mode: str = "lockstep"  # lockstep | realtime
    on_late: str = "hold"  # realtime, tick without a new action: hold | damp
    watchdog_periods: int = 10  # realtime: periods with no action before the neutral action
    allow_remote: bool = False  # permit binding a non-loopback interface
    curve_secret_key: str | None = None  # server certificate (secret) enabling CURVE
    curve_clients: str | None = None  # directory of authorised client public certificates
    client_timeout: float = 10.0  # seconds of silence before a client is forgotten
    # lockstep: simulations alive at once, one per client session (with a backend factory;
    # a server without one has a single simulation)
    max_instances: int = 8
    max_message_bytes: int = P.MAX_REQUEST_BYTES  # larger frames get a too_large reply
    max_clients: int = 32  # clients admitted at once (hello past it: a busy error)
    # control lease: seconds of silence after which another client may take control;
    # None: 1 s in real time and no lease in lockstep; 0: no lease
    lease_timeout: float | None = None
    # frames per second one connection may send in real time (0: unlimited); the rest
    # are dropped unread, so a flooding peer cannot delay the ticks
    peer_rate: float = 500.0
    spin: float = 2e-4  # realtime: seconds spun (not slept) before each deadline
    # lockstep: seconds spent retrying non-blocking receives after each reply before
    # blocking. Keeps the server's core awake for a client that steps back to back (lower,
    # steadier round trips on machines with slow idle wake-ups); a client that takes
    # longer than this between steps costs the server this much CPU per step. 0 blocks.
    busy_poll: float = BUSY_POLL_DEFAULT
    name: str = "boom-sim"  # server name announced in the handshake
    # realtime, for tests of latency compensation: every tick's observation is pushed this
    # many ticks after it was produced, with the time it waited in ``obs_delay`` (seconds)
    obs_delay_ticks: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.on_late not in ("hold", "damp"):
            raise ValueError(f"on_late must be 'hold' or 'damp', got {self.on_late!r}")
        if self.watchdog_periods < 1:
            raise ValueError("watchdog_periods must be >= 1")
        if not 0.0 <= self.busy_poll <= 1.0:
            raise ValueError(f"busy_poll must be in [0, 1] seconds, got {self.busy_poll!r}")
        if self.max_clients < 1:
            raise ValueError("max_clients must be >= 1")
        if self.max_instances < 1:
            raise ValueError(f"max_instances must be >= 1, got {self.max_instances!r}")
        if not 0.1 <= self.client_timeout <= 86400.0:
            raise ValueError(
                f"client_timeout must be in [0.1, 86400] seconds, got {self.client_timeout!r}"
            )
        if self.lease_timeout is not None and self.lease_timeout < 0:
            raise ValueError(f"lease_timeout must be >= 0, got {self.lease_timeout!r}")
        if not 0 <= self.obs_delay_ticks <= 100:
            raise ValueError(f"obs_delay_ticks must be in [0, 100], got {self.obs_delay_ticks!r}")
        if self.obs_delay_ticks and self.mode != "realtime":
            raise ValueError("obs_delay_ticks delays real-time observations: use mode realtime")
        if self.peer_rate < 0:
            raise ValueError(f"peer_rate must be >= 0, got {self.peer_rate!r}")
        if not 256 <= self.max_message_bytes <= P.MAX_MESSAGE_BYTES:
            raise ValueError(
                f"max_message_bytes must be in [256, {P.MAX_MESSAGE_BYTES}], "
                f"got {self.max_message_bytes!r}"
            )

    @property
    def lease_s(self) -> float:
        """The lease timeout in effect (0: no lease)."""
        if self.lease_timeout is not None:
            return float(self.lease_timeout)
        return 1.0 if self.mode == "realtime" else 0.0


def add_admission_arguments(parser: Any) -> None:
    """``--lease-timeout``, ``--max-clients`` and ``--client-timeout`` on an argparse
    parser (the stand-alone servers' command lines)."""
    parser.add_argument(
        "--lease-timeout",
        type=float,
        default=None,
        help="seconds of silence before another client may take control (0: no lease; "
        "default: 1 in real time, none in lockstep)",
    )
    parser.add_argument("--max-clients", type=int, default=32, help="clients admitted at once")
    parser.add_argument(
        "--client-timeout",
        type=float,
        default=10.0,
        help="seconds without a message before a client is forgotten and its simulation "
        "given back (clients of the bridge library send heartbeats while busy; default: 10)",
    )


@dataclass
class ServerStats:
    """Counters reported in heartbeat replies."""

    requests: int = 0
    errors: int = 0
    stale: int = 0
    ticks: int = 0
    late: int = 0
    watchdog: int = 0
    overruns: int = 0
    episodes: int = 0
    clients_expired: int = 0
    waiting: int = 0  # realtime ticks a simulator held still for an episode's first action
    stale_actions: int = 0  # actions dropped because they named an earlier episode
    dropped: int = 0  # frames dropped unanswered: a peer over its frame or hello budget
    faults: int = 0  # unexpected exceptions in a handler or a tick (the server went on)
    busy: int = 0  # hellos refused because max_clients were connected
    lease_refused: int = 0  # reset/step/action refused: another client held the lease
    full: int = 0  # lockstep resets refused because every simulation was in use
    resumed: int = 0  # sessions taken over by their client's new connection (client_id)
    takeovers: int = 0  # leases taken from a live owner with take_over
    slips: int = 0  # realtime ticks started more than 1 ms after their deadline
    max_slip_ms: float = 0.0  # the latest start of a tick after its deadline


@dataclass
class _Client:
    last_seq: int
    last_seen: float
    realtime: bool = False
    told_episode: int = -1  # the episode a stale_episode error last named to this client
    key: int | None = None  # the client_id it named in its hello (to resume the session)
    backend: Any = None  # lockstep: its own simulation, from the first reset on
    needs_reset: bool = True  # lockstep: its episode is over (or never started)


@dataclass
class _RealtimeState:
    running: bool = False
    pending: np.ndarray | None = None
    pending_seq: int = -1
    held: np.ndarray | None = None
    applied_seq: int = -1
    last_action_t: float = 0.0
    had_action: bool = False
    in_watchdog: bool = False
    episode_step: int = 0
    subscribers: set[bytes] = field(default_factory=set)
    delayed: deque = field(default_factory=deque)
    """``obs_delay_ticks``: ``(produced at, applied seq, observation fields)`` not pushed yet."""


class BridgeServer:
    """Serves a backend; :meth:`run` blocks until ``stop`` is set.

    Args:
        backend: the simulation (real time: the only one; lockstep: the first client's).
        config: how to listen and behave.
        make_backend: builds another simulation like ``backend`` for each further lockstep
            client (up to ``config.max_instances``); None: every lockstep client shares
            ``backend`` one at a time (a second one gets a ``full`` error).
    """

    def __init__(
        self,
        backend: Backend,
        config: ServerConfig,
        make_backend: Callable[[], Backend] | None = None,
    ) -> None:
        check_bind(config.endpoint, config.allow_remote)
        self.backend = backend
        self.cfg = config
        self._pool = InstancePool(
            backend,
            make_backend if config.mode == "lockstep" else None,
            config.max_instances,
        )
        self.codec = P.Codec(max_bytes=config.max_message_bytes, limits=P.REQUEST_LIMITS)
        self.session = secrets.randbits(62)
        desc = dict(backend.describe())
        self.action_dim = int(desc["action_dim"])
        self._action_shape = (self.action_dim,)
        self.period = float(desc["control_period"])
        self._waits = bool(desc.get("waits_for_first_action", False))
        self._lease_s = config.lease_s
        self.info = {
            **desc,
            "mode": config.mode,
            "server": config.name,
            "protocol": P.PROTOCOL_VERSION,
            "session": self.session,
            "lease_timeout": self._lease_s,
            "client_timeout": config.client_timeout,
            "instances": self._pool.capacity,
        }
        self._neutral = np.asarray(backend.neutral_action(), dtype=np.float64)
        self.stats = ServerStats()
        self._clients: dict[bytes, _Client] = {}
        self._keys: dict[int, bytes] = {}  # client_id -> the connection now using it
        self._peers = PeerTable(
            PeerLimits(frame_rate=config.peer_rate if config.mode == "realtime" else 0.0)
        )
        self._server_logs = Peer(self._peers.limits, 0.0)  # budget of peer-less log lines
        self._owner: bytes | None = None  # the client holding the control lease
        self._owner_seen = 0.0  # when the owner last renewed it
        self._seq = 0
        self._estopped = False
        self._rt = _RealtimeState()
        self._sock: zmq.Socket | None = None
        self._busy_poll_s = config.busy_poll  # resolved against the CPU affinity in run()
        self.bound = threading.Event()

    # ---- sending ------------------------------------------------------------------------
    def _frame(self, msg_type: str, re: int, **body: Any) -> bytes:
        self._seq += 1
        return self.codec.encode(msg_type, self._seq, re=re, sid=self.session, **body)

    def _push(self, ident: bytes, frame: bytes) -> None:
        # A full queue means that client is not reading: drop rather than block. A peer
        # that is gone (or any other socket error) must not stop the server either.
        with contextlib.suppress(zmq.ZMQError):
            self._sock.send_multipart([ident, frame], flags=zmq.NOBLOCK)

    def _send(self, ident: bytes, msg_type: str, re: int, **body: Any) -> None:
        self._push(ident, self._frame(msg_type, re, **body))

    def _error(self, ident: bytes, code: str, detail: str, re: int = -1) -> None:
        """An error reply, unless this peer has used up its fault budget (then the error is
        only counted, in ``errors``)."""
        self.stats.errors += 1
        peer = self._peers.get(ident, time.monotonic())
        if not peer.faults.take(time.monotonic()):
            return
        detail = detail if len(detail) <= 240 else detail[:237] + "..."
        self._log(peer, logging.DEBUG, "error reply to %s: %s: %s", ident.hex()[:16], code, detail)
        self._send(ident, P.ERROR, re, code=code, message=detail)

    def _log(self, peer: Peer | None, level: int, fmt: str, *args: Any) -> None:
        """A log line within ``peer``'s log budget (the server's own without a peer);
        lines over the budget are counted and the count is reported with the next one."""
        if not log.isEnabledFor(level):
            return
        budget = peer if peer is not None else self._server_logs
        if not budget.logs.take(time.monotonic()):
            budget.muted_logs += 1
            return
        if budget.muted_logs:
            fmt += " (%d similar lines suppressed)"
            args = (*args, budget.muted_logs)
            budget.muted_logs = 0
        log.log(level, fmt, *args)

    def _observation_frame(
        self,
        re: int,
        obs: np.ndarray,
        reward: float,
        terminated: bool,
        truncated: bool,
        **extra: Any,
    ) -> bytes:
        return self._frame(
            P.OBSERVATION,
            re,
            obs=np.asarray(obs, dtype=np.float32),
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
            **extra,
        )

    def _broadcast(self, frame: bytes, exclude: bytes | None = None) -> None:
        """One frame to every real-time subscriber (packed once for all of them)."""
        for ident in self._rt.subscribers:
            if ident != exclude:
                self._push(ident, frame)

    # ---- requests -----------------------------------------------------------------------
    def _handle(self, ident: bytes, payload: bytes | None, extra: int, now: float) -> None:
        """One request: budgets, decoding, dispatch; nothing it does can raise."""
        try:
            peer = self._peers.get(ident, now)
            if not peer.admit(now):
                peer.dropped += 1
                self.stats.dropped += 1
                return None
            self.stats.requests += 1
            if payload is None or extra:
                frames = 0 if payload is None else 1 + extra
                return self._error(ident, ErrorCode.MALFORMED, f"expected 1 frame, got {frames}")
            return self._dispatch(ident, peer, payload, now)
        except Exception as err:  # the last resort: the server never exits on input
            self.stats.faults += 1
            log.exception("bridge: internal error on a message from %s", ident.hex()[:16])
            with contextlib.suppress(Exception):
                self._error(ident, ErrorCode.INTERNAL, f"server failed: {type(err).__name__}")
            return None

    def _dispatch(self, ident: bytes, peer: Peer, payload: bytes, now: float) -> None:
        try:
            msg = self.codec.decode(payload)
        except ProtocolError as err:
            return self._error(ident, err.code, err.detail)
        msg_type, seq = msg["type"], msg["seq"]
        if msg_type == P.HELLO:
            if not peer.hellos.take(now):
                peer.dropped += 1
                self.stats.dropped += 1
                return None
            try:
                return self._on_hello(ident, peer, msg, now)
            except ProtocolError as err:
                return self._error(ident, err.code, err.detail, seq)
        client = self._clients.get(ident)
        if client is None:
            return self._error(
                ident,
                ErrorCode.HELLO_REQUIRED,
                "say hello first (the server may have restarted)",
                seq,
            )
        if seq <= client.last_seq:
            self.stats.stale += 1
            return None
        client.last_seq, client.last_seen = seq, now
        handler = self._handlers.get(msg_type)
        if handler is None:
            return self._error(
                ident, ErrorCode.BAD_TYPE, f"a server does not accept {msg_type!r}", seq
            )
        try:
            return handler(self, ident, msg, now)
        except ProtocolError as err:
            return self._error(ident, err.code, err.detail, seq)
        except Exception as err:  # a backend failure must not take the server down
            self._log(peer, logging.ERROR, "backend failed on %s: %s", msg_type, quote(err, 240))
            client.needs_reset = True
            return self._error(ident, ErrorCode.BACKEND, f"{type(err).__name__}: {err}", seq)

    def _on_hello(self, ident: bytes, peer: Peer, msg: dict[str, Any], now: float) -> None:
        seq = msg["seq"]
        want_hash = P.read_field(msg, "contract_hash", str, 64)
        want_task = P.read_field(msg, "task", str, 200)
        want_mode = P.read_field(msg, "mode", str, 16)
        key = P.read_field(msg, "client_id", int)
        if key is not None and not 0 <= key < 2**63:
            raise ProtocolError(ErrorCode.MALFORMED, "'client_id' must be in [0, 2^63)")
        name = msg.get("client", "?")
        if want_hash is not None and want_hash != self.info["contract_hash"]:
            return self._error(
                ident,
                ErrorCode.CONTRACT_MISMATCH,
                f"server task {self.info['task_id']} has observation contract "
                f"{self.info['contract_hash']}, client expects {quote(want_hash)}",
                seq,
            )
        if want_task is not None and want_task != self.info["task_id"]:
            return self._error(
                ident,
                ErrorCode.TASK_MISMATCH,
                f"server serves {self.info['task_id']}, client expects {quote(want_task)}",
                seq,
            )
        if want_mode is not None and want_mode != self.cfg.mode:
            return self._error(
                ident,
                ErrorCode.WRONG_MODE,
                f"server runs in {self.cfg.mode} mode, client wants {quote(want_mode)}",
                seq,
            )
        resumed = self._resume(ident, key, seq, now)
        if not resumed:
            if ident not in self._clients and len(self._clients) >= self.cfg.max_clients:
                self._expire(now)
                if len(self._clients) >= self.cfg.max_clients:
                    self.stats.busy += 1
                    return self._error(
                        ident,
                        ErrorCode.BUSY,
                        f"the server admits {self.cfg.max_clients} clients at once; try later",
                        seq,
                    )
            old = self._clients.get(ident)
            if old is not None and old.key is not None and old.key != key:
                self._keys.pop(old.key, None)
            client = old or _Client(seq, now, realtime=self.cfg.mode == "realtime")
            client.last_seq, client.last_seen, client.key = seq, now, key
            self._clients[ident] = client
            if key is not None:
                self._keys[key] = ident
            if self.cfg.mode == "realtime":
                self._rt.subscribers.add(ident)
            self._log(
                peer, logging.INFO, "client %s connected (%s)", ident.hex()[:16], quote(name, 40)
            )
        self._send(ident, P.HELLO, seq, **self.info, resumed=resumed)

    def _resume(self, ident: bytes, key: int | None, seq: int, now: float) -> bool:
        """Hand the session of ``client_id`` ``key`` (its simulation, lease and
        subscription) to the connection ``ident``; False when there is none to hand over."""
        old = self._keys.get(key) if key is not None else None
        if old is None or old == ident or old not in self._clients:
            return False
        client = self._clients.pop(old)
        stale = self._clients.pop(ident, None)
        if stale is not None and stale is not client:  # this connection's own old session
            self._pool.release(stale.backend)
            if stale.key is not None and self._keys.get(stale.key) == ident:
                del self._keys[stale.key]
        client.last_seq, client.last_seen = seq, now
        self._clients[ident] = client
        self._keys[key] = ident
        if old in self._rt.subscribers:
            self._rt.subscribers.discard(old)
            self._rt.subscribers.add(ident)
        if self._owner == old:
            self._owner = ident
        self.stats.resumed += 1
        log.info("client %s resumed its session on a new connection", ident.hex()[:16])
        return True

    def _read_action(self, msg: dict[str, Any]) -> np.ndarray:
        a = self.codec.read_array(msg, "action", shape=self._action_shape).astype(np.float64)
        if not np.isfinite(a).all():
            raise ProtocolError(ErrorCode.NOT_FINITE, "action contains NaN or Inf")
        # The action limits of every backend: np.clip on a fresh copy, in place, without
        # the Python-level wrapper (same values, a third of the cost on short vectors).
        np.maximum(a, -1.0, out=a)
        return np.minimum(a, 1.0, out=a)

    # ---- control lease ------------------------------------------------------------------
    def _claim(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        """Make ``ident`` the lease holder, or raise ``lease_held`` (no lease: nothing)."""
        if self._lease_s <= 0.0 or ident == self._owner:
            self._owner_seen = now
            return
        take_over = P.read_field(msg, "take_over", bool)
        owner = self._owner
        live = owner is not None and now - self._owner_seen <= self._lease_s
        if live and not take_over:
            self.stats.lease_refused += 1
            raise ProtocolError(
                ErrorCode.LEASE_HELD,
                f"client {owner.hex()[:16]} controls this server (it renews its lease with "
                f"every action; it lapses after {self._lease_s:g} s of silence); "
                "reset with take_over=true to take control",
            )
        if live:
            self.stats.takeovers += 1
            log.warning(
                "bridge: client %s took control from client %s",
                ident.hex()[:16],
                owner.hex()[:16],
            )
        self._owner, self._owner_seen = ident, now

    def _release(self, ident: bytes) -> None:
        if ident == self._owner:
            self._owner = None

    # ---- handlers -----------------------------------------------------------------------
    def _on_reset(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        seed = P.read_seed(msg)
        clear = P.read_field(msg, "clear_estop", bool)
        self._claim(ident, msg, now)
        if self._estopped:
            if not clear:
                raise ProtocolError(
                    ErrorCode.ESTOPPED, "emergency stop latched; reset with clear_estop=true"
                )
            self._estopped = False
            log.warning("emergency stop cleared by client %s", ident.hex()[:16])
        client = self._clients[ident]
        if self.cfg.mode == "lockstep":
            client.needs_reset = True
            obs, _ = self._instance(client).reset(seed)
            client.needs_reset = False
        else:
            obs, _ = self.backend.reset(seed)
        self.stats.episodes += 1
        body = {"step": 0, "episode": self.stats.episodes}
        if self.cfg.mode == "realtime":
            self._rt = _RealtimeState(running=True, subscribers=self._rt.subscribers)
            self._start_episode(now)
            # Everyone watching learns of the new episode, so a controller that did not
            # ask for the reset follows it instead of acting on the old one.
            self._broadcast(self._observation_frame(-1, obs, 0.0, False, False, **body), ident)
        self._send(ident, P.OBSERVATION, msg["seq"], **self._observation_body(obs, **body))

    @staticmethod
    def _observation_body(obs: np.ndarray, **extra: Any) -> dict[str, Any]:
        return {
            "obs": np.asarray(obs, dtype=np.float32),
            "reward": 0.0,
            "terminated": False,
            "truncated": False,
            **extra,
        }

    def _on_step(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        if self.cfg.mode != "lockstep":
            raise ProtocolError(ErrorCode.WRONG_MODE, "real-time server: send 'action' messages")
        if self._estopped:
            raise ProtocolError(ErrorCode.ESTOPPED, "emergency stop latched")
        action = self._read_action(msg)
        self._claim(ident, msg, now)
        client = self._clients[ident]
        if client.needs_reset or client.backend is None:
            raise ProtocolError(ErrorCode.NEEDS_RESET, "episode over (or never started): reset")
        obs, reward, terminated, truncated, _ = client.backend.step(action)
        self.stats.ticks += 1
        client.needs_reset = bool(terminated or truncated)
        self._send(
            ident,
            P.OBSERVATION,
            msg["seq"],
            obs=np.asarray(obs, dtype=np.float32),
            reward=float(reward),
            terminated=bool(terminated),
            truncated=bool(truncated),
        )

    def _on_action(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        if self.cfg.mode != "realtime":
            raise ProtocolError(ErrorCode.WRONG_MODE, "lockstep server: send 'step' requests")
        if self._estopped:
            raise ProtocolError(ErrorCode.ESTOPPED, "emergency stop latched; action ignored")
        action = self._read_action(msg)
        episode = P.read_field(msg, "episode", int)
        if not self._rt.running:
            raise ProtocolError(ErrorCode.NEEDS_RESET, "no episode is running: reset first")
        self._claim(ident, msg, now)
        current = self.stats.episodes
        if episode is not None and episode != current:  # computed for an episode that is over
            self.stats.stale_actions += 1
            client = self._clients[ident]
            if client.told_episode != current:  # said once per episode, not per action
                client.told_episode = current
                raise ProtocolError(
                    ErrorCode.STALE_EPISODE,
                    f"action for episode {quote(episode)} dropped: episode {current} is "
                    "running (its first observation was pushed to every client)",
                )
            return
        self._rt.pending = action
        self._rt.pending_seq = msg["seq"]
        self._rt.last_action_t = now

    def _on_heartbeat(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        if ident == self._owner:
            self._owner_seen = now
        self._send(
            ident,
            P.HEARTBEAT,
            msg["seq"],
            stats=self.stats.__dict__.copy(),
            estopped=self._estopped,
            lease={
                "timeout": self._lease_s,
                "held": self._owner is not None,
                "yours": ident == self._owner,
            },
        )

    def _on_estop(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        self._estopped = True
        log.warning("emergency stop from client %s", ident.hex()[:16])
        try:
            self.backend.estop()
        finally:
            self._send(ident, P.ESTOP, msg["seq"], estopped=True)

    def _on_close(self, ident: bytes, msg: dict[str, Any], now: float) -> None:
        self._forget(ident)
        self._send(ident, P.CLOSE, msg["seq"])

    def _instance(self, client: _Client) -> Backend:
        """The client's simulation (lockstep), handed out at its first reset.

        Raises:
            ProtocolError: ``full``, every simulation is in use.
        """
        if client.backend is None:
            client.backend = self._pool.acquire()
            if client.backend is None:
                self.stats.full += 1
                pool = self._pool
                raise ProtocolError(
                    ErrorCode.FULL,
                    f"every simulation of this server is in use ({pool.in_use} of at most "
                    f"{pool.capacity}, one per client); close another client or start the "
                    "server with a larger --max-instances",
                )
        return client.backend

    def _forget(self, ident: bytes) -> None:
        client = self._clients.pop(ident, None)
        if client is not None:
            self._pool.release(client.backend)
            if client.key is not None and self._keys.get(client.key) == ident:
                del self._keys[client.key]
        self._rt.subscribers.discard(ident)
        self._release(ident)

    _handlers: ClassVar[dict[str, Any]] = {
        P.RESET: _on_reset,
        P.STEP: _on_step,
        P.ACTION: _on_action,
        P.HEARTBEAT: _on_heartbeat,
        P.ESTOP: _on_estop,
        P.CLOSE: _on_close,
    }

    # ---- real-time tick -----------------------------------------------------------------
    def _start_episode(self, now: float) -> None:
        """Real time: forget the previous episode's actions; the new one starts held (a
        simulator) or with the neutral action until its first action arrives."""
        rt = self._rt
        rt.pending, rt.held, rt.had_action = None, self._neutral.copy(), False
        rt.in_watchdog, rt.last_action_t = False, now
        rt.episode_step = 0

    def _tick(self, now: float) -> None:
        rt = self._rt
        if not rt.running:
            return
        if self._waits and not rt.had_action and rt.pending is None and not self._estopped:
            self.stats.waiting += 1  # a simulator holds still until the first action
            self._push_delayed(now, flush=True)  # the new episode's start must get out
            return
        late = False
        watchdog = now - rt.last_action_t > self.cfg.watchdog_periods * self.period
        if self._estopped:
            action = self._neutral
        elif rt.pending is not None:
            action, rt.held, rt.applied_seq = rt.pending, rt.pending, rt.pending_seq
            rt.pending, rt.had_action, rt.in_watchdog = None, True, False
        elif watchdog:
            action = self._neutral
            if not rt.in_watchdog:
                rt.in_watchdog = True
                self.stats.watchdog += 1
                log.warning(
                    "watchdog: no action for %d periods, applying the neutral action",
                    self.cfg.watchdog_periods,
                )
        else:
            late = rt.had_action
            self.stats.late += late
            action = rt.held if self.cfg.on_late == "hold" else self._neutral
        obs, reward, terminated, truncated, _ = self.backend.step(action)
        self.stats.ticks += 1
        rt.episode_step += 1
        extra = {
            "tick": self.stats.ticks,
            "step": rt.episode_step,
            "episode": self.stats.episodes,
            "late": late,
            "watchdog": rt.in_watchdog,
            "estopped": self._estopped,
            "action": np.asarray(action, dtype=np.float32),
        }
        if terminated or truncated:  # real time never stops: start the next episode
            extra.update(self._next_episode(now))
        if self.cfg.obs_delay_ticks:
            fields = (obs, reward, terminated, truncated, extra)
            rt.delayed.append((now, rt.applied_seq, fields))
            self._push_delayed(now)
            return
        self._broadcast(
            self._observation_frame(rt.applied_seq, obs, reward, terminated, truncated, **extra)
        )

    def _push_delayed(self, now: float, flush: bool = False) -> None:
        """``obs_delay_ticks``: push the observations that have waited that many ticks (all
        of them with ``flush``), each with ``obs_delay``, the seconds it was held back."""
        rt = self._rt
        while rt.delayed and (flush or len(rt.delayed) > self.cfg.obs_delay_ticks):
            produced, seq, (obs, reward, terminated, truncated, extra) = rt.delayed.popleft()
            extra = {**extra, "obs_delay": now - produced}
            self._broadcast(
                self._observation_frame(seq, obs, reward, terminated, truncated, **extra)
            )

    def _safe_tick(self, now: float) -> None:
        """:meth:`_tick` under the last resort: a backend that raises ends the episode (the
        clients are told and must reset), is counted and logged; the loop goes on."""
        try:
            self._tick(now)
        except Exception as err:
            self.stats.faults += 1
            self._rt.running = False
            self._log(None, logging.ERROR, "bridge: the tick failed: %s", quote(err, 240))
            with contextlib.suppress(Exception):
                frame = self._frame(
                    P.ERROR,
                    -1,
                    code=ErrorCode.BACKEND,
                    message=f"the tick failed ({type(err).__name__}); the episode is over: reset",
                )
                self._broadcast(frame)

    def _next_episode(self, now: float) -> dict[str, Any]:
        """Reset the backend after an episode end; the new episode's first observation and
        number, for the terminal observation's ``next_obs`` and ``next_episode``."""
        first, _ = self.backend.reset(None)
        self.stats.episodes += 1
        self._start_episode(now)
        return {
            "next_obs": np.asarray(first, dtype=np.float32),
            "next_episode": self.stats.episodes,
        }

    # ---- loops --------------------------------------------------------------------------
    def _recv(self, flags: int = 0) -> tuple[bytes, bytes | None, int]:
        """One request off the ROUTER socket, a frame at a time: ``(identity, payload,
        extra)``; frames after the first payload frame are released unread and counted in
        ``extra``, so a many-frame message costs no more memory than one frame.

        Raises:
            zmq.Again: nothing to read (non-blocking, or the receive timeout passed).
        """
        sock = self._sock
        ident = sock.recv(flags)
        payload, extra = None, 0
        if sock.rcvmore:  # the parts of one message arrive together: no waiting here
            payload = sock.recv()
            while sock.rcvmore:
                sock.recv(copy=False)  # dropped at once
                extra += 1
        return ident, payload, extra

    def _drain(self, until: float) -> None:
        """Handle queued requests until none is left or ``until`` (monotonic) has come."""
        monotonic, handle = time.monotonic, self._handle
        now = monotonic()
        while now < until:
            try:
                request = self._recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            handle(*request, now)
            now = monotonic()

    def _expire(self, now: float) -> None:
        old = [i for i, c in self._clients.items() if now - c.last_seen > self.cfg.client_timeout]
        for ident in old:
            self._forget(ident)
            self.stats.clients_expired += 1

    def serve(self, stop: threading.Event | None = None) -> None:
        """:meth:`run` as a program does: SIGINT/SIGTERM stop it (when called from the main
        thread) and the backend is closed afterwards, also on errors."""
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
        try:
            self.run(stop)
        finally:
            counters = ", ".join(f"{k} {v}" for k, v in self.stats.__dict__.items())
            log.info("%s stopped: %s", self.info["task_id"], counters)
            self._pool.close()

    def run(self, stop: threading.Event | None = None) -> None:
        """Bind, serve until ``stop`` is set, close the socket in any case."""
        stop = stop or threading.Event()
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.linger = 0
        # A frame over twice the protocol limit disconnects its peer inside libzmq, before
        # it is buffered; one up to that size gets a too_large reply. Each connection may
        # queue at most RCVHWM frames, so a flood is bounded by RCVHWM x MAXMSGSIZE.
        sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.cfg.max_message_bytes)
        sock.setsockopt(zmq.RCVHWM, RCVHWM)
        auth = setup_server_curve(ctx, sock, self.cfg.curve_secret_key, self.cfg.curve_clients)
        self._sock = sock
        try:
            sock.bind(self.cfg.endpoint)
            log.info(
                "serving %s on %s (%s)", self.info["task_id"], self.cfg.endpoint, self.cfg.mode
            )
            self.bound.set()
            if self.cfg.mode == "lockstep":
                self._run_lockstep(stop)
            else:
                self._run_realtime(stop)
        finally:
            sock.close(0)
            if auth is not None:
                auth.stop()
            ctx.term()

    def _run_lockstep(self, stop: threading.Event) -> None:
        """Block in ``recv`` (100 ms receive timeout, so ``stop`` is seen promptly).

        One blocking receive per request: no ``poll`` before it and no failed
        non-blocking receive after it, which is two system calls and an exception less
        per round trip than a poll-and-drain loop. With ``busy_poll`` the server first
        retries non-blocking receives for that long after each reply.
        """
        handle, monotonic = self._handle, time.monotonic
        self._sock.rcvtimeo = 100
        self._busy_poll_s = effective_busy_poll(self.cfg.busy_poll)
        if self._busy_poll_s != self.cfg.busy_poll:
            log.info("busy_poll off: this server may only run on one CPU")
        next_expire = monotonic() + 1.0
        request = None
        while not stop.is_set():
            # Spin only right after serving a request: an idle server blocks.
            request = self._busy_poll() if request is not None and self._busy_poll_s else None
            if request is None:
                try:
                    request = self._recv()
                except zmq.Again:  # the 100 ms receive timeout: check stop and expiry
                    request = None
            now = monotonic()
            if request is not None:
                handle(*request, now)
            if now > next_expire:
                self._expire(now)
                next_expire = now + 1.0

    def _busy_poll(self) -> tuple[bytes, bytes | None, int] | None:
        """Retry non-blocking receives for ``busy_poll`` seconds; None if nothing came."""
        recv, clock = self._recv, time.perf_counter
        end = clock() + self._busy_poll_s
        while True:
            try:
                return recv(zmq.NOBLOCK)
            except zmq.Again:
                if clock() > end:
                    return None

    def _run_realtime(self, stop: threading.Event) -> None:
        """Tick every period on absolute deadlines; between ticks handle requests, but only
        until the spin before the next deadline (whatever is still queued waits a tick)."""
        period, spin = self.period, self.cfg.spin
        deadline = time.monotonic() + period
        next_expire = deadline + 1.0
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining > spin:  # sleep in poll, handling messages as they come
                ms = int((remaining - spin) * 1000)
                if self._sock.poll(ms):
                    self._drain(deadline - spin)
                elif ms == 0:
                    time.sleep(remaining - spin)
                continue
            while time.monotonic() < deadline:  # spin the last fraction of a millisecond
                pass
            slip = time.monotonic() - deadline
            if slip > 1e-3:
                self.stats.slips += 1
            self.stats.max_slip_ms = max(self.stats.max_slip_ms, slip * 1e3)
            self._safe_tick(deadline)
            deadline += period
            now = time.monotonic()
            if now > deadline:  # a tick overran a whole period: count it, re-anchor
                self.stats.overruns += 1
                deadline = now + period
            if now > next_expire:
                self._expire(now)
                next_expire = now + 1.0
