"""Subscription pacing: stay inside the exchange's limits, which are per IP.

(Written for Lighter's, the tightest; Paradex gets its own budget, tracker/exchange.py.)

Lighter allows, per IP, 200 client messages per rolling minute (subscribes,
unsubscribes, pings and pongs all count) and 50 messages in flight (a subscribe is
in flight until its `subscribed/order_book` snapshot acknowledges it); and 500
subscriptions per connection. Every shard of a deployment shares the IP, so each
shard's pacer gets a share of one budget (`Budget.share`): the shards together
never exceed it, whatever they do at the same moment (a reconnect storm is exactly
when they all want their share).

The pacer queues what the tracker wants to send and hands out only what fits now;
`next_send_at` says when the rate budget frees up again. A few messages a minute
of each share are kept for pings and pongs, so keepalive is never starved by a
long resubscription. An unsubscribe is only ever sent for a market the exchange
may hold a subscription for (acknowledged, or sent and never answered); a refused
subscribe is retried as a plain subscribe.
"""

from __future__ import annotations

import heapq
import json
from collections import deque
from dataclasses import dataclass

from . import protocol

MAX_SUBSCRIPTIONS_PER_CONNECTION = 500
# Lighter's rolling minute, plus a margin: a send reaches the exchange a little
# after we count it, so a slot freed at exactly 60 s can still be inside its window.
RATE_WINDOW_MS = 62_000
# Lighter's per-IP limits and the deployment's budget, kept 10% / 20% below them
# (other clients on the same egress IP, clock skew between our count and theirs).
LIGHTER_MESSAGES_PER_MINUTE = 200
LIGHTER_IN_FLIGHT = 50
DEFAULT_MAX_PER_MINUTE = 180
DEFAULT_MAX_IN_FLIGHT = 40
# Of each shard's per-minute share, this many are kept for pings and pongs (one
# ping per PING_EVERY_MS = 45 s is < 2 a minute; pongs answer the server's pings).
RESERVED_FOR_KEEPALIVE = 4
# A subscribe unanswered this long is sent again (unsubscribe + subscribe).
ACK_TIMEOUT_MS = 30_000
# A refused subscription is retried after 2 s, 4 s, ... up to a minute.
RETRY_BASE_MS = 2_000
RETRY_CAP_MS = 60_000


