"""One client WebSocket: its subscriptions, outbound queue, limits and record."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from aiohttp import web

from .limits import Window
from .market import Book, MarketSim

# A record entry, kept as a tuple (cheap); turned into a dict by the /_sim/record view.
# Lighter: (market_id, type, timestamp_ms, nonce, begin_nonce, bid, bid size, ask, ask size,
#  valid) with prices/sizes as integer ticks/lots (None for an empty side); Paradex
#  (paradex/engine.py) has its own fields in front. The writer appends (sent_ms, frame or
#  None) when the frame really goes out: the text or bytes, kept only while
#  `record_frames` is on.
Rec = tuple


class ProtocolFrame:
    """A WebSocket control frame (protocol ping or pong) queued like any other frame,
    so that a stall holds it too."""
    __slots__ = ("kind", "data")

    def __init__(self, kind: str, data: bytes = b""):
        self.kind, self.data = kind, data

    async def send(self, ws: web.WebSocketResponse) -> None:
        await (ws.ping(self.data) if self.kind == "ping" else ws.pong(self.data))


@dataclass(eq=False)
class Sub:
    """One market subscription on one connection, from its snapshot on."""
    market: MarketSim
    valid: bool = True  # False from a gap until the next snapshot on this connection
    view: Optional[Book] = None  # the client's book when it differs from the market's
    drop_next: bool = False  # gap fault armed: swallow the next update
    channel: str = ""  # Paradex: the channel subscribed (order_book.{m}.deltas or .interactive_deltas)


@dataclass(eq=False)
class Connection:
    conn_id: int
    ws: web.WebSocketResponse
    transport: Any
    remote: str
    readonly: bool
    max_queue: int
    record_limit: int
    session_id: str = ""
    opened_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    subs: dict[int, Sub] = field(default_factory=dict)  # market id -> active subscription
    pending: deque = field(default_factory=deque)  # market ids waiting for their snapshot
    outq: deque = field(default_factory=deque)  # (text, Rec | None)
    messages: Window = field(default_factory=Window)  # accepted messages (limits_per=connection)
    breaches: deque = field(default_factory=deque)  # 30009 answers in the window
    stalled_until: float = 0.0  # loop time; nothing is written before it
    ping_sent_at: Optional[float] = None
    next_ping_at: float = 0.0
    sent: int = 0
    received: int = 0
    closed: bool = False
    close_code: Optional[int] = None
    close_reason: str = ""
    closed_ms: Optional[int] = None
    record_frames: bool = False
    # error code -> [count, first sent (ms), last sent (ms)]: which connection got
    # which refusal, and when (the /_sim/state view; a benchmark attributes them)
    errors: dict = field(default_factory=dict)
    asked: set = field(default_factory=set)  # market ids of every subscribe received, refused or not

    def __post_init__(self) -> None:
        self.wake = asyncio.Event()
        self.record: deque = deque(maxlen=self.record_limit)
        self.writer_task: Optional[asyncio.Task] = None
        self.pump_task: Optional[asyncio.Task] = None
        self.overflowed = False
        self.writing = False
        self.peer_closed = False  # the client sent its close frame
        self.last_write = 0.0  # loop time of the last frame written (Paradex heartbeats)

    def enqueue(self, text: Any, rec: Optional[Rec] = None) -> None:
        """Queue a frame: a str goes out as a text frame, bytes as a binary frame, a
        ProtocolFrame as a WebSocket ping/pong."""
        if self.closed or self.peer_closed:
            return
        if len(self.outq) >= self.max_queue:
            self.overflowed = True  # the engine closes it 1011 (slow consumer)
            return
        self.outq.append((text, rec))
        if not self.wake.is_set():
            self.wake.set()

    def breach(self, now: float, window: float) -> int:
        q = self.breaches
        while q and q[0] <= now - window:
            q.popleft()
        q.append(now)
        return len(q)

    async def run_writer(self) -> None:
        """The only place that writes to the socket: keeps frame order, honours stalls,
        and records each book frame when it really goes out."""
        loop = asyncio.get_running_loop()
        ws = self.ws
        q = self.outq
        record = self.record
        try:
            while not self.closed and not self.peer_closed:
                if not q:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                now = loop.time()
                if self.stalled_until > now:
                    await asyncio.sleep(min(0.05, self.stalled_until - now))
                    continue
                text, rec = q.popleft()
                self.writing = True
                kind = type(text)
                if kind is str:
                    await ws.send_str(text)
                elif kind is bytes:
                    await ws.send_bytes(text)
                else:  # a protocol ping/pong: not a message, not counted
                    await text.send(ws)
                    self.writing = False
                    continue
                self.writing = False
                self.last_write = loop.time()
                self.sent += 1
                if rec is not None:
                    record.append(rec + (int(time.time() * 1000), text if self.record_frames else None))
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    def flushed(self) -> bool:
        return not self.outq and not self.writing
