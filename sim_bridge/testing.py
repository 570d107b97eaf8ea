"""Helpers for tests and benchmarks: free endpoints, servers in threads and processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

from sim_bridge.client import BridgeClient
from sim_bridge.server import Backend, BridgeServer, ServerConfig


def free_tcp_endpoint() -> str:
    """``tcp://127.0.0.1:PORT`` with a port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def wait_ready(endpoint: str, timeout: float = 30.0) -> None:
    """Block until a server answers a hello at ``endpoint``."""
    client = BridgeClient(endpoint, timeout=0.25, retries=max(1, int(timeout / 0.25)))
    try:
        client.connect()
    finally:
        client.close()


@contextlib.contextmanager
def server_thread(backend: Backend, config: ServerConfig) -> Iterator[BridgeServer]:
    """Run a server in a daemon thread for the duration of the block."""
    server = BridgeServer(backend, config)
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

    def __init__(self, args: list[str], endpoint: str, timeout: float = 60.0) -> None:
        self.args, self.endpoint, self.timeout = args, endpoint, timeout
        self.proc: subprocess.Popen | None = None

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it to serve."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

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
