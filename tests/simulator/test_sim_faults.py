"""Fault injection through POST /_sim/<action>."""
from __future__ import annotations

import json
import time

import pytest
from lighter_sim.testing import SimulatorError
from simclient import Client, fixture, shape

SIM_ARGS = dict(markets=3, rate=40, seed=8, extra_args=["--snapshot-delay", "0"])


@pytest.fixture
def sim(module_sim):
    """One simulator for the module; every test starts with no faults and rate 40."""
    module_sim.control("reset")
    module_sim.control("rate", rate=40)
    return module_sim


class FaultCounts:
    """Faults injected during a test (the module's simulator keeps running totals)."""

    def __init__(self, sim):
        self.sim, self.before = sim, sim.state()["faults"]

    def delta(self) -> dict[str, int]:
        now = self.sim.state()["faults"]
        return {k: v - self.before.get(k, 0) for k, v in now.items() if v != self.before.get(k, 0)}


def updates(frames: list) -> list[dict]:
    return [f for f in frames if isinstance(f, dict) and f.get("type") == "update/order_book"]


def test_close_with_code_and_reason_and_abort(sim) -> None:
    faults = FaultCounts(sim)
    with Client(sim.ws_url) as a, Client(sim.ws_url) as b:
        b_id = b.session_conn_id(sim)
        assert sim.control("close", code=4001, reason="maintenance", conn=b_id)["affected"] == 1
        assert b.wait_closed() == (4001, "maintenance")
        # 1006: the TCP connection is dropped with no close frame
        assert sim.control("close", code=1006, conn=a.session_conn_id(sim))["affected"] == 1
        assert a.wait_closed()[0] is None
    assert faults.delta() == {"close": 2}
    assert sim.control("close", conn=10 ** 6)["affected"] == 0  # no such connection


def test_gap_breaks_the_chain_and_marks_the_record_invalid_until_resubscribe(sim) -> None:
    faults = FaultCounts(sim)
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        c.subscribe(1)
        c.drain(0.2)
        assert sim.control("gap", market_id=0)["affected"] == 1
        c.drain(0.4)
        assert [b[0] for b in c.chain_breaks] == [0]  # market 1 untouched
        cid = c.session_conn_id(sim)
        assert sim.state()["connections"][-1]["invalid"] == [0]
        rec = sim.record(market_id=0, conn=cid)
        first_bad = next(i for i, r in enumerate(rec) if not r["valid"])
        assert rec[first_bad]["begin_nonce"] != rec[first_bad - 1]["nonce"]
        assert all(not r["valid"] for r in rec[first_bad:])
        assert all(r["valid"] for r in sim.record(market_id=1, conn=cid))
        # the client recovers the way Lighter expects: unsubscribe + subscribe
        c.unsubscribe(0)
        snap = c.subscribe(0)
        c.drain(0.3)
        rec = sim.record(market_id=0, conn=cid)
        i = max(i for i, r in enumerate(rec) if r["type"] == "subscribed/order_book")
        assert rec[i]["nonce"] == snap["order_book"]["nonce"] and all(r["valid"] for r in rec[i:])
        assert len(rec) - i > 3
    assert faults.delta() == {"gap": 1}


def test_gap_all_markets(sim) -> None:
    with Client(sim.ws_url) as c:
        for mid in range(3):
            c.subscribe(mid)
        assert sim.control("gap", conn=c.session_conn_id(sim))["affected"] == 3
        c.drain(0.5)
        assert sorted(b[0] for b in c.chain_breaks) == [0, 1, 2]


@pytest.mark.parametrize("kind", ["not_json", "bad_body", "wrong_types", "unknown_type"])
def test_malformed_frames(sim, kind: str) -> None:
    faults = FaultCounts(sim)
    with Client(sim.ws_url) as c:
        c.subscribe(1)
        c.drain(0.1)
        cid = c.session_conn_id(sim)
        assert sim.control("malformed", kind=kind, count=2, conn=cid)["affected"] == 2
        c.drain(0.4)
        odd = [f for f in c.frames[1:] if not isinstance(f, dict)
               or f.get("type") not in ("subscribed/order_book", "update/order_book")
               or not isinstance(f.get("order_book"), dict)
               or "nonce" not in f["order_book"]
               or any(not isinstance(lv.get("size"), str)
                      for lv in f["order_book"]["asks"] + f["order_book"]["bids"])]
        assert len(odd) == 2
        if kind == "not_json":
            assert all(isinstance(f, str) for f in odd)
            with pytest.raises(ValueError):
                json.loads(odd[0])
        elif kind == "bad_body":
            assert shape(odd[0]) == shape(fixture("ws_order_book_subscribed_bad_body.json"))
            assert odd[0]["order_book"] == 42 and odd[0]["channel"] == "order_book:1"
        elif kind == "wrong_types":
            assert isinstance(odd[0]["order_book"]["asks"][0]["price"], float)  # number, not string
            assert "nonce" not in odd[1]["order_book"] and "size" not in odd[1]["order_book"]["asks"][0]
        else:
            assert {f["type"] for f in odd} == {"update/quantum_flux"}
        # the real stream goes on, chain intact, for a client that skips bad frames
        assert c.chain_breaks == [] and len(updates(c.frames)) > 5
        rec = sim.record(market_id=1, conn=cid)
        assert [r["type"] for r in rec if not r["valid"]] == [f"malformed/{kind}"] * 2
    assert faults.delta() == {f"malformed_{kind}": 2}


