"""Protocol errors and Lighter's limits as one connection meets them
(sharing between connections and IPs: test_sim_ip_limits.py)."""
from __future__ import annotations

from simclient import Client, wait_until

SIM_ARGS = dict(markets=5, rate=5, seed=4, extra_args=["--max-subs", "3", "--snapshot-delay", "0"])


def test_protocol_errors(module_sim) -> None:
    with Client(module_sim.ws_url) as c:
        c.send("{not json")
        assert c.error() == {"type": "error", "code": 30000, "message": "invalid json"}
        c.send({"type": "subscribe_all"})
        assert c.error()["code"] == 30001
        c.send({"type": "jsonapi/sendtx", "data": {}})  # not simulated: invalid here
        assert c.error()["code"] == 30001
        c.unsubscribe(1)
        assert c.error() == {"type": "error", "code": 30002, "channel": "order_book:1",
                             "message": "not subscribed"}
        for bad in ("order_book/999", "order_book:1", "trade/0", "order_book/x", 7):
            c.send({"type": "subscribe", "channel": bad})
            err = c.error()
            assert err["code"] == 30005 and err["message"] == "invalid channel", bad
        c.subscribe(1)
        c.send({"type": "subscribe", "channel": "order_book/1"})
        assert c.error() == {"type": "error", "code": 30003, "channel": "order_book:1",
                             "message": "already subscribed"}
        c.subscribe(2)
        c.subscribe(3)
        c.send({"type": "subscribe", "channel": "order_book/4"})
        assert c.error()["code"] == 23001  # --max-subs 3
        c.unsubscribe(3)
        c.subscribe(4)  # room again after an unsubscribe
        c.send({"type": "ping"})
        c.wait_for(lambda f: f.get("type") == "pong")
    errors = module_sim.state()["errors_sent"]
    assert {code for code, n in errors.items() if n} == {
        "30000", "30001", "30002", "30003", "30005", "23001"}
    assert errors["30001"] == 2 and errors["30005"] == 5 and errors["30009"] == 0


def test_message_limit_answers_30009_then_closes(start_sim) -> None:
    sim = start_sim(markets=2, rate=0, seed=1,
                    extra_args=["--msg-limit", "5", "--msg-window", "60", "--limit-close-after", "3"])
    with Client(sim.ws_url) as c:
        for _ in range(5):
            c.send({"type": "ping"})
        for _ in range(5):
            assert c.read() == {"type": "pong"}
        c.send({"type": "ping"})
        assert c.error() == {"type": "error", "code": 30009, "message": "too many websocket messages"}
        c.send({"type": "pong"})  # pongs count as well: refused like any other message
        assert c.error()["code"] == 30009
        c.send({"type": "ping"})
        code, reason = c.wait_closed()  # the 3rd breach in the window closes
        assert (code, reason) == (1008, "too many websocket messages")
    assert sim.state()["errors_sent"]["30009"] == 3


def test_pongs_count_against_the_budget(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--msg-limit", "3"])
    with Client(sim.ws_url) as c:
        for _ in range(2):
            c.send({"type": "pong"})  # unsolicited pongs are counted and otherwise ignored
        c.send({"type": "ping"})
        assert c.read() == {"type": "pong"}
        c.send({"type": "ping"})
        assert c.error()["code"] == 30009
    assert sim.state()["ips"]["127.0.0.1"]["messages_in_window"] == 3


def test_message_window_rolls(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--msg-limit", "2", "--msg-window", "0.5"])
    with Client(sim.ws_url) as c:
        for _ in range(3):
            c.send({"type": "ping"})
        assert [c.read(), c.read(), c.read()] == [{"type": "pong"}] * 2 + [
            {"type": "error", "code": 30009, "message": "too many websocket messages"}]
        wait_until(lambda: sim.state()["ips"]["127.0.0.1"]["messages_in_window"] == 0,
                   what="the 0.5 s window rolling past both pings")
        c.send({"type": "ping"})
        assert c.read() == {"type": "pong"}


def test_inflight_limit(start_sim) -> None:
    sim = start_sim(markets=6, rate=0, seed=1,
                    extra_args=["--max-inflight", "3", "--snapshot-delay", "0.3"])
    with Client(sim.ws_url) as c:
        for mid in range(5):
            c.subscribe(mid, wait=False)
        err = c.error()
        assert err == {"type": "error", "code": 30010, "channel": "order_book:3",
                       "message": "too many inflight messages"}
        assert c.error()["channel"] == "order_book:4"
        snaps = [c.wait_for(lambda f: f.get("type") == "subscribed/order_book", 3) for _ in range(3)]
        assert [s["channel"] for s in snaps] == ["order_book:0", "order_book:1", "order_book:2"]
        c.subscribe(3)  # acked snapshots free the slots


def test_connection_limit(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--max-connections", "1"])
    with Client(sim.ws_url) as first:
        second = Client(sim.ws_url, expect_connected=False)
        assert second.read() == {"type": "error", "code": 23003, "message": "too many connections"}
        assert second.wait_closed()[0] == 1008
        first.send({"type": "ping"})
        assert first.read() == {"type": "pong"}


def test_server_ping_and_no_pong_close(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1,
                    extra_args=["--ping-interval", "0.2", "--pong-timeout", "0.3"])
    with Client(sim.ws_url) as polite, Client(sim.ws_url) as silent:
        for _ in range(3):  # a client that answers stays connected
            assert polite.read(timeout=2) == {"type": "ping"}
            polite.send({"type": "pong"})
        assert silent.read(timeout=2) == {"type": "ping"}
        assert silent.wait_closed(timeout=3) == (1008, "no pong")
        assert polite.read(timeout=2) == {"type": "ping"}
    closes = [c for c in sim.state()["connections"] if c["close_reason"] == "no pong"]
    assert len(closes) == 1
