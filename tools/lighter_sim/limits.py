"""Lighter's rate limits, counted per client IP as Lighter counts them.

Lighter's documented limits are per IP: N tracker shards behind one address share one
budget of 200 messages a minute and 50 in flight, and one allowance of 255 open and 255
new connections a minute. Only the 500 subscriptions are per connection. With
limits_per="connection" the message and in-flight budgets are per socket instead (the
simulator's old behaviour), while the connection limits stay per IP.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from .config import SimConfig

if TYPE_CHECKING:
    from .connection import Connection


@dataclass
class Window:
    """Event times in a rolling window (loop time, seconds)."""
    times: deque = field(default_factory=deque)

    def count(self, now: float, window: float) -> int:
        q = self.times
        while q and q[0] <= now - window:
            q.popleft()
        return len(q)

    def take(self, now: float, limit: int, window: float) -> bool:
        """Record one event if fewer than `limit` are in the window; False otherwise."""
        if self.count(now, window) >= limit:
            return False
        self.times.append(now)
        return True


@dataclass(eq=False)
class IpUsage:
    ip: str
    conns: set = field(default_factory=set)  # open, admitted connections from this IP
    messages: Window = field(default_factory=Window)  # client messages accepted
    attempts: Window = field(default_factory=Window)  # connection attempts, refused ones too


class Limits:
    def __init__(self, cfg: SimConfig):
        self.cfg = cfg
        self.per_ip = cfg.limits_per == "ip"
        self.ips: dict[str, IpUsage] = {}

    def usage(self, ip: str) -> IpUsage:
        u = self.ips.get(ip)
        if u is None:
            u = self.ips[ip] = IpUsage(ip)
        return u

    # ---- connections ------------------------------------------------------------------
    def admit(self, conn: "Connection", now: float) -> Optional[str]:
        """Counts a connection attempt from conn.remote. None if it may stay open, else
        the close reason."""
        refused = self.attempt(conn.remote, now)
        if refused is None:
            self.usage(conn.remote).conns.add(conn)
        return refused

    def attempt(self, ip: str, now: float) -> Optional[str]:
        """Counts a connection attempt from `ip`: None if within the limits, else why not.
        Refused attempts count as new connections too: a client that hammers a full
        server keeps its own allowance used up, as a rate limiter in front of the
        exchange would."""
        cfg = self.cfg
        u = self.usage(ip)
        u.attempts.count(now, cfg.conn_window)
        u.attempts.times.append(now)
        if cfg.max_connections and len(u.conns) >= cfg.max_connections:
            return "too many connections"
        if self.too_many_attempts(u, now):
            return "too many new connections"
        return None

    def too_many_attempts(self, u: IpUsage, now: float) -> bool:
        """Over the new-connection allowances, counting the attempt just appended."""
        cfg = self.cfg
        if len(u.attempts.times) > cfg.max_new_connections:
            return True
        per_second = cfg.max_new_connections_per_second
        if per_second:
            last_second = sum(1 for t in reversed(u.attempts.times) if t > now - 1.0)
            return last_second > per_second
        return False

    def release(self, conn: "Connection") -> None:
        u = self.ips.get(conn.remote)
        if u is not None:
            u.conns.discard(conn)

    # ---- messages ---------------------------------------------------------------------
    def take_message(self, conn: "Connection", now: float) -> bool:
        """True if this client message may be acted upon (and counts it); False = 30009.
        A refused message is not counted."""
        cfg = self.cfg
        u = self.usage(conn.remote)
        if self.per_ip:
            return u.messages.take(now, cfg.msg_limit, cfg.msg_window)
        if not conn.messages.take(now, cfg.msg_limit, cfg.msg_window):
            return False
        u.messages.times.append(now)  # reported per IP, not enforced there in this mode
        u.messages.count(now, cfg.msg_window)
        return True

    def in_flight(self, conn: "Connection") -> int:
        """Subscribes awaiting their snapshot in conn's budget (its IP's, or its own)."""
        if not self.per_ip:
            return len(conn.pending)
        u = self.ips.get(conn.remote)
        return sum(len(c.pending) for c in u.conns) if u else len(conn.pending)

    # ---- reporting --------------------------------------------------------------------
    def settings(self) -> dict:
        c = self.cfg
        return {"per": c.limits_per, "messages": c.msg_limit, "message_window_s": c.msg_window,
                "in_flight": c.max_inflight, "subscriptions_per_connection": c.max_subs,
                "connections": c.max_connections, "new_connections": c.max_new_connections,
                "connection_window_s": c.conn_window}

    def report(self, now: float) -> dict[str, dict]:
        out = {}
        for ip, u in sorted(self.ips.items()):
            out[ip] = {"messages_in_window": u.messages.count(now, self.cfg.msg_window),
                       "in_flight": sum(len(c.pending) for c in u.conns),
                       "open_connections": len(u.conns),
                       "new_connections_in_window": u.attempts.count(now, self.cfg.conn_window)}
        return out
