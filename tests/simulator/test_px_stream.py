"""Paradex mode, WebSocket /v1: the upgrade, JSON-RPC subscribe/unsubscribe, the SNAPSHOT
then DELTAs on the market's seq, the SBE bytes, and the control-plane errors."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from pxclient import PxClient, as_decimals, dec
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

SIM_ARGS = dict(exchange="paradex", markets=3, rate=60, seed=11, extra_args=["--options", "1"])
BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"


def _status(url: str) -> int:
    with pytest.raises(InvalidStatus) as e:
        connect(url, open_timeout=5).__enter__()
    return e.value.response.status_code


def test_upgrade_needs_a_served_schema(module_sim) -> None:
    base = f"ws://127.0.0.1:{module_sim.port}/v1"
    for query in ("", "?sbeSchemaId=1", "?sbeSchemaId=2&sbeSchemaVersion=1", "?sbeSchemaId=1&sbeSchemaVersion=0",
                  "?sbeSchemaId=1&sbeSchemaVersion=2", "?sbeSchemaId=1&sbeSchemaVersion=x"):
        assert _status(base + query) == 400, query
    status, _, body = module_sim.request("GET", "/v1?sbeSchemaId=1&sbeSchemaVersion=9")
    assert status == 400 and body["error"] == "UNSUPPORTED_SBE_SCHEMA" and "1:1" in body["message"]
    assert module_sim.state()["errors_sent"]["UNSUPPORTED_SBE_SCHEMA"] >= 7
    with PxClient(module_sim.ws_url) as c:  # the right query upgrades; nothing is sent unasked
        assert c.drain(0.2) == []


def test_other_schema_versions_when_served(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1, extra_args=["--sbe-versions", "0,1"])
    with PxClient(f"ws://127.0.0.1:{sim.port}/v1?sbeSchemaId=1&sbeSchemaVersion=0") as c:
        assert c.subscribe(BTC)["version"] == 0  # frames carry the version negotiated
    assert _status(f"ws://127.0.0.1:{sim.port}/v1?sbeSchemaId=1&sbeSchemaVersion=2") == 400


def test_ack_as_captured_then_the_snapshot_of_the_whole_book(module_sim) -> None:
    with PxClient(module_sim.ws_url) as c:
        c.send('{"jsonrpc":"2.0","method":"subscribe","params":{"channel":"order_book.BTC-USD-PERP.deltas"},"id":1}')
        raw = c.ws.recv(timeout=3)
        assert isinstance(raw, str)
        ack = json.loads(raw)
        assert list(ack) == ["jsonrpc", "id", "result", "usIn", "usDiff", "usOut"]  # the captured order
        assert ack["jsonrpc"] == "2.0" and ack["id"] == 1
        assert ack["result"] == {"channel": "order_book.BTC-USD-PERP.deltas"}
        assert ack["usOut"] - ack["usIn"] == ack["usDiff"] >= 0
        assert abs(ack["usIn"] / 1e6 - time.time()) < 5  # µs of the wall clock
        snap = c.read()  # the very next frame
        assert snap["kind"] == "book" and snap["pkg"] == "SNAPSHOT" and snap["market"] == BTC
        assert (snap["template"], snap["schema"], snap["version"], snap["block_length"]) == (3, 1, 1, 89)
        assert snap["strides"] == [16, 16] and snap["size"] == 118 + 16 * (len(snap["bids"]) + len(snap["asks"]))
        # the book's last change: before now, since the simulator started at most
        assert snap["ts"] % 1000 == 0 and time.time() - 3600 < snap["ts"] / 1e6 <= time.time()
        assert all(snap[k] is None for k in ("best_bid_price", "best_ask_price", "relative_spread",
                                             "best_bid_api_price", "best_ask_api_size"))  # null on deltas
        # the whole book, best first, as the simulator holds it (frozen: no update in between)
        module_sim.control("rate", rate=0)
        try:
            c.drain(0.2)
            book = module_sim.book(BTC)
            bids, asks = c.books[BTC].levels()
            assert (bids, asks) == (as_decimals(book["bids"]), as_decimals(book["asks"]))
            assert c.books[BTC].seq == book["seq"]
            assert len(snap["bids"]) >= 10 and [p for p, _ in snap["bids"]] == sorted((p for p, _ in snap["bids"]),
                                                                                     reverse=True)
        finally:
            module_sim.control("rate", rate=60)


def test_deltas_chain_by_seq_with_absolute_sizes_and_empty_frames(module_sim) -> None:
    with PxClient(module_sim.ws_url) as c:
        for sym in (BTC, ETH, SOL):  # book channels of different markets share one session
            c.subscribe(sym)
        c.drain(1.5)
        assert c.gaps == []
        frames = c.book_frames()
        deltas = [f for f in frames if f["pkg"] == "DELTA"]
        assert len(deltas) > 100 and {f["market"] for f in deltas} == {BTC, ETH, SOL}
        for sym in (BTC, ETH, SOL):
            seqs = [f["seq"] for f in frames if f["market"] == sym]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # snapshot, then +1 each
            ts = [f["ts"] for f in frames if f["market"] == sym]
            assert all(t % 1000 == 0 for t in ts) and ts[1:] == sorted(ts[1:])
        empty = [f for f in deltas if not f["bids"] and not f["asks"]]
        assert len(empty) > 5 and all(f["size"] == 118 for f in empty if f["market"] == BTC)
        assert all(len(f["bids"]) + len(f["asks"]) <= 3 for f in deltas)
        assert any(f["size"] == 134 for f in deltas if f["market"] == BTC)  # one level: 134 bytes
        levels = [lv for f in deltas for lv in f["bids"] + f["asks"]]
        assert any(s == 0 for _, s in levels) and any(s > 0 for _, s in levels)
        # absolute sizes: a size-changing level says the new size, which the book then holds
        assert all(not b.crossed() for b in c.books.values())
        for _, _, _, (bb, _, ba, _) in c.tops:
            assert bb < ba
        # a split book change: several DELTAs with the same ts, consecutive seqs
        same_ts = [(a, b) for a, b in zip(deltas, deltas[1:]) if a["market"] == b["market"]
                   and a["ts"] == b["ts"] and b["seq"] == a["seq"] + 1 and (a["bids"] or a["asks"])]
        assert same_ts


def test_interactive_deltas_carry_the_touch_and_share_the_seq(module_sim) -> None:
    with PxClient(module_sim.ws_url) as a, PxClient(module_sim.ws_url) as b:
        snap = a.subscribe(ETH, "interactive_deltas")
        b.subscribe(ETH, "deltas")
        a.drain(0.5)
        b.drain(0.2)
        assert snap["best_bid_price"] is not None and snap["relative_spread"] is not None
        for f in a.book_frames():
            bb, ba = f["best_bid_price"], f["best_ask_price"]
            assert bb is not None and ba is not None and bb < ba
            assert (f["best_bid_api_price"], f["best_ask_api_size"]) == (bb, f["best_ask_size"])
            assert f["relative_spread"] == round(2 * (ba - bb) * 10 ** 8 / (ba + bb))
        # the RPI-inclusive touch is the book's top after the frame
        for f, (_, _, _, top) in zip(a.book_frames(), a.tops):
            assert (dec(f["best_bid_price"]), dec(f["best_bid_size"]), dec(f["best_ask_price"]),
                    dec(f["best_ask_size"])) == top
        # one seq counter per market: both channels, both connections, the same numbers
        sa = {f["seq"] for f in a.book_frames() if f["pkg"] == "DELTA"}
        sb = {f["seq"] for f in b.book_frames() if f["pkg"] == "DELTA"}
        assert len(sa & sb) > 10 and a.gaps == b.gaps == []


def test_errors_of_the_control_plane(module_sim) -> None:
    with PxClient(module_sim.ws_url) as c:
        def err(obj) -> dict:
            c.send(obj)
            e = c.wait_for(lambda f: isinstance(f, dict) and "error" in f)
            assert list(e) == ["jsonrpc", "error", "usIn", "usDiff", "usOut", "id"]
            return e
        invalid = {"code": -32600, "message": "invalid subscribe request", "data": "invalid channel"}
        for i, ch in enumerate(("order_book.NOPE-USD-PERP.deltas", "order_book.BTC-USD-PERP",
                                "order_book.BTC-USD-PERP.snapshot@15@100ms", "bbo.BTC-USD-PERP",
                                "trades.BTC-USD-PERP", "order_book.BTC-USD-PERP.deltas.x")):
            e = err({"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": ch}, "id": 10 + i})
            assert e["error"] == invalid and e["id"] == 10 + i, ch
        for ch in ("order_book.BTC-USD-PERP.deltas@15@100ms", "order_book.ETH-USD-PERP.interactive_deltas@15@50ms"):
            e = err({"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": ch}, "id": 0})
            assert e["error"] == {"code": -32600, "message": "invalid subscribe request",
                                  "data": "no parameters expected for deltas topic."}
        assert err("{nope")["error"]["code"] == -32700 and c.texts[-1]["id"] is None
        c.ws.send(b"\x01\x02")  # clients send JSON text only
        assert c.wait_for(lambda f: isinstance(f, dict) and "error" in f)["error"]["code"] == -32700
        assert err("[1, 2]")["error"]["code"] == -32600
        assert err({"jsonrpc": "2.0", "method": "ping", "id": 3})["error"] == {"code": -32601,
                                                                              "message": "method not found"}
        assert err({"jsonrpc": "2.0", "method": "subscribe", "params": {}, "id": 4})["error"]["code"] == -32602
        assert err({"jsonrpc": "2.0", "method": "subscribe", "id": 5})["error"]["code"] == -32602
        # held channels
        c.subscribe(BTC)
        again = c.rpc("subscribe", "order_book.BTC-USD-PERP.deltas")
        assert again["error"] == {"code": -32600, "message": "invalid subscribe request", "data": "already subscribed"}
        other = c.rpc("subscribe", "order_book.BTC-USD-PERP.interactive_deltas")
        assert other["error"]["data"] == ("channel 'order_book.BTC-USD-PERP.interactive_deltas' cannot share an SBE "
                                          "session with 'order_book.BTC-USD-PERP.deltas'")
        not_held = c.rpc("unsubscribe", "order_book.ETH-USD-PERP.deltas")
        assert not_held["error"] == {"code": -32600, "message": "invalid unsubscribe request",
                                     "data": "not subscribed"}
        assert c.rpc("unsubscribe", "order_book.BTC-USD-PERP.interactive_deltas")["error"]["data"] == "not subscribed"
        cid = c.conn_id(module_sim)
        conn = next(x for x in module_sim.state()["connections"] if x["conn"] == cid)
        assert conn["errors_sent"]["-32600"]["count"] == 13 and conn["errors_sent"]["-32700"]["count"] == 2
        assert conn["channels"] == {BTC: "order_book.BTC-USD-PERP.deltas"}
        assert conn["asked"] == [module_sim.book(BTC)["market_id"]]


def test_unsubscribe_acks_then_nothing_and_resubscribe_snapshots_at_the_current_seq(module_sim) -> None:
    with PxClient(module_sim.ws_url) as c:
        first = c.subscribe(SOL)
        c.drain(0.2)
        ans = c.unsubscribe(SOL)
        assert ans["result"] == {"channel": "order_book.SOL-USD-PERP.deltas"} and ans["id"] == 2
        time.sleep(0.1)
        c.drain(0.1)  # frames already on their way
        assert c.drain(0.3) == []
        again = c.subscribe(SOL, "interactive_deltas")  # the other book channel, once the first is gone
        assert again["seq"] > first["seq"] and again["best_bid_price"] is not None
        nxt = c.wait_for(lambda f: isinstance(f, dict) and f.get("kind") == "book" and f["pkg"] == "DELTA")
        assert nxt["seq"] == again["seq"] + 1 and c.gaps == []


def test_client_book_equals_rest_orderbook_at_the_same_seq(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=2, rate=80, seed=5)
    with PxClient(sim.ws_url) as c:
        c.subscribe(BTC)
        c.subscribe(ETH, "interactive_deltas")
        c.drain(0.6)
        sim.control("rate", rate=0)
        sim.wait_flushed()
        c.drain(0.2)
        for sym in (BTC, ETH):
            rest = sim.get(f"/v1/orderbook/{sym}?depth=500")
            bids, asks = c.books[sym].levels()
            assert rest["seq_no"] == c.books[sym].seq
            assert (as_decimals(rest["bids"]), as_decimals(rest["asks"])) == (bids, asks)
            bbo = sim.get(f"/v1/bbo/{sym}")
            bb, bbs, ba, bas = c.books[sym].top()
            assert bbo["seq_no"] == c.books[sym].seq
            assert [Decimal(bbo[k]) for k in ("bid", "bid_size", "ask", "ask_size")] == [bb, bbs, ba, bas]
        assert c.gaps == []


def test_same_seed_and_subscriptions_reproduce_the_same_frames(start_sim) -> None:
    def run() -> list:
        sim = start_sim(exchange="paradex", markets=2, rate=0, seed=99)
        with PxClient(sim.ws_url) as c:
            c.subscribe(BTC)
            c.subscribe(ETH)
            sim.control("step", market_id="all", n=25)
            sim.wait_flushed()
            c.drain(0.3)
        sim.stop()
        return [{k: v for k, v in f.items() if k != "ts"} for f in c.book_frames()]
    first, second = run(), run()
    assert len(first) > 50 and first == second


def test_step_with_and_without_empty_deltas(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=2, extra_args=["--empty-deltas", "0"])
    with PxClient(sim.ws_url) as c:
        snap = c.subscribe(BTC)
        sim.control("step", market="BTC-USD-PERP", n=3, empty=True)
        sim.control("step", market="BTC-USD-PERP", n=5)
        sim.wait_flushed()
        c.drain(0.3)
        deltas = [f for f in c.book_frames() if f["pkg"] == "DELTA"]
        assert [f["seq"] for f in deltas] == list(range(snap["seq"] + 1, snap["seq"] + 1 + len(deltas)))
        assert all(not f["bids"] and not f["asks"] for f in deltas[:3])
        assert len(deltas) >= 8 and all(f["bids"] or f["asks"] for f in deltas[3:])
    st = sim.state()
    assert st["empty_deltas"] == 3 and st["updates_generated"] == 5


def test_hostile_symbol_streams_like_any_market(start_sim) -> None:
    from urllib.parse import quote
    hostile = "<img src=x onerror=alert(1)>"
    sim = start_sim(exchange="paradex", markets=1, rate=30, seed=4, extra_args=["--hostile-symbol"])
    assert hostile in [r["symbol"] for r in sim.get("/v1/markets")["results"]]
    with PxClient(sim.ws_url) as c:
        snap = c.subscribe(hostile)
        assert snap["market"] == hostile and snap["size"] == 8 + 89 + 8 + 1 + len(hostile) + 16 * (
            len(snap["bids"]) + len(snap["asks"]))
        c.drain(0.3)
        assert c.gaps == [] and len(c.book_frames()) > 3
    assert sim.get(f"/v1/orderbook/{quote(hostile)}?depth=1")["market"] == hostile
