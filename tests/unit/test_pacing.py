"""SubscriptionPacer over a simulated clock against a toy exchange that checks Lighter's limits."""

from __future__ import annotations

import copy
import heapq
import json
import random

import pytest

from tracker import protocol
from tracker.pacing import (
    ACK_TIMEOUT_MS,
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    RATE_WINDOW_MS,
    RESERVED_FOR_KEEPALIVE,
    RETRY_BASE_MS,
    RETRY_CAP_MS,
    SubscriptionPacer,
)

T0 = 1_000_000


class ToyExchange:
    """Lighter's view of one connection: what is subscribed, what is still in flight,
    and every message with its time. Raises on anything Lighter would refuse."""

    def __init__(self, rng: random.Random, never_ack=0.05, refuse=0.05):
        self.rng = rng
        self.never_ack, self.refuse = never_ack, refuse
        self.subscribed: set[int] = set()
        self.in_flight: dict[int, int] = {}  # market -> subscribe id
        self.sent: list[tuple[int, str]] = []  # (time, message)
        self.events: list[tuple[int, int, str, int, int]] = []  # heap: (time, seq, kind, market, sub id)
        self._seq = 0

    def receive(self, now: int, messages: list[str]) -> None:
        for text in messages:
            self.sent.append((now, text))
            msg = json.loads(text)
            if msg["type"] == "pong":
                continue
            market = int(msg["channel"].split("/")[1])
            assert msg["channel"] == f"order_book/{market}"
            if msg["type"] == "unsubscribe":
                self.subscribed.discard(market)
                self.in_flight.pop(market, None)
                continue
            assert msg["type"] == "subscribe"
            # Lighter would answer 30003 "already subscribed".
            assert market not in self.subscribed and market not in self.in_flight, f"double subscribe {market}"
            self._seq += 1
            self.in_flight[market] = self._seq
            fate = self.rng.random()
            if fate < self.never_ack:
                continue  # lost: only the ack timeout can recover it
            kind = "refuse" if fate < self.never_ack + self.refuse else "ack"
            heapq.heappush(self.events, (now + self.rng.randint(20, 3_000), self._seq, kind, market, self._seq))

    def due(self, now: int):
        while self.events and self.events[0][0] <= now:
            _, _, kind, market, sub_id = heapq.heappop(self.events)
            if self.in_flight.get(market) != sub_id:
                continue  # unsubscribed meanwhile
            del self.in_flight[market]
            if kind == "ack":
                self.subscribed.add(market)
            yield kind, market

    def next_event_at(self) -> int | None:
        return self.events[0][0] if self.events else None

    def max_in_any_rolling_minute(self, only=lambda text: True) -> int:
        times = [t for t, text in self.sent if only(text)]
        return max((sum(1 for u in times if t - RATE_WINDOW_MS < u <= t) for t in times), default=0)