def test_stall_sends_nothing_not_even_pongs_then_resumes(sim) -> None:
    faults = FaultCounts(sim)
    with Client(sim.ws_url) as c:
        c.subscribe(2)
        c.drain(0.1)
        sim.control("stall", seconds=0.8, conn=c.session_conn_id(sim))
        t0 = time.monotonic()
        c.drain(0.05)  # frames written before the stall began
        c.send({"type": "ping"})
        quiet = c.drain(0.5)
        assert quiet == []
        pong = c.wait_for(lambda f: f.get("type") == "pong", timeout=2)
        assert pong and time.monotonic() - t0 >= 0.7
        c.drain(0.3)
        assert c.chain_breaks == []  # stalled frames were held, not lost
    assert faults.delta() == {"stall": 1}


def test_a_stalled_server_does_not_answer_a_close_frame_until_the_stall_ends(sim) -> None:
    c = Client(sim.ws_url)
    c.subscribe(0)
    cid = c.session_conn_id(sim)
    sim.control("stall", seconds=0.6, conn=cid)
    t0 = time.monotonic()
    c.close()  # the close handshake completes only when the stall is over
    assert 0.4 < time.monotonic() - t0 < 1.9
    conn = next(x for x in sim.state()["connections"] if x["conn"] == cid)
    assert conn["open"] is False and conn["close_code"] == 1000


def test_refuse_subscriptions_by_count_and_by_time(sim) -> None:
    faults = FaultCounts(sim)
    with Client(sim.ws_url) as c:
        sim.control("refuse_subscriptions", count=2)
        c.subscribe(0, wait=False)
        assert c.error() == fixture("ws_order_book_subscribe_failed.json")  # the captured frame
        c.subscribe(1, wait=False)
        assert c.error()["code"] == 30012
        assert c.subscribe(1)["channel"] == "order_book:1"  # count used up
        sim.control("refuse_subscriptions", seconds=0.3)
        c.subscribe(2, wait=False)
        assert c.error() == {"type": "error", "code": 30012, "channel": "order_book:2",
                             "message": "failed to subscribe"}
        time.sleep(0.35)
        assert c.subscribe(2)["type"] == "subscribed/order_book"
    assert faults.delta() == {"refuse_subscriptions": 3}


def test_rest_fail_and_delay(sim) -> None:
    faults = FaultCounts(sim)
    sim.control("rest_fail", status=429, count=2)
    for _ in range(2):
        status, _, body = sim.request("GET", "/api/v1/orderBooks")
        assert (status, body) == (429, {"code": 23000, "message": "Too Many Requests!"})
    assert sim.request("GET", "/api/v1/orderBooks")[0] == 200
    sim.control("rest_fail", status=500, count=1)
    assert sim.request("GET", "/api/v1/orderBookDetails")[0] == 500
    assert sim.request("GET", "/api/v1/orderBookDetails")[0] == 200
    sim.control("rest_delay", seconds=0.4, count=1)
    t0 = time.monotonic()
    assert sim.request("GET", "/api/v1/orderBooks")[0] == 200
    assert time.monotonic() - t0 >= 0.4
    t0 = time.monotonic()
    sim.request("GET", "/api/v1/orderBooks")
    assert time.monotonic() - t0 < 0.3
    assert faults.delta() == {"rest_fail": 3, "rest_delay": 1}


def test_reset_clears_pending_faults(sim) -> None:
    sim.control("rest_fail", status=500, count=5)
    sim.control("refuse_subscriptions", count=5)
    with Client(sim.ws_url) as c:
        c.subscribe(0, wait=False)
        assert c.error()["code"] == 30012
        sim.control("stall", seconds=30)
        sim.control("reset")
        assert c.subscribe(0)["type"] == "subscribed/order_book"
    assert sim.request("GET", "/api/v1/orderBooks")[0] == 200


def test_rate_step_and_status_controls(sim) -> None:
    with Client(sim.ws_url) as c:
        c.subscribe(0)
        sim.control("rate", rate=0)
        sim.wait_flushed()
        c.drain(0.1)
        assert updates(c.drain(0.3)) == []
        assert sim.control("step", market_id=0, n=3)["affected"] == 3
        assert len(updates(c.drain(0.3))) == 3
        sim.control("rate", rate=100)
        assert len(updates(c.drain(0.3))) > 10
        assert c.chain_breaks == []
    assert sim.state()["rate"] == 100
    try:
        sim.control("set_status", market_id=2, status="inactive")
        rows = sim.get("/api/v1/orderBooks?market_id=2")["order_books"]
        assert rows[0]["status"] == "inactive"
    finally:
        sim.control("set_status", market_id=2, status="active")


def test_bad_control_requests(sim) -> None:
    for action, body, code in (("nope", {}, 404), ("rate", {}, 400), ("rate", {"rate": -1}, 400),
                               ("malformed", {"kind": "weird"}, 400),
                               ("gap", {"market_id": 12345}, 400), ("rest_fail", {"status": 404}, 400),
                               ("close", {"code": 1005}, 400), ("close", {"conn": "x"}, 400),
                               ("close", {"reason": "x" * 124}, 400)):
        status, _, resp = sim.request("POST", f"/_sim/{action}", body)
        assert status == code and resp["ok"] is False, action
    with pytest.raises(SimulatorError):
        sim.control("nope")
