"""Paradex mode: per-IP connection limits (HTTP 429 on the upgrade), HeartbeatEvents on
an idle connection, WebSocket protocol pings and the pong deadline."""
from __future__ import annotations

import asyncio
import http.client
import struct
import time

import aiohttp
import pytest
from pxclient import PxClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

IP2 = "127.0.0.2"
SBE = "/v1?sbeSchemaId=1&sbeSchemaVersion=1"


def _refused(url: str, source: str | None = None) -> int:
    extra = {"source_address": (source, 0)} if source else {}
    with pytest.raises(InvalidStatus) as e:
        connect(url, open_timeout=5, **extra).__enter__()
    return e.value.response.status_code


def test_default_twenty_new_connections_a_second(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1)
    # attempts are counted before the upgrade: plain requests on one keep-alive connection
    # are 21 attempts within a few milliseconds (tried again on a machine so busy that
    # they took most of a second)
    for attempt in range(3):
        http_conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
        statuses = []
        t0 = time.monotonic()
        for _ in range(21):
            http_conn.request("GET", SBE)
            resp = http_conn.getresponse()
            body = resp.read()
            statuses.append(resp.status)
        took = time.monotonic() - t0
        http_conn.close()
        if took < 0.8:
            break
        time.sleep(1.05)
    assert statuses[:20] == [400] * 20  # counted, then not a WebSocket handshake
    assert statuses[20] == 429 and b"TOO_MANY_CONNECTIONS" in body
    st = sim.state()
    assert st["errors_sent"]["TOO_MANY_CONNECTIONS"] >= 1
    assert st["ips"]["127.0.0.1"]["new_connections_in_window"] == 21 * (attempt + 1)
    time.sleep(1.05)  # the second is over; 22 of 600 in the minute
    with PxClient(sim.ws_url) as c:
        c.subscribe("BTC-USD-PERP")


def test_per_second_and_per_window_limits_are_per_ip(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1,
                    extra_args=["--max-new-connections-per-second", "3", "--max-new-connections", "5"])
    clients = [PxClient(sim.ws_url) for _ in range(3)]
    try:
        assert _refused(sim.ws_url) == 429  # the 4th in a second
        with PxClient(sim.ws_url, source=IP2) as other:  # another IP has its own allowance
            other.subscribe("BTC-USD-PERP")
        time.sleep(1.05)
        clients.append(PxClient(sim.ws_url))  # 5th attempt in the window (the refused one counts)
        assert _refused(sim.ws_url) == 429  # 6th: over 5 a window
        st = sim.state()
        assert st["ips"]["127.0.0.1"] == {"open_connections": 4, "new_connections_in_window": 6,
                                          "new_connections_last_second": 2}
        assert st["ips"][IP2]["new_connections_in_window"] == 1
        assert st["errors_sent"]["TOO_MANY_CONNECTIONS"] == 2
        assert "upgrade from 127.0.0.1 refused: too many new connections" in sim.output()
        for c in clients:  # the admitted ones work
            c.subscribe("BTC-USD-PERP")
    finally:
        for c in clients:
            c.close()


def test_open_connection_cap_when_configured(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1, extra_args=["--max-connections", "2"])
    with PxClient(sim.ws_url), PxClient(sim.ws_url):
        assert _refused(sim.ws_url) == 429
    with PxClient(sim.ws_url) as c:  # closed ones free their place
        c.subscribe("BTC-USD-PERP")


def test_heartbeat_on_an_idle_connection_only(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1,
                    extra_args=["--heartbeat-interval", "0.3", "--ping-interval", "0"])
    with PxClient(sim.ws_url) as c:
        t0 = time.monotonic()
        hb = c.wait_for(lambda f: isinstance(f, dict) and f.get("kind") == "heartbeat", timeout=2)
        assert time.monotonic() - t0 >= 0.25
        raw = c.binary[-1]
        assert len(raw) == 24 and struct.unpack_from("<HHHH", raw) == (16, 40, 1, 1)
        assert hb["seq"] == 0 and hb["ts"] % 1000 == 0 and abs(hb["ts"] / 1e6 - time.time()) < 5
        c.subscribe("BTC-USD-PERP")
        c.drain(1.0)
        assert 2 <= len(c.heartbeats) <= 5  # still idle: the book is frozen
        sim.control("rate", rate=50)
        c.drain(0.2)
        n = len(c.heartbeats)
        c.drain(0.8)
        assert len(c.heartbeats) == n  # frames flowing: no heartbeat
        assert c.gaps == []  # heartbeats are not book frames
    assert sim.state()["heartbeats_sent"] >= 3


async def _ping_client(url: str, answer: bool, seconds: float) -> tuple[int, list, object]:
    pings = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, autoping=False) as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    msg = await ws.receive(timeout=max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.PING:
                    pings.append(time.monotonic())
                    if answer:
                        await ws.pong(msg.data)
                elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return len(pings), [msg.data, msg.extra], ws.close_code
            return len(pings), [], ws.close_code


def test_protocol_pings_and_the_pong_deadline(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1,
                    extra_args=["--ping-interval", "0.3", "--pong-timeout", "0.3", "--heartbeat-interval", "0"])
    n, closed, _ = asyncio.run(_ping_client(sim.ws_url, answer=True, seconds=1.3))
    assert n >= 3 and closed == []  # answered: still open
    n, closed, _ = asyncio.run(_ping_client(sim.ws_url, answer=False, seconds=3))
    assert n == 1 and closed == [1008, "no pong"]
    st = sim.state()
    assert st["no_pong_closes"] == 1
    assert [c["close_reason"] for c in st["connections"] if c["close_code"] == 1008] == ["no pong"]
    # a ping from the client is answered with a protocol pong
    with PxClient(sim.ws_url) as c:
        c.ws.ping(b"hi").wait(2)
