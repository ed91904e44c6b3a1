"""Paradex mode, fault injection through POST /_sim/<action> (the same actions as Lighter's
where the meaning is the same, plus sbe_layout)."""
from __future__ import annotations

import json
import time

import pytest
from pxclient import FrameError, PxClient, as_decimals

SIM_ARGS = dict(exchange="paradex", markets=3, rate=50, seed=8)
BTC, ETH, SOL = "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"


@pytest.fixture
def sim(module_sim):
    module_sim.control("reset")
    module_sim.control("rate", rate=50)
    return module_sim


class FaultCounts:
    def __init__(self, sim):
        self.sim, self.before = sim, sim.state()["faults"]

    def delta(self) -> dict[str, int]:
        now = self.sim.state()["faults"]
        return {k: v - self.before.get(k, 0) for k, v in now.items() if v != self.before.get(k, 0)}


def test_close_with_code_and_reason_and_abort(sim) -> None:
    with PxClient(sim.ws_url) as a, PxClient(sim.ws_url) as b:
        a.subscribe(BTC)
        assert sim.control("close", code=4001, reason="maintenance", conn=b.conn_id(sim))["affected"] == 1
        assert b.wait_closed() == (4001, "maintenance")
        assert sim.control("close", code=1006, conn=a.conn_id(sim))["affected"] == 1
        assert a.wait_closed()[0] is None  # TCP dropped, no close frame


def test_gap_drop_loses_one_frame_on_one_connection(sim) -> None:
    faults = FaultCounts(sim)
    with PxClient(sim.ws_url) as a, PxClient(sim.ws_url) as b:
        for c in (a, b):
            c.subscribe(BTC)
            c.subscribe(ETH)
        a.drain(0.2)
        cid = a.conn_id(sim)
        assert sim.control("gap", market=BTC, conn=cid)["affected"] == 1
        a.drain(0.4)
        b.drain(0.1)
        assert [(m, got - want) for m, want, got in a.gaps] == [(BTC, 1)]  # one seq never came
        assert b.gaps == []
        rec = sim.record(market_id=BTC, conn=cid)
        bad = next(i for i, r in enumerate(rec) if not r["valid"])
        assert rec[bad]["seq"] == rec[bad - 1]["seq"] + 2 and all(not r["valid"] for r in rec[bad:])
        assert all(r["valid"] for r in sim.record(market_id=ETH, conn=cid))
        st = next(x for x in sim.state()["connections"] if x["conn"] == cid)
        assert st["invalid"] == [rec[0]["market_id"]]
        # recovery, as on Paradex: unsubscribe + subscribe for a new snapshot
        a.unsubscribe(BTC)
        snap = a.subscribe(BTC)
        a.drain(0.3)
        rec = sim.record(market_id=BTC, conn=cid)
        i = max(i for i, r in enumerate(rec) if r["type"] == "snapshot")
        assert rec[i]["seq"] == snap["seq"] and len(rec) - i > 3 and all(r["valid"] for r in rec[i:])
    assert faults.delta() == {"gap": 1}


def test_gap_skip_jumps_the_markets_seq_for_everyone(sim) -> None:
    faults = FaultCounts(sim)
    with PxClient(sim.ws_url) as a, PxClient(sim.ws_url) as b:
        a.subscribe(SOL)
        b.subscribe(SOL, "interactive_deltas")
        a.drain(0.1)
        assert sim.control("gap", market=SOL, mode="skip")["affected"] == 1
        a.drain(0.4)
        b.drain(0.1)
        for c in (a, b):
            assert len(c.gaps) == 1 and c.gaps[0][0] == SOL and c.gaps[0][2] == c.gaps[0][1] + 1
        assert a.gaps == b.gaps  # the same number skipped on both
        for cid in (a.conn_id(sim), b.conn_id(sim)):
            rec = sim.record(market_id=SOL, conn=cid)
            bad = next(i for i, r in enumerate(rec) if not r["valid"])
            assert rec[bad]["seq"] == rec[bad - 1]["seq"] + 2
    assert faults.delta() == {"gap_skip": 1}
    with pytest.raises(Exception, match="400"):
        sim.control("gap", mode="sideways")


