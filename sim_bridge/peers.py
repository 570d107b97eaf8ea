"""Per-peer budgets of a bridge server: what one connection may cost it.

A ZeroMQ ROUTER socket names each connection by an identity. For every identity the
server keeps a few token buckets, so a peer that floods pays for it itself:

* ``frames``: frames accepted per second (real time only; a lockstep request waits for
  its reply, so a lockstep client limits itself);
* ``faults``: error replies per second. A peer whose budget is spent gets no error
  replies (they are counted) until the budget refills, so garbage costs the server a
  decode (microseconds, bounded by the protocol's limits) and no reply;
* ``hellos``: handshakes per second (each costs a reply of a few kilobytes);
* ``logs``: log lines per second about this peer (the rest are counted, not written).

The table of peers is bounded (least recently seen first out), so many short-lived
connections cannot grow it without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; :meth:`take` spends one if there is one.

    A ``rate`` of 0 means unlimited.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst = float(rate), float(max(burst, 1.0))
        self.tokens, self.stamp = self.burst, now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token; False (nothing spent) when the bucket is empty."""
        if self.rate <= 0.0:
            return True
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class PeerLimits:
    """Rates (per second) and bursts of each peer's budgets; a rate of 0 is unlimited."""

    frame_rate: float = 0.0
    frame_burst: float = 100.0
    fault_rate: float = 10.0
    fault_burst: float = 20.0
    hello_rate: float = 2.0
    hello_burst: float = 5.0
    log_rate: float = 1.0
    log_burst: float = 5.0
    max_peers: int = 4096  # identities remembered; the least recently seen are forgotten

    def __post_init__(self) -> None:
        rates = (self.frame_rate, self.fault_rate, self.hello_rate, self.log_rate)
        if min(rates) < 0.0 or self.max_peers < 1:
            raise ValueError(f"peer limits must be non-negative: {self}")


class Peer:
    """The budgets of one connection, and how many of its frames were dropped."""

    __slots__ = ("dropped", "faults", "frames", "hellos", "logs", "muted_logs")

    def __init__(self, limits: PeerLimits, now: float) -> None:
        self.frames = TokenBucket(limits.frame_rate, limits.frame_burst, now)
        self.faults = TokenBucket(limits.fault_rate, limits.fault_burst, now)
        self.hellos = TokenBucket(limits.hello_rate, limits.hello_burst, now)
        self.logs = TokenBucket(limits.log_rate, limits.log_burst, now)
        self.dropped = 0
        self.muted_logs = 0

    def admit(self, now: float) -> bool:
        """Whether to handle a frame from this peer (it is within its frame rate)."""
        return self.frames.take(now)


class PeerTable:
    """Identity -> :class:`Peer`, at most ``limits.max_peers`` of them."""

    def __init__(self, limits: PeerLimits) -> None:
        self.limits = limits
        self._peers: OrderedDict[bytes, Peer] = OrderedDict()

    def get(self, ident: bytes, now: float) -> Peer:
        """The peer's budgets, created on first sight (forgetting the stalest beyond the cap)."""
        peer = self._peers.get(ident)
        if peer is None:
            peer = self._peers[ident] = Peer(self.limits, now)
            if len(self._peers) > self.limits.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(ident)
        return peer

    def __len__(self) -> int:
        return len(self._peers)