@dataclass(frozen=True)
class Budget:
    """One shard's share of the deployment's per-IP message budget."""

    per_minute: int = DEFAULT_MAX_PER_MINUTE
    in_flight: int = DEFAULT_MAX_IN_FLIGHT

    @classmethod
    def share(cls, shards: int, per_minute: int = DEFAULT_MAX_PER_MINUTE,
              in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> Budget:
        """A static split: each of `shards` gets 1/shards of the budget, rounded
        down, so the sum never exceeds it. (Why static and not a coordinator that
        lends idle shards' slots: the case that matters, every connection dropping
        at once, has every shard wanting its whole share at the same moment, where
        lending gains nothing; a coordinator would add a round trip to every send
        and a single point whose failure stops every shard's subscriptions.) More
        shards than `max_shards` cannot be split so (the config refuses them)."""
        most = cls.max_shards(per_minute, in_flight)
        if shards > most:
            raise ValueError(f"a budget of {per_minute} messages a minute and {in_flight} in flight splits "
                             f"among at most {most} shards, not {shards}")
        return cls(per_minute=per_minute // shards, in_flight=in_flight // shards)

    @staticmethod
    def max_shards(per_minute: int, in_flight: int) -> int:
        """The most shards a budget splits among: each needs RESERVED_FOR_KEEPALIVE + 1
        messages a minute (its pings and pongs, and at least one subscribe) and one
        subscription in flight. Lighter's 180 and 40: 36."""
        return min(per_minute // (RESERVED_FOR_KEEPALIVE + 1), in_flight)

    @property
    def subscribes_per_minute(self) -> int:
        return self.per_minute - RESERVED_FOR_KEEPALIVE


class SendHistory:
    """What a shard counts against its share of the rate window: its own client
    messages (every connection's, every instance's: saved in storage) and the other
    shards' it must count too (`others`: the sends of the shards that ran before a
    start, handed over by tracker/control.py). Both sorted, trimmed to the window.

    Why the others count: the shards of a new split must stay inside the deployment's
    budget together with what the old split sent in the last rate window. Each new
    shard sends only while (the others' sends + its own) in the window stay within
    its share, so over any window the old split's sends H and the new shards' S_i
    add up to at most H + sum(share_i - H) <= sum(share_i) <= the budget (control.py
    shows the arithmetic)."""

    def __init__(self, own: list[int] | None = None, others: list[int] | None = None) -> None:
        self.own: deque[int] = deque(sorted(own or ()))
        self.others: deque[int] = deque(sorted(others or ()))

    def trim(self, now_ms: int) -> None:
        for sends in (self.own, self.others):
            while sends and sends[0] <= now_ms - RATE_WINDOW_MS:
                sends.popleft()

    def __len__(self) -> int:
        return len(self.own) + len(self.others)

    def add(self, now_ms: int) -> None:
        self.own.append(now_ms)

    def live(self, now_ms: int) -> list[int]:
        """Every counted send still in the rate window, oldest first."""
        return list(heapq.merge((at for at in self.own if at > now_ms - RATE_WINDOW_MS),
                                (at for at in self.others if at > now_ms - RATE_WINDOW_MS)))

    def recent_own(self, now_ms: int) -> list[int]:
        return [at for at in self.own if at > now_ms - RATE_WINDOW_MS]

    def count_others(self, sends: list[int], now_ms: int) -> None:
        """Count the other shards' `sends` too (a start's handover)."""
        recent = [at for at in sends if at > now_ms - RATE_WINDOW_MS]
        self.others = deque(heapq.merge(self.others, sorted(recent)))

    def to_json(self, now_ms: int) -> str:
        self.trim(now_ms)
        return json.dumps({"own": list(self.own), "others": list(self.others)})

    @classmethod
    def from_json(cls, text: str | None) -> SendHistory | None:
        if not text:
            return None
        raw = json.loads(text)
        return cls([int(at) for at in raw.get("own", ())], [int(at) for at in raw.get("others", ())])


class SubscriptionPacer:
    def __init__(
        self,
        max_per_minute: int = DEFAULT_MAX_PER_MINUTE,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        sent_at: SendHistory | None = None,
        wire=None,
        max_subscriptions: int = MAX_SUBSCRIPTIONS_PER_CONNECTION,
    ) -> None:
        # The exchange's subscribe/unsubscribe messages (tracker/exchange.py Wire):
        # Lighter's by default.
        self.wire = wire if wire is not None else protocol.LighterWire()
        self.max_subscriptions = max_subscriptions
        self.max_per_minute = max_per_minute
        self.max_in_flight = max_in_flight
        # Subscribes and unsubscribes may use the share less the keepalive reserve.
        self.max_subscribes_per_minute = max(1, max_per_minute - RESERVED_FOR_KEEPALIVE)
        self._queue: deque[tuple[int, bool]] = deque()  # (market_id, unsubscribe first)
        self._queued: set[int] = set()
        self._urgent: list[str] = []  # pongs and pings: sent first, still counted
        self.in_flight: dict[int, int] = {}  # market_id -> sent at (ms)
        # Send times within the rate window. Lighter counts per IP, not per connection:
        # the caller passes the same history to every connection of the shard, so a
        # reconnect does not start from an empty minute (a drop storm would otherwise
        # resend a whole minute's budget at once: 30009).
        self._sent_at: SendHistory = sent_at if sent_at is not None else SendHistory()
        self.subscribed: set[int] = set()
        self.messages_sent = 0
        self._refusals: dict[int, int] = {}  # market_id -> refusals in a row
        self._retry_at: dict[int, int | None] = {}  # None: time set at the next drain
        self._unsubscribes: deque[int] = deque()  # markets to drop (delisted)
        self._held_on_retry: set[int] = set()  # refused with 30003: unsubscribe on retry
        self._drop_on_answer: set[int] = set()  # removed while in flight: drop once answered

    def awaits_answer(self, market_id: int) -> bool:
        """A market no longer tracked whose subscribe is still unanswered."""
        return market_id in self._drop_on_answer

    # -- what the tracker wants ---------------------------------------------

    def subscribe(self, market_id: int) -> None:
        self._enqueue(market_id, resubscribe=False)

    def resubscribe(self, market_id: int) -> None:
        """Ask for a fresh snapshot: unsubscribe (only if the exchange may hold the
        subscription: acknowledged, or sent and unanswered), then subscribe again."""
        held = market_id in self.subscribed or market_id in self.in_flight
        self.subscribed.discard(market_id)
        self.in_flight.pop(market_id, None)
        self._enqueue(market_id, resubscribe=held)

    def unsubscribe(self, market_id: int) -> None:
        """Stop tracking a market (delisted): forget it, and send an unsubscribe only
        if the exchange may hold a subscription for it."""
        if market_id in self.in_flight:
            # Its subscribe is unanswered: it may yet be accepted or refused. Drop it
            # when the answer comes (an unsubscribe now could meet "not subscribed").
            self._drop_on_answer.add(market_id)
            held = False
        else:
            held = market_id in self.subscribed
        self.subscribed.discard(market_id)
        self._refusals.pop(market_id, None)
        self._retry_at.pop(market_id, None)
        if market_id in self._queued:
            self._queued.discard(market_id)
            self._queue = deque(item for item in self._queue if item[0] != market_id)
        if held and market_id not in self._unsubscribes:
            self._unsubscribes.append(market_id)

    def send_now(self, message: str) -> None:
        """A ping or a pong: sent before anything queued, as soon as the share has room
        (subscribes leave RESERVED_FOR_KEEPALIVE of it free). Queued once: a second pong
        while one waits answers nothing more."""
        if message not in self._urgent:
            self._urgent.append(message)

    def ack(self, market_id: int) -> bool:
        """A snapshot arrived for `market_id`. True when that freed an in-flight slot."""
        if market_id in self._drop_on_answer:  # removed while its subscribe was in flight
            self._drop_on_answer.discard(market_id)
            self.in_flight.pop(market_id, None)
            if market_id not in self._unsubscribes:
                self._unsubscribes.append(market_id)
            return True
        self.subscribed.add(market_id)
        self._refusals.pop(market_id, None)
        self._retry_at.pop(market_id, None)  # a book after a refusal: no retry needed
        return self.in_flight.pop(market_id, None) is not None

    def failed(self, market_id: int, held: bool = False) -> None:
        """Lighter refused the subscription: try it again later (backing off). A
        refused subscribe holds nothing, so the retry is a plain subscribe; `held`
        (30003 already subscribed) makes it an unsubscribe + subscribe."""
        if market_id in self._drop_on_answer:  # removed meanwhile: refused is just as good
            self._drop_on_answer.discard(market_id)
            self.in_flight.pop(market_id, None)
            if held and market_id not in self._unsubscribes:
                self._unsubscribes.append(market_id)
            return
        self.subscribed.discard(market_id)
        self.in_flight.pop(market_id, None)
        self._refusals[market_id] = self._refusals.get(market_id, 0) + 1
        self._retry_at[market_id] = None
        if held:
            self._held_on_retry.add(market_id)

    # -- what may go out now -----------------------------------------------------

    def drain(self, now_ms: int) -> list[str]:
        sent_at = self._sent_at
        sent_at.trim(now_ms)
        for market_id, at in list(self.in_flight.items()):
            if at <= now_ms - ACK_TIMEOUT_MS:
                if market_id in self._drop_on_answer:  # removed, and never answered: forget it
                    self._drop_on_answer.discard(market_id)
                    del self.in_flight[market_id]
                else:
                    self.resubscribe(market_id)
        for market_id, at in list(self._retry_at.items()):
            if at is None:
                refusals = self._refusals.get(market_id, 1)
                delay = min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** min(refusals - 1, 10))
                self._retry_at[market_id] = now_ms + delay
            elif at <= now_ms:
                del self._retry_at[market_id]
                if market_id in self._held_on_retry:
                    self._held_on_retry.discard(market_id)
                    self.subscribed.add(market_id)  # so that resubscribe unsubscribes first
                self.resubscribe(market_id)
        # Pings and pongs count like everything else, and the whole share holds over
        # every rate window with them: they may use the reserve that subscribes leave.
        out = []
        while self._urgent and len(sent_at) < self.max_per_minute:
            out.append(self._urgent.pop(0))
            sent_at.add(now_ms)
        limit = self.max_subscribes_per_minute
        while self._unsubscribes and len(sent_at) + 1 <= limit:
            out.append(self.wire.unsubscribe(self._unsubscribes.popleft()))
            sent_at.add(now_ms)
        while self._queue and len(self.in_flight) < self.max_in_flight:
            market_id, resubscribe = self._queue[0]
            cost = 2 if resubscribe else 1
            if len(sent_at) + cost > limit:
                break
            if len(self.subscribed) + len(self.in_flight) >= self.max_subscriptions:
                break
            self._queue.popleft()
            self._queued.discard(market_id)
            if resubscribe:
                out.append(self.wire.unsubscribe(market_id))
                sent_at.add(now_ms)
            out.append(self.wire.subscribe(market_id))
            sent_at.add(now_ms)
            self.in_flight[market_id] = now_ms
        self.messages_sent += len(out)
        return out

    def next_send_at(self, now_ms: int) -> int | None:
        """When `drain` could next send something queued (None: nothing to wait for)."""
        deadlines = [at + ACK_TIMEOUT_MS for at in self.in_flight.values()]
        live = self._sent_at.live(now_ms)
        if self._urgent:
            excess = len(live) + 1 - self.max_per_minute
            deadlines.append(now_ms if excess <= 0 else live[excess - 1] + RATE_WINDOW_MS)
        if self._unsubscribes:
            excess = len(live) + 1 - self.max_subscribes_per_minute
            deadlines.append(now_ms if excess <= 0 else live[min(excess, len(live)) - 1] + RATE_WINDOW_MS)
        deadlines += [now_ms if at is None else at for at in self._retry_at.values()]
        # The queue head can go once the rate window has room for its cost, unless it
        # waits for an in-flight slot (an ack or a timeout above frees one) or the
        # connection is at its subscription cap (nothing frees that: no deadline).
        if (
            self._queue
            and len(self.in_flight) < self.max_in_flight
            and len(self.subscribed) + len(self.in_flight) < self.max_subscriptions
        ):
            cost = 2 if self._queue[0][1] else 1
            excess = len(live) + cost - self.max_subscribes_per_minute  # sends that must leave the window
            if excess <= 0:
                deadlines.append(now_ms)
            elif excess <= len(live):
                deadlines.append(live[excess - 1] + RATE_WINDOW_MS)
        return min(deadlines) if deadlines else None

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._retry_at)

    @property
    def waiting(self) -> int:
        """Markets not live yet: queued, backing off after a refusal, or in flight."""
        return len(self._queue) + len(self._retry_at) + len(self.in_flight)

    def eta_ms(self) -> int:
        """Roughly how long until every waiting market is live: the rate budget bounds it."""
        return int(self.pending * 60_000 / self.max_subscribes_per_minute)

    def _enqueue(self, market_id: int, resubscribe: bool) -> None:
        if market_id in self._queued:
            return
        self._queued.add(market_id)
        if resubscribe:
            # First in line: a market that was live (gap, ack timeout, refusal) must not
            # lose its slot to markets never subscribed, and its unsubscribe must go out
            # before any other subscribe takes the in-flight slot it was counted in. Behind
            # the resubscribes already waiting, though: last in, first out let later gaps
            # hold a timed-out subscribe back for minutes on a small share (seed 13894:
            # 16 shards, 7 subscribes a minute each).
            ahead = next((i for i, (_, again) in enumerate(self._queue) if not again), len(self._queue))
            self._queue.insert(ahead, (market_id, resubscribe))
        else:
            self._queue.append((market_id, resubscribe))
