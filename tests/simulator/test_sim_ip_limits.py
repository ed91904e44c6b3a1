"""Lighter's limits are per client IP: connections from one address share the message
and in-flight budgets and the connection allowances; another address has its own.
A second "IP" is a client bound to the loopback source address 127.0.0.2."""
from __future__ import annotations

from lighter_sim.config import SimConfig, parse_args
from simclient import Client, wait_until

IP1, IP2 = "127.0.0.1", "127.0.0.2"
BUSY = {"type": "error", "code": 30009, "message": "too many websocket messages"}
REFUSED = {"type": "error", "code": 23003, "message": "too many connections"}


def _ips(sim) -> dict:
    return sim.state()["ips"]


def test_defaults_are_lighters_documented_limits(start_sim) -> None:
    # the reference: 200 messages a minute, 50 in flight, 500 subscriptions per
    # connection, 255 connections and 255 new connections a minute, all per IP
    lighter = {"per": "ip", "messages": 200, "message_window_s": 60.0, "in_flight": 50,
               "subscriptions_per_connection": 500, "connections": 255,
               "new_connections": 255, "connection_window_s": 60.0}
    cfg = parse_args([])
    assert (cfg.limits_per, cfg.msg_limit, cfg.msg_window, cfg.max_inflight, cfg.max_subs,
            cfg.max_connections, cfg.max_new_connections, cfg.conn_window) == (
        "ip", 200, 60.0, 50, 500, 255, 255, 60.0)
    assert SimConfig() == cfg
    sim = start_sim(markets=1, rate=0, seed=1)
    assert sim.state()["limits"] == lighter
    assert parse_args(["--max-messages-per-minute", "20"]).msg_limit == 20


def test_stream_path_ignores_its_query_string(start_sim) -> None:
    sim = start_sim(markets=2, rate=0, seed=1)
    with Client(sim.ws_url + "?readonly=true") as ro, Client(sim.ws_url + "?x=1&readonly=true") as other:
        for c in (ro, other):
            assert c.connected["type"] == "connected"
            snap = c.subscribe(1)
            assert snap["channel"] == "order_book:1" and snap["order_book"]["begin_nonce"] == 0
        sim.control("step", market_id=1, n=1)
        for c in (ro, other):
            upd = c.wait_for(lambda f: f.get("type") == "update/order_book")
            assert upd["order_book"]["begin_nonce"] == snap["order_book"]["nonce"]
            assert c.chain_breaks == []
    conns = sim.state()["connections"]
    assert [c["readonly"] for c in conns] == [True, True]


