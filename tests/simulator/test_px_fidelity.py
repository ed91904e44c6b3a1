"""Fidelity: the project's own SBE decoder (src/tracker/sbe.py) reads every frame the
Paradex simulator sends (book frames in both layouts, heartbeats, an unknown template)
and rejects the malformed ones; the books it rebuilds have, frame after frame, the top of
book the simulator recorded, and at the end the simulator's REST order book at the same seq.
"""
from __future__ import annotations

import base64

import pytest
from pxclient import PxClient

from tracker import sbe
from tracker.protocol import MalformedFrame

BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"


class Book:
    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.seq: int | None = None
        self.valid = False

    def apply(self, ev) -> None:
        if ev.snapshot:
            self.bids, self.asks, self.valid = {}, {}, True
        elif self.seq is None or ev.seq != self.seq + 1:
            self.valid = False
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            for price, size in levels:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.seq = ev.seq

    def top(self) -> tuple[float, float, float, float]:
        bb, ba = max(self.bids), min(self.asks)
        return bb, self.bids[bb], ba, self.asks[ba]


def test_tracker_decoder_reads_what_the_simulator_sends(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=3, rate=60, seed=31,
                    extra_args=["--record-frames", "--heartbeat-interval", "0.3", "--ping-interval", "0"])
    with PxClient(sim.ws_url) as c:
        c.subscribe(BTC)
        c.subscribe(ETH, "interactive_deltas")
        c.subscribe(SOL)
        cid = c.conn_id(sim)
        c.drain(0.3)
        for kind in ("truncated", "short", "bad_group", "wrong_schema", "unknown_template"):
            sim.control("malformed", kind=kind, count=2, conn=cid)
        sim.control("sbe_layout", block_length=97, group_stride=24, count=15, conn=cid)
        sim.control("gap", market=SOL, mode="skip")
        c.drain(0.4)
        c.unsubscribe(SOL)
        c.subscribe(SOL)  # a fresh snapshot after the gap
        c.drain(0.3)
        sim.control("rate", rate=0)
        sim.wait_flushed()
        c.drain(0.2)
        c.wait_for(lambda f: isinstance(f, dict) and f.get("kind") == "heartbeat", timeout=2)
        rec = sim.record(conn=cid)

    books: dict[str, Book] = {}
    seen = {"book": 0, "long": 0, "malformed": 0, "skipped": 0}
    for r in rec:
        raw = base64.b64decode(r["frame_b64"])
        if r["type"].startswith("malformed/"):
            kind = r["type"].split("/")[1]
            if kind == "unknown_template":
                out = sbe.decode(raw)
                assert isinstance(out, sbe.Skipped) and out.template == 99
                seen["skipped"] += 1
            elif kind == "wrong_schema":  # not schema 1: refused or skipped, never a book
                try:
                    out = sbe.decode(raw)
                except MalformedFrame:
                    pass
                else:
                    assert isinstance(out, sbe.Skipped)
            else:
                with pytest.raises(MalformedFrame):
                    sbe.decode(raw)
                seen["malformed"] += 1
            continue
        ev = sbe.decode(raw)
        assert isinstance(ev, sbe.BookEvent)
        assert (ev.ts_us, ev.seq, ev.snapshot, ev.market) == (r["ts_us"], r["seq"], r["type"] == "snapshot",
                                                              r["symbol"])
        seen["book"] += 1
        seen["long"] += raw[0] == 97
        book = books.setdefault(ev.market, Book())
        book.apply(ev)
        assert book.valid == r["valid"], r
        if r["valid"]:
            want = tuple(float(r[k]) for k in ("best_bid", "best_bid_size", "best_ask", "best_ask_size"))
            assert book.top() == pytest.approx(want, rel=1e-12), r
    assert seen["book"] > 50 and seen["long"] == 15 and seen["malformed"] == 6 and seen["skipped"] == 2
    # heartbeats (not in the record: no book frame) decode as Heartbeat
    beats = [sbe.decode(raw) for raw in c.binary if raw[2] == 40]
    assert beats and all(isinstance(b, sbe.Heartbeat) and b.seq == 0 and b.ts_us % 1000 == 0 for b in beats)
    # the rebuilt books equal the simulator's REST order book at the same seq
    for sym, book in books.items():
        rest = sim.get(f"/v1/orderbook/{sym}?depth=500")
        assert book.valid and book.seq == rest["seq_no"]
        for mine, theirs in ((sorted(book.bids.items(), reverse=True), rest["bids"]),
                             (sorted(book.asks.items()), rest["asks"])):
            assert len(mine) == len(theirs)
            flat = [float(x) for level in theirs for x in level]
            assert [x for level in mine for x in level] == pytest.approx(flat, rel=1e-12), sym
