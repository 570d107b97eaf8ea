"""Socket set-up shared by server and client: endpoint policy and CURVE keys.

Servers bind to loopback (or ``ipc://``) unless ``allow_remote`` is given. For other
interfaces, ZeroMQ CURVE encrypts the link and, with a directory of authorised client
certificates, authenticates clients. Certificates are the files written by
``zmq.auth.create_certificates`` (``*.key`` public, ``*.key_secret`` secret).
"""

from __future__ import annotations

import re
from pathlib import Path

import zmq
import zmq.auth

_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|\[?::1\]?)$")


class BridgeSecurityError(ValueError):
    """An endpoint or key set-up that would expose the bridge unsafely."""


def is_local(endpoint: str) -> bool:
    """True for ``ipc://``, ``inproc://`` and TCP on a loopback address."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0]
    return bool(_LOOPBACK.match(host))


def check_bind(endpoint: str, allow_remote: bool) -> None:
    """Refuse a non-loopback bind unless explicitly allowed."""
    if "://" not in endpoint:
        raise BridgeSecurityError(
            f"endpoint {endpoint!r} needs a scheme, e.g. tcp://127.0.0.1:5555"
        )
    if not is_local(endpoint) and not allow_remote:
        raise BridgeSecurityError(
            f"binding to {endpoint} exposes the bridge beyond this machine; pass "
            "--allow-remote (and preferably --curve-secret-key) to do so"
        )


def setup_server_curve(
    ctx: zmq.Context, sock: zmq.Socket, secret_cert: str | None, clients_dir: str | None
) -> object | None:
    """Enable CURVE on a server socket; returns the authenticator to stop later (or None)."""
    if secret_cert is None:
        if clients_dir is not None:
            raise BridgeSecurityError("--curve-clients needs --curve-secret-key")
        return None
    if not zmq.has("curve"):
        raise BridgeSecurityError("this libzmq was built without CURVE support")
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = zmq.auth.load_certificate(secret_cert)
    if secret is None:
        raise BridgeSecurityError(f"{secret_cert} holds no secret key")
    auth = None
    if clients_dir is not None:
        if not Path(clients_dir).is_dir():
            raise BridgeSecurityError(f"--curve-clients {clients_dir} is not a directory")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(clients_dir))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def setup_client_curve(sock: zmq.Socket, server_cert: str | None, client_cert: str | None) -> None:
    """Enable CURVE on a client socket (an ephemeral key pair when no client cert is given)."""
    if server_cert is None:
        return
    server_public, _ = zmq.auth.load_certificate(server_cert)
    if client_cert is not None:
        public, secret = zmq.auth.load_certificate(client_cert)
        if secret is None:
            raise BridgeSecurityError(f"{client_cert} holds no secret key")
    else:
        public, secret = zmq.curve_keypair()
    sock.curve_serverkey = server_public
    sock.curve_publickey = public
    sock.curve_secretkey = secret