def test_message_budget_is_shared_by_one_ips_connections(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--msg-limit", "4"])
    with Client(sim.ws_url) as a, Client(sim.ws_url) as b, Client(sim.ws_url, source=IP2) as c:
        for _ in range(2):
            a.send({"type": "ping"})
            assert a.read() == {"type": "pong"}
        b.send({"type": "pong"})  # pongs count too
        b.send({"type": "ping"})
        assert b.read() == {"type": "pong"}
        b.send({"type": "ping"})  # 5th message from 127.0.0.1: refused, not answered
        assert b.read() == BUSY
        a.send({"type": "ping"})
        assert a.read() == BUSY
        for _ in range(4):  # 127.0.0.2 has a budget of its own
            c.send({"type": "ping"})
            assert c.read() == {"type": "pong"}
        c.send({"type": "ping"})
        assert c.read() == BUSY
        st = sim.state()
        assert {ip: u["messages_in_window"] for ip, u in st["ips"].items()} == {IP1: 4, IP2: 4}
        assert {c["remote"] for c in st["connections"]} == {IP1, IP2}
        assert st["errors_sent"]["30009"] == 3
        assert {k for k, n in st["errors_sent"].items() if n} == {"30009"}
        # each connection says which refusals it got, and when (a benchmark attributes them)
        got = {c["conn"]: {k: v["count"] for k, v in c["errors_sent"].items()} for c in st["connections"]}
        assert list(got.values()) == [{"30009": 1}] * 3  # a (2 pings + 1 refused), b, c
        assert all(v["first_ms"] <= v["last_ms"] for c in st["connections"] for v in c["errors_sent"].values())
        sim.control("reset")  # clears the error counter (not the budgets)
        st = sim.state()
        assert set(st["errors_sent"].values()) == {0} and "30009" in st["errors_sent"]
        assert st["ips"][IP1]["messages_in_window"] == 4


def test_per_connection_mode_gives_each_socket_its_own_budget(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1,
                    extra_args=["--msg-limit", "2", "--limits-per", "connection"])
    with Client(sim.ws_url) as a, Client(sim.ws_url) as b:
        for c in (a, b):
            for _ in range(2):
                c.send({"type": "ping"})
                assert c.read() == {"type": "pong"}
            c.send({"type": "ping"})
            assert c.read() == BUSY
        st = sim.state()
        assert st["limits"]["per"] == "connection"
        assert st["ips"][IP1]["messages_in_window"] == 4  # still reported per IP


def test_in_flight_budget_is_shared_by_one_ips_connections(start_sim) -> None:
    # snapshots take 30 s: every accepted subscribe stays in flight for the whole test
    sim = start_sim(markets=6, rate=0, seed=1,
                    extra_args=["--max-inflight", "3", "--snapshot-delay", "30"])

    def sub_then_ping(c: Client, mids: list[int]) -> list[dict]:
        """Frames answered before the pong: errors only, since snapshots are held back."""
        for mid in mids:
            c.subscribe(mid, wait=False)
        c.send({"type": "ping"})
        out = []
        while (f := c.read()) != {"type": "pong"}:
            out.append(f)
        return out

    with Client(sim.ws_url) as a, Client(sim.ws_url) as b, Client(sim.ws_url, source=IP2) as c:
        assert sub_then_ping(a, [0, 1]) == []
        assert sub_then_ping(b, [2, 3]) == [
            {"type": "error", "code": 30010, "channel": "order_book:3",
             "message": "too many inflight messages"}]
        assert sub_then_ping(c, [3, 4, 5]) == []  # 127.0.0.2: three in flight of its own
        assert {ip: u["in_flight"] for ip, u in _ips(sim).items()} == {IP1: 3, IP2: 3}
        a.unsubscribe(0)  # withdrawing a pending subscribe frees a slot for the whole IP
        assert sub_then_ping(b, [3]) == []
        assert _ips(sim)[IP1]["in_flight"] == 3
        assert sim.state()["errors_sent"]["30010"] == 1
        # `asked`: every market a connection sent a subscribe for, the refused 3 included
        assert [c["asked"] for c in sim.state()["connections"]] == [[0, 1], [2, 3], [3, 4, 5]]


def test_subscriptions_are_limited_per_connection(start_sim) -> None:
    sim = start_sim(markets=502, rate=0, seed=1, extra_args=[
        "--quiet", "--levels", "4", "--snapshot-delay", "0", "--msg-limit", "1000",
        "--max-inflight", "1000"])
    with Client(sim.ws_url) as a, Client(sim.ws_url) as b:
        for mid in range(501):
            a.subscribe(mid, wait=False)
        a.send({"type": "ping"})
        frames = []
        while (f := a.read()) != {"type": "pong"}:
            frames.append(f)
        assert [f["channel"] for f in frames[:500]] == [f"order_book:{m}" for m in range(500)]
        assert {f["type"] for f in frames[:500]} == {"subscribed/order_book"}
        assert frames[500:] == [{"type": "error", "code": 23001, "channel": "order_book:500",
                                 "message": "too many subscriptions"}]
        b.subscribe(500)  # the same IP's next connection has its own 500
        b.subscribe(501)
        assert sim.state()["errors_sent"]["23001"] == 1


def test_open_connections_are_limited_per_ip(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--max-connections", "2"])
    with Client(sim.ws_url) as a, Client(sim.ws_url):
        third = Client(sim.ws_url, expect_connected=False)
        assert third.read() == REFUSED  # no "connected" frame first
        assert third.wait_closed() == (1008, "too many connections")
        with Client(sim.ws_url, source=IP2) as other:  # another IP is not affected
            assert other.connected["type"] == "connected"
            assert {ip: u["open_connections"] for ip, u in _ips(sim).items()} == {IP1: 2, IP2: 1}
        a.close()
        wait_until(lambda: _ips(sim)[IP1]["open_connections"] == 1, what="the close counted")
        with Client(sim.ws_url) as again:  # a closed connection frees its place
            assert again.connected["type"] == "connected"
    st = sim.state()
    assert st["errors_sent"]["23003"] == 1
    assert st["ips"][IP1]["new_connections_in_window"] == 4  # the refused attempt counts


def test_new_connections_a_minute_are_limited_per_ip(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1,
                    extra_args=["--max-new-connections", "3", "--conn-window", "2"])
    for _ in range(3):
        with Client(sim.ws_url) as c:
            assert c.connected["type"] == "connected"
    fourth = Client(sim.ws_url, expect_connected=False)  # none open, but 3 opened this window
    assert fourth.read() == REFUSED
    assert fourth.wait_closed() == (1008, "too many new connections")
    with Client(sim.ws_url, source=IP2) as other:
        assert other.connected["type"] == "connected"
    assert _ips(sim)[IP1]["new_connections_in_window"] == 4
    # the window rolls: once fewer than 3 attempts are left in it, 127.0.0.1 may connect again
    wait_until(lambda: _ips(sim)[IP1]["new_connections_in_window"] < 3, timeout=5,
               what="the 2 s connection window rolling")
    with Client(sim.ws_url) as c:
        assert c.connected["type"] == "connected"
    assert sim.state()["errors_sent"]["23003"] == 1


def test_errors_counter_counts_rest_429s(start_sim) -> None:
    sim = start_sim(markets=1, rate=0, seed=1, extra_args=["--rest-limit", "1"])
    assert sim.request("GET", "/api/v1/orderBooks")[0] == 200
    status, _, body = sim.request("GET", "/api/v1/orderBooks")
    assert (status, body) == (429, {"code": 23000, "message": "Too Many Requests!"})
    assert sim.state()["errors_sent"]["23000"] == 1
    sim.control("reset")
    assert sim.state()["errors_sent"]["23000"] == 0