def run(pacer: SubscriptionPacer, markets, *, seed, minutes, gap_every_ms=None, ping_every_ms=None,
        quiet_tail_ms=10 * 60_000, probe_every=7):
    """Drive pacer + exchange on a simulated clock; check the limits after every drain."""
    rng = random.Random(seed)
    ex = ToyExchange(rng)
    for m in markets:
        pacer.subscribe(m)
    now = T0
    end = T0 + minutes * 60_000
    next_gap = T0 + gap_every_ms if gap_every_ms else None
    next_ping = T0 + ping_every_ms if ping_every_ms else None
    steps = 0
    while now <= end:
        steps += 1
        for kind, market in ex.due(now):
            if kind == "ack":
                pacer.ack(market)
            else:
                pacer.failed(market)
        if next_gap is not None and now >= next_gap:
            if ex.subscribed and now < end - quiet_tail_ms:
                pacer.resubscribe(rng.choice(sorted(ex.subscribed)))
            next_gap += gap_every_ms
        if next_ping is not None and now >= next_ping:
            pacer.send_now(protocol.PONG)
            next_ping += ping_every_ms
        out = pacer.drain(now)
        ex.receive(now, out)
        # Lighter's limits, as the exchange sees them.
        assert len(ex.in_flight) <= pacer.max_in_flight
        assert len(ex.subscribed) + len(ex.in_flight) <= MAX_SUBSCRIPTIONS_PER_CONNECTION
        window = [t for t, text in ex.sent if t > now - RATE_WINDOW_MS]
        urgent = sum(1 for t, text in ex.sent if t > now - RATE_WINDOW_MS and text == protocol.PONG)
        assert len(window) - urgent <= pacer.max_per_minute
        if any(text != protocol.PONG for text in out):  # subscriptions only go out within budget
            assert len(window) <= pacer.max_per_minute
        # next_send_at: never "now" again right after a drain (no busy loop) ...
        wake = pacer.next_send_at(now)
        assert wake is None or wake > now
        candidates = [t for t in (wake, ex.next_event_at(), next_gap, next_ping) if t is not None]
        nxt = min(candidates) if candidates else end + 1
        # ... and never late: nothing could have been sent before it.
        if steps % probe_every == 0 and nxt > now + 1:
            probe_at = rng.randint(now + 1, nxt - 1)
            assert copy.deepcopy(pacer).drain(probe_at) == [], f"next_send_at {wake} but drain({probe_at}) sends"
        now = max(nxt, now + 1)
    return ex


def test_six_hundred_markets_stay_inside_every_limit():
    pacer = SubscriptionPacer()
    ex = run(pacer, range(600), seed=1, minutes=25, gap_every_ms=2_000)
    assert ex.max_in_any_rolling_minute() <= pacer.max_per_minute
    # Every connection slot ends up used, by exactly one subscription each.
    assert len(ex.subscribed) == MAX_SUBSCRIPTIONS_PER_CONNECTION
    assert pacer.subscribed == ex.subscribed and not pacer.in_flight
    assert pacer.messages_sent == len(ex.sent)


@pytest.mark.parametrize("seed", [2, 3])
def test_limits_hold_with_pongs_mixed_in(seed):
    pacer = SubscriptionPacer(max_per_minute=60, max_in_flight=10)
    ex = run(pacer, range(150), seed=seed, minutes=20, gap_every_ms=5_000, ping_every_ms=20_000)
    subscribes = lambda text: text != protocol.PONG  # noqa: E731
    assert ex.max_in_any_rolling_minute(subscribes) <= pacer.max_per_minute
    assert ex.subscribed == set(range(150))
    assert any(text == protocol.PONG for _, text in ex.sent)


def test_initial_burst_is_paced_by_rate_and_in_flight():
    pacer = SubscriptionPacer(max_per_minute=180, max_in_flight=40)
    for m in range(600):
        pacer.subscribe(m)
    out = pacer.drain(T0)
    assert out == [protocol.subscribe(m) for m in range(40)]  # in-flight bound first
    assert pacer.next_send_at(T0) == T0 + ACK_TIMEOUT_MS  # nothing to do until acks (or their timeout)
    for m in range(40):
        assert pacer.ack(m) is True
    assert pacer.ack(0) is False  # a second snapshot frees nothing
    assert pacer.next_send_at(T0 + 1) == T0 + 1
    sent = 40
    now = T0 + 1
    limit = 180 - RESERVED_FOR_KEEPALIVE  # a few of the share are kept for pings/pongs
    while sent < limit:
        out = pacer.drain(now)
        for text in out:
            pacer.ack(int(json.loads(text)["channel"].split("/")[1]))
        sent += len(out)
        now += 1
    assert sent == limit
    assert pacer.drain(now) == []
    assert pacer.next_send_at(now) == T0 + RATE_WINDOW_MS  # the first 40 leave the window
    assert pacer.drain(T0 + RATE_WINDOW_MS - 1) == []
    assert len(pacer.drain(T0 + RATE_WINDOW_MS)) == 40


