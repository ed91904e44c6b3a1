"""Subscription pacing: stay inside Lighter's per-connection limits.

Lighter allows 200 client messages per rolling minute (subscribes, unsubscribes,
pings and pongs all count), 50 messages in flight (a subscribe is in flight until
its `subscribed/order_book` snapshot acknowledges it) and 500 subscriptions per
connection. The pacer queues what the tracker wants to send and hands out only
what fits now; `next_send_at` says when the rate budget frees up again.
"""

from __future__ import annotations

from collections import deque

from . import protocol

MAX_SUBSCRIPTIONS_PER_CONNECTION = 500
# Lighter's rolling minute, plus a margin: a send reaches the exchange a little
# after we count it, so a slot freed at exactly 60 s can still be inside its window.
RATE_WINDOW_MS = 62_000
# Below Lighter's 200/min and 50 in flight, leaving room for pings and pongs.
DEFAULT_MAX_PER_MINUTE = 180
DEFAULT_MAX_IN_FLIGHT = 40
# A subscribe unanswered this long is sent again (unsubscribe + subscribe).
ACK_TIMEOUT_MS = 30_000
# A refused subscription is retried after 2 s, 4 s, ... up to a minute.
RETRY_BASE_MS = 2_000
RETRY_CAP_MS = 60_000


class SubscriptionPacer:
    def __init__(
        self,
        max_per_minute: int = DEFAULT_MAX_PER_MINUTE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.max_per_minute = max_per_minute
        self.max_in_flight = max_in_flight
        self._queue: deque[tuple[int, bool]] = deque()  # (market_id, unsubscribe first)
        self._queued: set[int] = set()
        self._urgent: list[str] = []  # pongs and pings: sent first, still counted
        self.in_flight: dict[int, int] = {}  # market_id -> sent at (ms)
        self._sent_at: deque[int] = deque()  # send times within the rate window
        self.subscribed: set[int] = set()
        self.messages_sent = 0
        self._refusals: dict[int, int] = {}  # market_id -> refusals in a row
        self._retry_at: dict[int, int | None] = {}  # None: time set at the next drain

    # -- what the tracker wants ---------------------------------------------

    def subscribe(self, market_id: int) -> None:
        self._enqueue(market_id, resubscribe=False)

    def resubscribe(self, market_id: int) -> None:
        """Ask for a fresh snapshot: unsubscribe, then subscribe again."""
        self.subscribed.discard(market_id)
        self.in_flight.pop(market_id, None)
        self._enqueue(market_id, resubscribe=True)

    def send_now(self, message: str) -> None:
        self._urgent.append(message)

    def ack(self, market_id: int) -> bool:
        """A snapshot arrived for `market_id`. True when that freed an in-flight slot."""
        self.subscribed.add(market_id)
        self._refusals.pop(market_id, None)
        self._retry_at.pop(market_id, None)  # a book after a refusal: no retry needed
        return self.in_flight.pop(market_id, None) is not None

    def failed(self, market_id: int) -> None:
        """Lighter refused the subscription: try it again later (backing off), cleanly."""
        self.subscribed.discard(market_id)
        self.in_flight.pop(market_id, None)
        self._refusals[market_id] = self._refusals.get(market_id, 0) + 1
        self._retry_at[market_id] = None

    # -- what may go out now -----------------------------------------------------

    def drain(self, now_ms: int) -> list[str]:
        sent_at = self._sent_at
        while sent_at and sent_at[0] <= now_ms - RATE_WINDOW_MS:
            sent_at.popleft()
        for market_id, at in list(self.in_flight.items()):
            if at <= now_ms - ACK_TIMEOUT_MS:
                self.resubscribe(market_id)
        for market_id, at in list(self._retry_at.items()):
            if at is None:
                refusals = self._refusals.get(market_id, 1)
                delay = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(refusals - 1, 10))
                self._retry_at[market_id] = now_ms + delay
            elif at <= now_ms:
                del self._retry_at[market_id]
                self.resubscribe(market_id)
        out = self._urgent
        self._urgent = []
        for _ in out:
            sent_at.append(now_ms)
        while self._queue and len(self.in_flight) < self.max_in_flight:
            market_id, resubscribe = self._queue[0]
            cost = 2 if resubscribe else 1
            if len(sent_at) + cost > self.max_per_minute:
                break
            if len(self.subscribed) + len(self.in_flight) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
                break
            self._queue.popleft()
            self._queued.discard(market_id)
            if resubscribe:
                out.append(protocol.unsubscribe(market_id))
                sent_at.append(now_ms)
            out.append(protocol.subscribe(market_id))
            sent_at.append(now_ms)
            self.in_flight[market_id] = now_ms
        self.messages_sent += len(out)
        return out

    def next_send_at(self, now_ms: int) -> int | None:
        """When `drain` could next send something queued (None: nothing to wait for)."""
        if self._urgent:
            return now_ms
        deadlines = [at + ACK_TIMEOUT_MS for at in self.in_flight.values()]
        deadlines += [now_ms if at is None else at for at in self._retry_at.values()]
        # The queue head can go once the rate window has room for its cost, unless it
        # waits for an in-flight slot (an ack or a timeout above frees one) or the
        # connection is at its subscription cap (nothing frees that: no deadline).
        if (
            self._queue
            and len(self.in_flight) < self.max_in_flight
            and len(self.subscribed) + len(self.in_flight) < MAX_SUBSCRIPTIONS_PER_CONNECTION
        ):
            cost = 2 if self._queue[0][1] else 1
            live = [at for at in self._sent_at if at > now_ms - RATE_WINDOW_MS]
            excess = len(live) + cost - self.max_per_minute  # sends that must leave the window
            if excess <= 0:
                deadlines.append(now_ms)
            elif excess <= len(live):
                deadlines.append(live[excess - 1] + RATE_WINDOW_MS)
        return min(deadlines) if deadlines else None

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._retry_at)

    def _enqueue(self, market_id: int, resubscribe: bool) -> None:
        if market_id in self._queued:
            return
        self._queued.add(market_id)
        if resubscribe:
            # First in line: a market that was live (gap, ack timeout, refusal) must not
            # lose its slot to markets never subscribed, and its unsubscribe must go out
            # before any other subscribe takes the in-flight slot it was counted in.
            self._queue.appendleft((market_id, resubscribe))
        else:
            self._queue.append((market_id, resubscribe))
