"""The book model and frame builders, in process (no server)."""
from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from lighter_sim import protocol as P
from lighter_sim.catalog import build_catalog, decimals_for
from lighter_sim.config import SimConfig
from lighter_sim.market import MarketSim, make_formatter
from simclient import fixture, shape


def market(seed: int = 1, idx: int = 0, levels: int = 20, markets: int = 70, **cfg) -> MarketSim:
    specs = build_catalog(SimConfig(seed=seed, markets=markets, **cfg))
    return MarketSim(specs[idx], seed, levels)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), idx=st.integers(0, 69), steps=st.integers(1, 400))
def test_steps_keep_the_book_consistent(seed: int, idx: int, steps: int) -> None:
    m = market(seed, idx)
    for _ in range(steps):
        before_nonce = m.nonce
        before = m.book.copy()
        changes = m.step(0)
        assert 1 <= len(changes) <= 4
        assert m.nonce - before_nonce >= 2  # nonces jump, never +1
        assert not m.book.crossed()
        assert m.book.bids and m.book.asks
        for c in changes:
            # a change carries the new absolute size and the old one
            assert m.book.side(c.side).get(c.tick, 0) == c.lots
            assert before.side(c.side).get(c.tick, 0) == c.old != c.lots
            assert c.tick > 0 and c.lots >= 0
        assert m.min_levels <= len(m.book.bids) <= m.max_levels
        assert m.min_levels <= len(m.book.asks) <= m.max_levels


def test_update_mix_has_adds_changes_deletes_and_the_mid_moves() -> None:
    m = market(7, 0)
    kinds = {"add": 0, "change": 0, "delete": 0}
    mids = set()
    for _ in range(2000):
        for c in m.step(0):
            kinds["add" if c.old == 0 else "delete" if c.lots == 0 else "change"] += 1
        bb, _, ba, _ = m.book.top()
        mids.add(bb + ba)
    assert all(v > 100 for v in kinds.values()), kinds
    assert len(mids) > 20


def test_same_seed_same_updates_other_seed_other_updates() -> None:
    def run(seed: int) -> list[str]:
        m = market(seed, 1)
        out = []
        for _ in range(200):
            begin = m.nonce
            out.append(P.update_frame(m, m.step(123), begin, 456))
        return out
    assert run(5) == run(5)
    assert run(5) != run(6)


def test_formatter_is_exact() -> None:
    assert make_formatter(2)(236131) == "2361.31"
    assert make_formatter(4)(3285) == "0.3285"
    assert make_formatter(4)(0) == "0.0000"
    assert make_formatter(6)(5) == "0.000005"
    assert make_formatter(0)(42) == "42"
    assert decimals_for(2360.0) == (2, 4)  # ETH as listed on Lighter
    assert decimals_for(95000.0) == (1, 5)  # BTC
    assert decimals_for(0.16) == (6, 0)  # DOGE


def test_frames_have_the_captured_shapes() -> None:
    m = market(1, 0)
    snap = json.loads(P.snapshot_frame(m, 0, 1))
    assert shape(snap) == shape(fixture("ws_order_book_subscribed.json"))
    assert list(snap) == list(fixture("ws_order_book_subscribed.json"))
    assert list(snap["order_book"]) == list(fixture("ws_order_book_subscribed.json")["order_book"])
    begin = m.nonce
    upd = json.loads(P.update_frame(m, m.step(1), begin, 2))
    ref = fixture("ws_order_book_update.json")
    # an update touches one side or both: compare level shapes where present
    for side in ("asks", "bids"):
        ref["order_book"][side] = ref["order_book"]["asks"]
        if not upd["order_book"][side]:
            upd["order_book"][side] = [{"price": "1.00", "size": "1.0000"}]
    assert shape(upd) == shape(ref)
    assert upd["order_book"]["begin_nonce"] == begin < upd["order_book"]["nonce"]
    empty = market(1, 3, markets=3, inactive=1)
    assert empty.spec.status == "inactive"
    assert shape(json.loads(P.snapshot_frame(empty, 0, 1))) == shape(
        fixture("ws_order_book_subscribed_empty.json"))
    bad = json.loads(P.malformed_frame("bad_body", m, 5, 0))
    assert shape(bad) == shape(fixture("ws_order_book_subscribed_bad_body.json"))
    err = json.loads(P.error_frame(P.FAILED_TO_SUBSCRIBE, "order_book:0"))
    assert err == fixture("ws_order_book_subscribe_failed.json")


def test_prices_and_sizes_use_the_market_decimals() -> None:
    for idx in (0, 1, 3):
        m = market(3, idx)
        snap = json.loads(P.snapshot_frame(m, 0, 1))
        for lv in snap["order_book"]["asks"] + snap["order_book"]["bids"]:
            for key, dec in (("price", m.spec.price_decimals), ("size", m.spec.size_decimals)):
                text = lv[key]
                assert (len(text.split(".")[1]) if "." in text else 0) == dec, (key, text)
                assert Decimal(text) > 0
        assert 15 <= len(snap["order_book"]["asks"]) <= 30


def test_deletes_use_both_spellings() -> None:
    m = market(2, 0)
    spellings = set()
    for _ in range(1500):
        begin = m.nonce
        f = json.loads(P.update_frame(m, m.step(0), begin, 0))
        for lv in f["order_book"]["asks"] + f["order_book"]["bids"]:
            if Decimal(lv["size"]) == 0:
                spellings.add(lv["size"])
    assert spellings == {"0", "0.0000"}


def test_catalog_ids_symbols_and_options() -> None:
    specs = build_catalog(SimConfig(markets=600, spot=5, wide_ids=True, hostile_symbol=True,
                                    inactive=2))
    ids = [s.market_id for s in specs]
    perps = [s for s in specs if s.market_type == "perp"]
    spots = [s for s in specs if s.market_type == "spot"]
    assert ids[:600] == list(range(600))
    assert [s.market_id for s in spots] == [2048, 2049, 2050, 2051, 2052, 50000]
    assert all("/" in s.symbol for s in spots)
    assert {4095, 50000, 70000} <= set(ids) and max(ids) > 0xFFFF
    assert sum(s.symbol == "<img src=x onerror=alert(1)>" for s in perps) == 1
    assert sum(s.status == "inactive" for s in specs) == 2
    assert [s.symbol for s in specs[:3]] == ["ETH", "BTC", "SOL"]
    assert len({s.symbol for s in specs}) == len(specs)
    for s in specs:  # every market builds a valid book
        m = MarketSim(s, 1, 20)
        assert s.empty or (m.book.bids and not m.book.crossed())