def test_next_send_at_with_a_single_slot_left_for_a_plain_subscribe():
    pacer = SubscriptionPacer(max_per_minute=3 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    for m in range(3):
        pacer.subscribe(m)
    assert len(pacer.drain(T0)) == 3
    for m in range(3):
        pacer.ack(m)
    pacer.subscribe(3)
    assert pacer.next_send_at(T0 + 10) == T0 + RATE_WINDOW_MS
    pacer = SubscriptionPacer(max_per_minute=3 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    pacer.subscribe(0)
    pacer.drain(T0)
    pacer.subscribe(1)
    pacer.drain(T0 + 5_000)
    pacer.ack(0)
    pacer.ack(1)
    pacer.subscribe(2)  # costs one message; two of three used: it can go now
    assert pacer.next_send_at(T0 + 6_000) == T0 + 6_000
    assert pacer.drain(T0 + 6_000) == [protocol.subscribe(2)]


def test_next_send_at_for_a_resubscribe_waits_for_two_free_messages():
    pacer = SubscriptionPacer(max_per_minute=3 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    for m in range(3):
        pacer.subscribe(m)
    pacer.drain(T0)
    for m in range(3):
        pacer.ack(m)
    pacer.resubscribe(0)  # unsubscribe + subscribe: two messages
    # All three went out at T0: all three leave the window at T0 + 60 s.
    assert pacer.next_send_at(T0 + 2_000) == T0 + RATE_WINDOW_MS
    pacer = SubscriptionPacer(max_per_minute=3 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    pacer.subscribe(0)
    pacer.drain(T0)
    pacer.subscribe(1)
    pacer.drain(T0 + 1_000)
    pacer.subscribe(2)
    pacer.drain(T0 + 2_000)
    for m in range(3):
        pacer.ack(m)
    pacer.resubscribe(1)
    assert pacer.next_send_at(T0 + 3_000) == T0 + 1_000 + RATE_WINDOW_MS  # two must leave
    assert pacer.drain(T0 + RATE_WINDOW_MS) == []
    assert pacer.drain(T0 + 1_000 + RATE_WINDOW_MS) == [protocol.unsubscribe(1), protocol.subscribe(1)]


def test_five_hundred_subscription_cap_does_not_spin_and_keeps_gapped_markets():
    pacer = SubscriptionPacer(max_per_minute=10_000, max_in_flight=10_000)
    for m in range(501):
        pacer.subscribe(m)
    out = pacer.drain(T0)
    assert out == [protocol.subscribe(m) for m in range(500)]
    for m in range(500):
        pacer.ack(m)
    assert pacer.drain(T0 + 1) == []
    assert pacer.next_send_at(T0 + 1) is None  # capped: nothing to wake up for
    assert pacer.pending == 1
    # A gap on a live market: its resubscription must not lose the slot to market 500.
    pacer.resubscribe(7)
    assert pacer.drain(T0 + 2) == [protocol.unsubscribe(7), protocol.subscribe(7)]
    pacer.ack(7)
    assert len(pacer.subscribed) == 500 and 500 not in pacer.subscribed


def test_resubscribes_wait_in_turn_ahead_of_new_subscribes():
    """Resubscribes go before markets never subscribed, but in the order they came: the
    oldest first (seed 13894: later nonce gaps, put first in line, held a timed-out
    subscribe back past a rate window on a share of 7 subscribes a minute)."""
    pacer = SubscriptionPacer(max_per_minute=2 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    for m in range(2):
        pacer.subscribe(m)
    assert len(pacer.drain(T0)) == 2
    pacer.ack(0)
    pacer.ack(1)
    pacer.subscribe(9)  # never subscribed: behind every resubscribe
    pacer.resubscribe(0)
    pacer.resubscribe(1)
    assert pacer.drain(T0 + RATE_WINDOW_MS) == [protocol.unsubscribe(0), protocol.subscribe(0)]
    pacer.ack(0)
    assert pacer.drain(T0 + 2 * RATE_WINDOW_MS) == [protocol.unsubscribe(1), protocol.subscribe(1)]
    pacer.ack(1)
    assert pacer.drain(T0 + 3 * RATE_WINDOW_MS) == [protocol.subscribe(9)]


def test_ack_timeout_resubscribes():
    pacer = SubscriptionPacer()
    pacer.subscribe(5)
    assert pacer.drain(T0) == [protocol.subscribe(5)]
    assert pacer.next_send_at(T0) == T0 + ACK_TIMEOUT_MS
    assert pacer.drain(T0 + ACK_TIMEOUT_MS - 1) == []
    assert pacer.drain(T0 + ACK_TIMEOUT_MS) == [protocol.unsubscribe(5), protocol.subscribe(5)]
    assert pacer.in_flight == {5: T0 + ACK_TIMEOUT_MS}
    assert pacer.ack(5) is True and pacer.next_send_at(T0 + ACK_TIMEOUT_MS) is None


def test_refusal_backoff_doubles_up_to_the_cap():
    pacer = SubscriptionPacer()
    pacer.subscribe(9)
    now = T0
    pacer.drain(now)
    delays = []
    for _ in range(8):
        pacer.failed(9)
        assert pacer.next_send_at(now) == now  # the retry gets its time at the next drain
        assert pacer.drain(now) == []
        wake = pacer.next_send_at(now)
        delays.append(wake - now)
        assert pacer.drain(wake - 1) == []
        # A refused subscribe holds nothing: the retry is a plain subscribe.
        assert pacer.drain(wake) == [protocol.subscribe(9)]
        now = wake
    assert delays == [min(RETRY_CAP_MS, RETRY_BASE_MS * 2**k) for k in range(8)]
    assert delays[-1] == RETRY_CAP_MS
    pacer.ack(9)
    pacer.failed(9)
    pacer.drain(now)
    assert pacer.next_send_at(now) == now + RETRY_BASE_MS  # reset by the ack


def test_a_share_of_the_budget_never_exceeds_it_and_keeps_room_for_keepalive():
    """Issue 18, defect 7: with 51 shards the floor of 1 in flight each exceeded Lighter's
    50, and beyond 36 the floor of 5 a minute each exceeded the deployment's 180: SHARDS
    is bounded by what the budget can split, and no split adds up to more than it."""
    from tracker.pacing import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PER_MINUTE, Budget

    most = Budget.max_shards(DEFAULT_MAX_PER_MINUTE, DEFAULT_MAX_IN_FLIGHT)
    assert most == 36  # 180 // 36 = 5 a minute each: 4 kept for keepalive, 1 for subscribes
    for shards in range(1, most + 1):
        share = Budget.share(shards)
        assert share.per_minute * shards <= DEFAULT_MAX_PER_MINUTE
        assert share.in_flight * shards <= DEFAULT_MAX_IN_FLIGHT
        assert share.subscribes_per_minute >= 1
    for shards in (most + 1, 51, 64):
        with pytest.raises(ValueError, match="at most 36"):
            Budget.share(shards)
    assert Budget.share(4) == Budget(per_minute=45, in_flight=10)


def test_every_exchange_splits_its_budget_for_as_many_shards_as_its_setting_allows():
    from tracker.config import ConfigError, Config
    from tracker.exchange import by_name

    for name, var in (("lighter", "SHARDS"), ("paradex", "PARADEX_SHARDS")):
        exchange = by_name(name)
        most = 1
        while True:  # the largest value the setting accepts
            try:
                Config.from_env(lambda key, n=most + 1: str(n) if key == var else None)
            except ConfigError:
                break
            most += 1
        share = exchange.budget(most)
        assert share.per_minute * most <= exchange.budget_per_minute, name
        assert share.in_flight * most <= exchange.budget_in_flight, name
        assert share.subscribes_per_minute >= 1, name


def test_pongs_and_pings_wait_when_the_share_is_spent():
    """Issue 18, defect 7: urgent messages were counted but never limited, so pongs could
    take a shard past its share; they go first, and only while the rate window has room."""
    share = 3 + RESERVED_FOR_KEEPALIVE
    pacer = SubscriptionPacer(max_per_minute=share, max_in_flight=10)
    for m in range(10):
        pacer.subscribe(m)
    assert len(pacer.drain(T0)) == 3  # subscribes stop at the share less the reserve
    for m in range(3):
        pacer.ack(m)
    for k in range(RESERVED_FOR_KEEPALIVE + 2):
        pacer.send_now(protocol.PONG if k % 2 else protocol.PING)
        pacer.drain(T0 + 1 + k)
    assert pacer.messages_sent == share  # the reserve is used, not exceeded
    assert pacer.next_send_at(T0 + 10) == T0 + RATE_WINDOW_MS
    assert pacer.drain(T0 + RATE_WINDOW_MS) == [protocol.PING, protocol.PONG]


def test_an_unsubscribe_only_goes_for_a_market_the_exchange_holds():
    pacer = SubscriptionPacer()
    for m in (1, 2, 3):
        pacer.subscribe(m)
    pacer.drain(T0)
    pacer.ack(1)  # 1 live, 2 in flight, 3 refused
    pacer.failed(3)
    pacer.subscribe(4)  # 4 only queued
    for m in (1, 2, 3, 4):
        pacer.unsubscribe(m)
    assert pacer.drain(T0 + 1) == [protocol.unsubscribe(1)]
    # 2's subscribe is unanswered: dropped once answered, by an unsubscribe if accepted.
    assert pacer.awaits_answer(2)
    pacer.ack(2)
    assert pacer.drain(T0 + 2) == [protocol.unsubscribe(2)]
    assert pacer.drain(T0 + 100_000) == []  # 3 and 4: nothing held, nothing sent


def test_refused_with_already_subscribed_retries_with_an_unsubscribe_first():
    pacer = SubscriptionPacer()
    pacer.subscribe(9)
    pacer.drain(T0)
    pacer.failed(9, held=True)
    pacer.drain(T0)
    wake = pacer.next_send_at(T0)
    assert pacer.drain(wake) == [protocol.unsubscribe(9), protocol.subscribe(9)]


def test_pings_and_pongs_go_first_and_count():
    pacer = SubscriptionPacer(max_per_minute=3 + RESERVED_FOR_KEEPALIVE, max_in_flight=10)
    for m in range(3):
        pacer.subscribe(m)
    pacer.send_now(protocol.PONG)
    pacer.send_now(protocol.PING)
    assert pacer.next_send_at(T0) == T0
    assert pacer.drain(T0) == [protocol.PONG, protocol.PING, protocol.subscribe(0)]
    assert pacer.messages_sent == 3


def test_duplicate_requests_are_queued_once():
    pacer = SubscriptionPacer()
    pacer.subscribe(1)
    pacer.subscribe(1)
    pacer.resubscribe(1)
    assert pacer.pending == 1
    assert pacer.drain(T0) == [protocol.subscribe(1)]
    assert pacer.pending == 0 and pacer.drain(T0 + 1) == []


def test_a_reconnect_does_not_start_from_an_empty_minute():
    """Lighter counts messages per IP: the connection after a drop shares the minute
    with the one before (a drop storm otherwise resends a whole budget: 30009)."""
    from tracker.pacing import SendHistory

    history = SendHistory()
    first = SubscriptionPacer(max_per_minute=10 + RESERVED_FOR_KEEPALIVE, max_in_flight=100, sent_at=history)
    for m in range(20):
        first.subscribe(m)
    assert len(first.drain(T0)) == 10
    second = SubscriptionPacer(max_per_minute=10 + RESERVED_FOR_KEEPALIVE, max_in_flight=100, sent_at=history)
    for m in range(20):
        second.subscribe(m)
    assert second.drain(T0 + 5_000) == []  # the first connection's ten still count
    assert second.next_send_at(T0 + 5_000) == T0 + RATE_WINDOW_MS
    assert len(second.drain(T0 + RATE_WINDOW_MS)) == 10
