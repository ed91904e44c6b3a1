"""600 markets over 3 connections within Lighter's default limits, at 3,000 updates/s.
Lighter's limits are per IP, so each connection comes from its own loopback address
(127.0.0.1, .2, .3): 200 subscribes and 50 in flight each."""
from __future__ import annotations

import asyncio
import json
import time

import aiohttp

MARKETS, CONNS, RATE = 600, 3, 5.0


async def _connection(url: str, source_ip: str, ids: list[int], stats: dict,
                      measure: asyncio.Event, stop: asyncio.Event) -> None:
    last: dict[int, int] = {}
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0))
    async with aiohttp.ClientSession(connector=connector) as s, s.ws_connect(url) as ws:
        assert json.loads((await ws.receive()).data)["type"] == "connected"
        inflight, todo = 0, list(ids)
        while todo or inflight:  # paced like a good client: at most 50 subscribes in flight
            while todo and inflight < 50:
                await ws.send_str(json.dumps({"type": "subscribe", "channel": f"order_book/{todo.pop()}"}))
                inflight += 1
            f = json.loads((await ws.receive()).data)
            assert f["type"] != "error", f
            if f["type"] == "subscribed/order_book":
                inflight -= 1
            if "order_book" in f:
                last[int(f["channel"][11:])] = f["order_book"]["nonce"]
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.receive(), 0.2)
            except asyncio.TimeoutError:
                continue
            f = json.loads(msg.data)
            if f["type"] != "update/order_book":
                continue
            mid = int(f["channel"][11:])
            if f["order_book"]["begin_nonce"] != last[mid]:
                stats["breaks"] += 1
            last[mid] = f["order_book"]["nonce"]
            if measure.is_set():
                stats["updates"] += 1


async def _run(url: str) -> tuple[dict, float]:
    stats = {"updates": 0, "breaks": 0}
    measure, stop = asyncio.Event(), asyncio.Event()
    ids = list(range(MARKETS))
    tasks = [asyncio.ensure_future(_connection(url, f"127.0.0.{i + 1}", ids[i::CONNS], stats,
                                               measure, stop))
             for i in range(CONNS)]
    await asyncio.sleep(1.5)  # subscriptions: 200 per connection, 2 ms a snapshot
    measure.set()
    t0 = time.monotonic()
    await asyncio.sleep(1.5)
    elapsed = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*tasks)
    return stats, elapsed


def test_six_hundred_markets_stream_at_rate(start_sim) -> None:
    sim = start_sim(markets=MARKETS, rate=RATE, seed=1, extra_args=["--quiet"])
    stats, elapsed = asyncio.run(_run(sim.ws_url))
    assert stats["breaks"] == 0
    assert stats["updates"] / elapsed > 0.8 * MARKETS * RATE, stats
    st = sim.state()
    # each IP sent exactly 200 subscribes: Lighter's per-minute message limit per IP
    assert [c["received"] for c in st["connections"]] == [MARKETS // CONNS] * CONNS
    assert sorted(c["remote"] for c in st["connections"]) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert {ip: u["messages_in_window"] for ip, u in st["ips"].items()} == {
        f"127.0.0.{i + 1}": MARKETS // CONNS for i in range(CONNS)}
    assert sum(r["subscribers"] for r in st["markets"].values()) == 0  # all closed now
    assert set(st["errors_sent"].values()) == {0}
