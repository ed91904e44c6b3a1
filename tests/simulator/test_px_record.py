"""Paradex mode: /_sim/record says exactly which book frames went to which client, with
the top of book the client then has, and (record_frames) the very bytes; the tests'
reference model replays them."""
from __future__ import annotations

import base64
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from pxclient import PxClient, market_id

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: reference_model
import reference_model as ref  # noqa: E402

SIM_ARGS = dict(exchange="paradex", markets=3, rate=60, seed=21)
BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"
FIELDS = ["conn_id", "market_id", "symbol", "channel", "type", "timestamp_ms", "ts_us", "seq", "best_bid",
          "best_ask", "best_bid_size", "best_ask_size", "valid", "sent_ms"]


def _settle(sim, c: PxClient) -> list[dict]:
    """Freeze, wait until everything is written and read, return this client's record."""
    sim.control("rate", rate=0)
    sim.wait_flushed()
    rec = sim.record(conn=c.conn_id(sim))
    deadline = time.monotonic() + 5
    while len(c.book_frames()) < len([r for r in rec if r["type"] in ("snapshot", "delta")]) \
            and time.monotonic() < deadline:
        c.drain(0.1)
    return rec


def test_record_matches_every_book_frame_the_client_got(module_sim) -> None:
    sim = module_sim
    since = int(time.time() * 1000) - 60_000
    try:
        with PxClient(sim.ws_url) as c:
            c.subscribe(BTC)
            c.subscribe(SOL, "interactive_deltas")
            c.drain(0.5)
            cid = c.conn_id(sim)
            rec = _settle(sim, c)
            got = c.book_frames()
            assert len(rec) == len(got) > 20
            for r, f, (sym, pkg, seq, top) in zip(rec, got, c.tops):
                assert list(r) == FIELDS  # record_frames is off: no frame_b64
                assert (r["conn_id"], r["symbol"], r["market_id"], r["type"], r["seq"], r["ts_us"]) == (
                    cid, f["market"], market_id(f["market"]), pkg.lower(), f["seq"], f["ts"])
                assert r["timestamp_ms"] == f["ts"] // 1000 and r["valid"] is True
                feed = "interactive_deltas" if sym == SOL else "deltas"
                assert r["channel"] == f"order_book.{sym}.{feed}"
                assert tuple(Decimal(r[k]) for k in ("best_bid", "best_bid_size", "best_ask", "best_ask_size")) == top
                assert r["sent_ms"] >= r["timestamp_ms"] - 1
            # filters: by id, by symbol, by time
            assert {r["symbol"] for r in sim.record(market_id=market_id(SOL), conn=cid)} == {SOL}
            assert sim.record(market_id=SOL, conn=cid) == sim.record(market_id=market_id(SOL), conn=cid)
            late = sim.record(since_ms=rec[len(rec) // 2]["timestamp_ms"], conn=cid)
            assert 0 < len(late) < len(rec) and all(r["timestamp_ms"] >= since for r in late)
            # state: the connection and each market's top, in the tracker's ids
            st = sim.state()
            me = next(x for x in st["connections"] if x["conn"] == cid)
            assert me["subscriptions"] == sorted([market_id(BTC), market_id(SOL)]) and me["received"] == 2
            assert me["record_len"] == len(rec) and me["sent"] == len(got) + 2  # + the two acks
            for sym in (BTC, SOL):
                top = st["markets"][str(market_id(sym))]
                book = sim.book(sym)
                assert (top["best_bid"], top["best_ask"]) == (book["bids"][0][0], book["asks"][0][0])
                assert top["seq"] == book["seq"] == c.books[sym].seq and top["asset_kind"] == "PERP"
    finally:
        sim.control("rate", rate=60)


def test_record_frames_keeps_the_exact_bytes_and_the_reference_replays_them(module_sim) -> None:
    sim = module_sim
    assert sim.control("record_frames", on=True)["on"] is True
    try:
        with PxClient(sim.ws_url) as c:
            c.subscribe(ETH)
            c.subscribe(BTC, "interactive_deltas")
            c.drain(0.3)
            sim.control("gap", market=ETH, conn=c.conn_id(sim))  # invalid until resubscribed
            sim.control("malformed", kind="truncated", market=BTC)
            sim.control("sbe_layout", count=5)
            c.drain(0.4)
            c.unsubscribe(ETH)
            c.subscribe(ETH)
            c.drain(0.3)
            rec = _settle(sim, c)
            frames = [r for r in rec if r["type"] in ("snapshot", "delta")]
            assert [base64.b64decode(r["frame_b64"]) for r in rec] == c.binary  # the very bytes, in order
            assert any(not r["valid"] for r in frames) and sum(r["type"] == "snapshot" for r in rec) == 3
            events = ref.events_from_sim_record(rec)  # raises if a replayed top disagrees with the record
            ticks = [e for e in events if e.kind == "tick"]
            assert len(ticks) == sum(1 for r in frames if r["valid"]) > 20
            assert all(e.depths is not None and e.depths[4] > 0 and e.depths[5] > 0 for e in ticks)
            assert {e.market for e in ticks} == {market_id(ETH), market_id(BTC)}
            # the reference's book equals the client's and the simulator's at the end
            book = ref.NaiveBook()
            for r in sim.record(market_id=ETH, conn=c.conn_id(sim)):
                if "frame_b64" in r:
                    book.apply_sbe(base64.b64decode(r["frame_b64"]))
            sim_book = sim.book(ETH)
            assert book.valid and book.nonce == sim_book["seq"]
            assert sorted(book.bids.items(), reverse=True) == [(Decimal(p), Decimal(s)) for p, s in sim_book["bids"]]
            assert sorted(book.asks.items()) == [(Decimal(p), Decimal(s)) for p, s in sim_book["asks"]]
    finally:
        sim.control("record_frames", on=False)
        sim.control("rate", rate=60)
    with PxClient(sim.ws_url) as c:
        c.subscribe(SOL)
        sim.wait_flushed()
        assert all("frame_b64" not in r for r in sim.record(conn=c.conn_id(sim)))


def test_record_limit_bounds_each_connection(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1,
                    extra_args=["--record-limit", "10", "--record-frames"])
    with PxClient(sim.ws_url) as c:
        c.subscribe(BTC)
        sim.control("step", market_id="all", n=30)
        sim.wait_flushed()
        c.drain(0.2)
        rec = sim.record()
        assert len(rec) == 10
        assert [base64.b64decode(r["frame_b64"]) for r in rec] == c.binary[-10:]


def test_record_of_a_closed_connection_stays(module_sim) -> None:
    with PxClient(module_sim.ws_url) as c:
        c.subscribe(SOL)
        c.drain(0.2)
        cid = c.conn_id(module_sim)
    module_sim.wait_flushed()
    closed = next(x for x in module_sim.state()["connections"] if x["conn"] == cid)
    assert closed["open"] is False and closed["close_code"] == 1000
    assert len(module_sim.record(conn=cid)) >= len(c.book_frames()) > 3
    with pytest.raises(Exception, match="400"):
        module_sim.record(since_ms="x")  # type: ignore[arg-type]
