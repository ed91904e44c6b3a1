"""/_sim/record, /_sim/state and /_sim/book agree with what a client really received."""
from __future__ import annotations

import json
import time

import pytest
from lighter_sim.testing import SimulatorError
from simclient import Client

SIM_ARGS = dict(markets=3, rate=60, seed=21, extra_args=["--snapshot-delay", "0"])

BOOK_TYPES = ("subscribed/order_book", "update/order_book")


def test_record_matches_every_book_frame_the_client_got(module_sim) -> None:
    sim = module_sim
    since = int(time.time() * 1000)
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        c.subscribe(2)
        c.drain(0.5)
        sim.control("rate", rate=0)
        sim.wait_flushed()
        cid = c.session_conn_id(sim)
        rec = sim.record(conn=cid)

        def book_frames() -> list[dict]:
            return [f for f in c.frames if isinstance(f, dict) and f.get("type") in BOOK_TYPES]

        # Everything is written (rate 0, flushed); on a busy machine the last frames
        # can still be on their way to this client, so read until they are in.
        deadline = time.monotonic() + 5
        while len(book_frames()) < len(rec) and time.monotonic() < deadline:
            c.drain(0.1)
        got = book_frames()
        assert len(rec) == len(got) > 20
        for r, f, (mid, typ, nonce, top) in zip(rec, got, c.tops):
            body = f["order_book"]
            assert (r["conn_id"], r["market_id"], r["type"], r["timestamp_ms"], r["nonce"],
                    r["begin_nonce"]) == (cid, mid, f["type"], f["timestamp"], body["nonce"],
                                          body["begin_nonce"])
            assert (r["best_bid"], r["best_bid_size"], r["best_ask"], r["best_ask_size"]) == top
            assert r["valid"] is True and r["symbol"] == ("ETH" if mid == 0 else "SOL")
            assert r["sent_ms"] >= r["timestamp_ms"]
        # filters
        assert {r["market_id"] for r in sim.record(market_id=2, conn=cid)} == {2}
        late = sim.record(since_ms=rec[len(rec) // 2]["timestamp_ms"], conn=cid)
        assert 0 < len(late) < len(rec) and all(r["timestamp_ms"] >= since for r in late)
        assert sim.record(conn=cid + 1000) == []
        # state: the connection, its subscriptions and counters, and each market's top
        st = sim.state()
        me = next(x for x in st["connections"] if x["conn"] == cid)
        assert me["open"] and me["subscriptions"] == [0, 2] and me["received"] == 2
        assert me["sent"] == len(c.frames) and me["record_len"] == len(rec)
        assert st["messages_sent"] >= me["sent"] and st["messages_received"] >= 2
        for mid in (0, 2):
            top = st["markets"][str(mid)]
            book = sim.book(mid)
            assert (top["best_bid"], top["best_ask"]) == (book["bids"][0]["price"], book["asks"][0]["price"])
            assert top["nonce"] == book["nonce"] == c.books[mid].nonce
            assert top["subscribers"] == 1
    # closed connections stay visible with their close code, and their record (the
    # rate is still 0: nothing was sent between the reads above and the close)
    closed = next(x for x in sim.state()["connections"] if x["conn"] == cid)
    assert closed["open"] is False and closed["close_code"] == 1000
    assert len(sim.record(conn=cid)) == len(rec)
    sim.control("rate", rate=60)


def test_record_limit_bounds_each_connection(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--record-limit", "10", "--snapshot-delay", "0"])
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        sim.control("step", market_id=0, n=30)
        sim.wait_flushed()
        c.drain(0.1)
        rec = sim.record()
        assert len(rec) == 10
        assert [r["nonce"] for r in rec] == [f["order_book"]["nonce"] for f in c.frames[-10:]]


def test_record_frames_keeps_the_text_of_each_frame_sent(module_sim) -> None:
    sim = module_sim
    assert sim.control("record_frames", on=True)["on"] is True
    try:
        with Client(sim.ws_url) as c:
            c.subscribe(1)
            c.drain(0.3)
            sim.control("rate", rate=0)
            sim.wait_flushed()
            cid = c.session_conn_id(sim)
            rec = sim.record(conn=cid)
            deadline = time.monotonic() + 5
            while len([f for f in c.frames if isinstance(f, dict) and f.get("type") in BOOK_TYPES]) < len(rec) \
                    and time.monotonic() < deadline:
                c.drain(0.1)
            got = [f for f in c.frames if isinstance(f, dict) and f.get("type") in BOOK_TYPES]
            assert len(rec) == len(got) > 5
            assert [json.loads(r["frame"]) for r in rec] == got  # the very frames, in order
    finally:
        sim.control("record_frames", on=False)
        sim.control("rate", rate=60)
    with Client(sim.ws_url) as c:
        c.subscribe(1)
        cid = c.session_conn_id(sim)
        sim.wait_flushed()
        assert sim.record(conn=cid) and all("frame" not in r for r in sim.record(conn=cid))
    with pytest.raises(SimulatorError, match="400"):
        sim.control("record_frames", on="yes")