@pytest.mark.parametrize("kind", ["truncated", "short", "bad_group", "wrong_schema", "unknown_template", "not_json"])
def test_malformed_frames(sim, kind: str) -> None:
    faults = FaultCounts(sim)
    with PxClient(sim.ws_url) as c:
        c.subscribe(ETH)
        c.drain(0.1)
        cid = c.conn_id(sim)
        assert sim.control("malformed", kind=kind, count=3, conn=cid)["affected"] == 3
        c.drain(0.4)
        if kind == "not_json":
            odd = [t for t in c.texts if isinstance(t, str)]
            assert len(odd) == 3
            with pytest.raises(ValueError):
                json.loads(odd[0])
        elif kind == "unknown_template":
            odd = [f for f in c.decoded if isinstance(f, dict) and f["kind"] == "unknown"]
            assert len(odd) == 3 and {f["template"] for f in odd} == {99}
        else:
            odd = [f for f in c.decoded if isinstance(f, FrameError)]
            assert len(odd) == 3, c.decoded[-5:]
            sizes = [len(b) for b, f in zip(c.binary, c.decoded) if isinstance(f, FrameError)]
            if kind == "short":
                assert sizes == [5, 5, 5]
            elif kind == "truncated":
                assert all(9 <= n < 118 + 16 * 4 for n in sizes) and len(set(sizes)) == 3
        # the real stream goes on: no seq lost, no book change in the bad frames
        assert c.gaps == [] and len([f for f in c.book_frames() if f["pkg"] == "DELTA"]) > 5
        rec = sim.record(market_id=ETH, conn=cid)
        assert [r["type"] for r in rec if not r["valid"]] == [f"malformed/{kind}"] * 3
        assert all(r["seq"] is None for r in rec if not r["valid"])
    assert faults.delta() == {f"malformed_{kind}": 3}


def test_sbe_layout_longer_root_block_and_group_stride_still_decode(sim) -> None:
    faults = FaultCounts(sim)
    with PxClient(sim.ws_url) as c:
        c.subscribe(BTC)
        c.drain(0.1)
        cid = c.conn_id(sim)
        assert sim.control("sbe_layout", block_length=97, group_stride=24, count=20, conn=cid)["affected"] == 1
        snap = c.subscribe(SOL)  # a snapshot in the longer layout too
        assert (snap["block_length"], snap["strides"]) == (97, [24, 24])
        assert snap["size"] == 8 + 97 + 8 + 24 * (len(snap["bids"]) + len(snap["asks"])) + 13
        c.drain(0.5)
        long = [f for f in c.book_frames() if f["block_length"] == 97]
        assert len(long) == 20 and all(f["strides"] == [24, 24] for f in long)
        assert [f["block_length"] for f in c.book_frames()][-1] == 89  # back to 89 after `count`
        assert c.gaps == []
        sim.control("rate", rate=0)
        sim.wait_flushed()
        c.drain(0.2)
        for sym in (BTC, SOL):  # the books built through the longer frames are right
            bids, asks = c.books[sym].levels()
            book = sim.book(sym)
            assert (bids, asks) == (as_decimals(book["bids"]), as_decimals(book["asks"]))
        frames = [r for r in sim.record(conn=cid)]
        assert all(r["valid"] for r in frames)
    assert faults.delta() == {"sbe_layout_frames": 20}
    for bad in ({"block_length": 88}, {"group_stride": 8}, {"count": 0}):
        assert sim.request("POST", "/_sim/sbe_layout", bad)[0] == 400


def test_stall_holds_everything_then_resumes_without_loss(sim) -> None:
    faults = FaultCounts(sim)
    with PxClient(sim.ws_url) as c:
        c.subscribe(SOL)
        c.drain(0.1)
        sim.control("stall", seconds=0.8, conn=c.conn_id(sim))
        t0 = time.monotonic()
        c.drain(0.05)
        c.send({"jsonrpc": "2.0", "method": "subscribe", "params": {"channel": "order_book.BTC-USD-PERP.deltas"},
                "id": 77})
        assert c.drain(0.5) == []
        ack = c.wait_for(lambda f: isinstance(f, dict) and f.get("id") == 77, timeout=2)
        assert ack["result"] and time.monotonic() - t0 >= 0.7
        c.drain(0.3)
        assert c.gaps == [] and BTC in c.books  # held, not lost
    assert faults.delta() == {"stall": 1}


def test_refuse_subscriptions_and_reset(sim) -> None:
    with PxClient(sim.ws_url) as c:
        sim.control("refuse_subscriptions", count=2)
        for sym in (BTC, ETH):
            e = c.rpc("subscribe", f"order_book.{sym}.deltas")
            assert e["error"] == {"code": -32603, "message": "internal error", "data": "failed to subscribe"}
        c.subscribe(ETH)  # count used up
        # No delta while the faults are armed: one emitted between arming the gap and the
        # reset would carry it legitimately (the flaky run on ab0c66e). Armed, they can
        # only be consumed after the reset, which must have cleared them.
        sim.control("rate", rate=0)
        sim.control("refuse_subscriptions", count=5)
        sim.control("sbe_layout", count=50)
        sim.control("gap", mode="skip")
        sim.control("reset")
        sim.control("rate", rate=50)
        snap = c.subscribe(BTC)
        assert snap["block_length"] == 89
        c.drain(0.3)
        assert c.gaps == []
        assert sim.state()["errors_sent"]["-32603"] == 0  # reset clears the counters


def test_bad_control_requests(sim) -> None:
    for action, body, code in (("malformed", {"kind": "not_json_at_all"}, 400), ("gap", {"market": "NOPE"}, 400),
                               ("step", {"empty": "yes"}, 400), ("rest_fail", {"status": 404}, 400)):
        status, _, resp = sim.request("POST", f"/_sim/{action}", body)
        assert status == code and resp["ok"] is False, action
