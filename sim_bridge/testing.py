"""Helpers for tests and benchmarks: free endpoints, servers in threads and processes,
and hostile traffic (floods of the message classes a server must survive)."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import zmq

from sim_bridge import protocol as P
from sim_bridge.client import BridgeClient
from sim_bridge.server import Backend, BridgeServer, ServerConfig


def free_tcp_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` with a port that was free a moment ago."""
    return f"tcp://127.0.0.1:{free_tcp_port()}"


def wait_ready(endpoint: str, timeout: float = 30.0) -> None:
    """Block until a server answers a hello at ``endpoint``."""
    client = BridgeClient(endpoint, timeout=0.25, retries=max(1, int(timeout / 0.25)))
    try:
        client.connect()
    finally:
        client.close()


@contextlib.contextmanager
def server_thread(
    backend: Backend, config: ServerConfig, make_backend: Callable[[], Backend] | None = None
) -> Iterator[BridgeServer]:
    """Run a server in a daemon thread for the duration of the block (``make_backend``:
    see :class:`~sim_bridge.server.BridgeServer`)."""
    server = BridgeServer(backend, config, make_backend)
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop,), daemon=True)
    thread.start()
    try:
        if not server.bound.wait(10.0):
            raise RuntimeError(f"server did not bind {config.endpoint}")
        yield server
    finally:
        stop.set()
        thread.join(5.0)


class ServerProcess:
    """A server command in its own process (killable), started and waited for."""

    def __init__(
        self,
        args: list[str],
        endpoint: str,
        timeout: float = 60.0,
        log: Path | None = None,
        env: dict[str, str | None] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.args, self.endpoint, self.timeout = args, endpoint, timeout
        self.python = python  # the interpreter (another environment's, e.g. Humanoid-Bench's)
        self.log = log  # where the server's stderr (its log) goes; discarded when None
        self.env = env or {}  # environment variables to set (None: to remove)
        self.proc: subprocess.Popen | None = None

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it to serve."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        env = {k: v for k, v in env.items() if v is not None}
        with contextlib.ExitStack() as files:
            err = files.enter_context(open(self.log, "wb")) if self.log else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                [self.python, *self.args], env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_mib(self) -> float:
        """The process's resident memory in MiB (Linux)."""
        return rss_mib(self.proc.pid)

    def start(self) -> ServerProcess:
        """Start the process and wait until it answers a hello."""
        self.launch()
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.args} exited with {self.proc.returncode}")
            try:
                wait_ready(self.endpoint, timeout=1.0)
                return self
            except Exception:
                if time.monotonic() > deadline:
                    self.kill()
                    raise

    def kill(self) -> None:
        """SIGKILL: no goodbye, exactly like a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB, from ``/proc`` (Linux only)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


FLOODS = ("hello", "garbage", "bomb", "crash", "multipart")
"""Hostile traffic classes: valid handshakes, random bytes, decode bombs (3 KB of nested
``array16(65535)`` headers), crash inputs (a ``type`` that is a list) and many-frame
messages of the largest accepted frame."""


def hostile_message(kind: str, i: int) -> list[bytes]:
    """Message ``i`` of flood ``kind``, as the frames a DEALER sends."""
    if kind == "hello":
        body = {"v": 1, "type": P.HELLO, "seq": i + 1, "t": 0.0, "client": "flood"}
        return [msgpack.packb(body)]
    if kind == "garbage":
        return [os.urandom(64)]
    if kind == "bomb":
        return [b"\xdc\xff\xff" * 1000]
    if kind == "crash":
        return [msgpack.packb({"v": 1, "type": [1], "seq": i + 1, "t": 0.0})]
    if kind == "multipart":
        return [bytes(P.MAX_REQUEST_BYTES)] * 40
    raise ValueError(f"unknown flood {kind!r}; one of {FLOODS}")


def flood(
    endpoint: str, kind: str, clients: int, rate: float, seconds: float, stop=None, ready=None
) -> int:
    """Send flood ``kind`` from ``clients`` connections at ``rate`` messages per second in
    all, for ``seconds`` or until ``stop`` (an event) is set; returns messages sent.
    ``ready`` (an event) is set once the connections are made.

    Sends never block: a message the socket cannot queue is dropped, as a flooder would.
    """
    ctx = zmq.Context()
    socks = []
    for _ in range(clients):
        sock = ctx.socket(zmq.DEALER)
        sock.linger, sock.sndhwm, sock.rcvhwm = 0, 100, 10
        sock.connect(endpoint)
        socks.append(sock)
    if ready is not None:
        ready.set()
    sent, t0, batch = 0, time.monotonic(), 0.005
    try:
        while time.monotonic() - t0 < seconds and not (stop is not None and stop.is_set()):
            due = int((time.monotonic() - t0) * rate) - sent
            for _ in range(max(due, 0)):
                sock = socks[sent % clients]
                with contextlib.suppress(zmq.Again):
                    sock.send_multipart(hostile_message(kind, sent), flags=zmq.NOBLOCK)
                with contextlib.suppress(zmq.Again):  # replies are read and thrown away
                    while True:
                        sock.recv(zmq.NOBLOCK)
                sent += 1
            time.sleep(batch)
    finally:
        for sock in socks:
            sock.close(0)
        ctx.term()
    return sent


@contextlib.contextmanager
def flooding(
    endpoint: str, kind: str, clients: int = 200, rate: float = 4000.0, seconds: float = 60.0
) -> Iterator[None]:
    """Run :func:`flood` in its own process for the duration of the block."""
    ctx = mp.get_context("spawn")
    stop, ready = ctx.Event(), ctx.Event()
    args = (endpoint, kind, clients, rate, seconds, stop, ready)
    proc = ctx.Process(target=flood, args=args, daemon=True)
    proc.start()
    try:
        if not ready.wait(60.0):
            raise RuntimeError("the flood process did not start")
        yield
    finally:
        stop.set()
        proc.join(10.0)
        if proc.is_alive():
            proc.kill()
