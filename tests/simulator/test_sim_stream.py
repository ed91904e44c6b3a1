"""WebSocket /stream: frame shapes, nonce chain, book consistency, subscribe/unsubscribe."""
from __future__ import annotations

import time
from decimal import Decimal

from simclient import Client, fixture, shape

SIM_ARGS = dict(markets=3, rate=50, seed=11, extra_args=["--inactive", "1", "--snapshot-delay", "0"])


def test_connected_then_snapshot_then_updates_in_the_captured_shapes(module_sim) -> None:
    with Client(module_sim.ws_url + "?readonly=true") as c:
        assert c.connected["type"] == "connected" and c.connected["session_id"]
        snap = c.subscribe(0)
        ref = fixture("ws_order_book_subscribed.json")
        assert shape(snap) == shape(ref) and list(snap) == list(ref)
        assert list(snap["order_book"]) == list(ref["order_book"])
        assert snap["channel"] == "order_book:0" and snap["order_book"]["begin_nonce"] == 0
        assert snap["order_book"]["code"] == 0
        assert snap["last_updated_at"] == snap["order_book"]["last_updated_at"] > 10 ** 15  # µs
        assert abs(snap["timestamp"] - time.time() * 1000) < 5000  # ms, wall clock
        assert snap["offset"] == snap["order_book"]["offset"]
        assert 15 <= len(snap["order_book"]["asks"]) <= 30 and 15 <= len(snap["order_book"]["bids"]) <= 30
        upd = c.wait_for(lambda f: f.get("type") == "update/order_book")
        ref_u = fixture("ws_order_book_update.json")
        assert list(upd) == list(ref_u) and list(upd["order_book"]) == list(ref_u["order_book"])
        for side in ("asks", "bids"):
            for lv in upd["order_book"][side]:
                assert shape(lv) == shape(ref_u["order_book"]["asks"][0])
        assert 1 <= len(upd["order_book"]["asks"]) + len(upd["order_book"]["bids"]) <= 4
        # the first update chains onto the snapshot
        assert upd["order_book"]["begin_nonce"] == snap["order_book"]["nonce"]


def test_empty_book_snapshot_has_the_captured_empty_shape(module_sim) -> None:
    with Client(module_sim.ws_url) as c:
        snap = c.subscribe(3)  # the inactive market
        ref = fixture("ws_order_book_subscribed_empty.json")
        assert shape(snap) == shape(ref)
        assert snap["order_book"]["asks"] == [] and snap["order_book"]["nonce"] == 0
        assert c.drain(0.2) == []  # an inactive market never updates


def test_nonce_chain_and_uncrossed_books_over_many_updates(module_sim) -> None:
    with Client(module_sim.ws_url) as c:
        for mid in (0, 1, 2):
            c.subscribe(mid)
        frames = c.drain(1.5)
        updates = [f for f in frames if f.get("type") == "update/order_book"]
        assert len(updates) > 100
        assert c.chain_breaks == []
        per_market: dict[int, list[dict]] = {}
        for f in updates:
            per_market.setdefault(int(f["channel"].split(":")[1]), []).append(f)
        assert set(per_market) == {0, 1, 2}
        for mid, fs in per_market.items():
            nonces = [f["order_book"]["nonce"] for f in fs]
            assert all(b - a > 1 for a, b in zip(nonces, nonces[1:]))  # jumps, not +1
            offsets = [f["offset"] for f in fs]
            assert any(b - a != 1 for a, b in zip(offsets, offsets[1:]))  # not contiguous
            assert all(f["last_updated_at"] == f["order_book"]["last_updated_at"] for f in fs)
        for mid, typ, nonce, (bb, bbs, ba, bas) in c.tops:
            assert Decimal(bb) < Decimal(ba), (mid, nonce)
        sizes = {lv["size"] for f in updates for lv in f["order_book"]["asks"] + f["order_book"]["bids"]}
        assert any(Decimal(s) == 0 for s in sizes) and any(Decimal(s) > 0 for s in sizes)


def test_two_connections_share_the_market_nonce_chain(module_sim) -> None:
    with Client(module_sim.ws_url) as a, Client(module_sim.ws_url) as b:
        a.subscribe(1)
        b.subscribe(1)
        a.drain(0.4)
        b.drain(0.4)
        na = {f["order_book"]["nonce"] for f in a.frames if isinstance(f, dict) and "order_book" in f}
        nb = {f["order_book"]["nonce"] for f in b.frames if isinstance(f, dict) and "order_book" in f}
        assert len(na & nb) > 5  # the same updates, same nonces
        assert a.chain_breaks == b.chain_breaks == []


def test_ping_pong_unsubscribe_and_resubscribe(module_sim) -> None:
    with Client(module_sim.ws_url) as c:
        c.send({"type": "ping"})
        assert c.wait_for(lambda f: f.get("type") in ("pong", "error")) == {"type": "pong"}
        first = c.subscribe(2)
        c.drain(0.2)
        c.unsubscribe(2)
        time.sleep(0.15)  # frames already in flight may still arrive, nothing else
        assert {f["type"] for f in c.drain(0.1)} <= {"update/order_book"}  # no reply by default
        assert c.drain(0.4) == []  # then nothing for that channel
        again = c.subscribe(2)
        assert again["order_book"]["begin_nonce"] == 0
        assert again["order_book"]["nonce"] > first["order_book"]["nonce"]
        upd = c.wait_for(lambda f: f.get("type") == "update/order_book")
        assert upd["order_book"]["begin_nonce"] == again["order_book"]["nonce"]


def test_reconstructed_book_equals_the_simulator_book_when_frozen(start_sim) -> None:
    sim = start_sim(markets=2, rate=80, seed=5, extra_args=["--snapshot-delay", "0"])
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        c.subscribe(1)
        c.drain(0.6)
        sim.control("rate", rate=0)
        sim.wait_flushed()
        c.drain(0.2)
        for mid in (0, 1):
            book = sim.book(mid)
            asks, bids = c.books[mid].sorted_levels()
            assert c.books[mid].nonce == book["nonce"]
            assert asks == book["asks"] and bids == book["bids"]
        assert c.chain_breaks == []


def test_same_seed_and_subscriptions_reproduce_the_same_frames(start_sim) -> None:
    def run() -> list:
        sim = start_sim(markets=2, rate=0, seed=99, extra_args=["--snapshot-delay", "0"])
        with Client(sim.ws_url) as c:
            c.subscribe(0)
            c.subscribe(1)
            sim.control("step", market_id="all", n=25)
            while len([f for f in c.frames if f.get("type") == "update/order_book"]) < 50:
                c.read()
        drop = ("timestamp", "last_updated_at")
        out = []
        for f in c.frames[1:]:
            f = {k: v for k, v in f.items() if k not in drop}
            f["order_book"] = {k: v for k, v in f["order_book"].items() if k not in drop}
            out.append(f)
        sim.stop()
        return out
    first, second = run(), run()
    assert len(first) == 52 and first == second


def test_snapshot_depth_limits_snapshot_levels(start_sim) -> None:
    sim = start_sim(markets=1, rate=30, seed=2, extra_args=["--snapshot-depth", "5"])
    with Client(sim.ws_url) as c:
        snap = c.subscribe(0)
        assert len(snap["order_book"]["asks"]) == 5 and len(snap["order_book"]["bids"]) == 5
        c.drain(0.3)
        # the record reports the book as this client rebuilds it, from the 5-level snapshot on
        rec = sim.record(conn=c.session_conn_id(sim))
        mine = [t for t in c.tops]
        assert [(r["nonce"], r["best_bid"], r["best_bid_size"], r["best_ask"], r["best_ask_size"])
                for r in rec][:len(mine)] == [(n, *top) for _, _, n, top in mine]


def test_unsubscribe_ack_flag_sends_an_unsubscribed_frame(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--unsubscribe-ack", "--snapshot-delay", "0"])
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        c.unsubscribe(0)
        assert c.read() == {"type": "unsubscribed/order_book", "channel": "order_book:0"}
