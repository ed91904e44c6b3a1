"""/ws under wrangler dev: the DashboardHub Durable Object with many sockets (issue 12).

- only the dashboard's own origin (or ALLOWED_ORIGINS) may open it: else 403 JSON;
- stats are pushed to every socket every LIVE_PUSH_SECONDS (1 s in the test session)
  with ONE stats fetch from the shards per push, whatever the number of sockets (the
  hub's counters say so), and the pushes say their period;
- log lines of both shards reach every socket, relayed in batches;
- over MAX_LIVE_SOCKETS (default 100), a socket is accepted and closed at once
  with code 1013 and a reason.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import requests
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import SHARDS

MAX_LIVE_SOCKETS = 100  # the default of tracker.config.Config.max_live_sockets


def ws_url(worker) -> str:
    return worker.url.replace("http://", "ws://") + "/ws"


async def next_of(ws, kind: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


async def drain(ws, quiet: float = 0.3) -> None:
    """Read what is already waiting on `ws`, until nothing more comes for `quiet` seconds."""
    while True:
        try:
            await asyncio.wait_for(ws.recv(), quiet)
        except asyncio.TimeoutError:
            return


@pytest.mark.parametrize("origin", ["https://evil.example", "null", None])
def test_a_foreign_or_missing_origin_is_refused(worker, origin):
    async def attempt():
        kwargs = {"origin": origin} if origin else {}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(worker), open_timeout=20, **kwargs):
                pass
        return refused.value.response

    response = asyncio.run(attempt())
    assert response.status_code == 403
    assert "error" in json.loads(response.body)


def test_without_upgrade_is_426(worker):
    r = requests.get(worker.url + "/ws", headers={"Origin": worker.url}, timeout=30)
    assert r.status_code == 426 and r.json()["error"]


def test_many_sockets_one_stats_fetch_per_push_logs_in_batches_and_a_cap(worker):
    async def scenario():
        sockets = []
        try:
            for _ in range(MAX_LIVE_SOCKETS):
                sockets.append(await connect(ws_url(worker), origin=worker.url, open_timeout=30))
            hellos = await asyncio.gather(*(next_of(ws, "hello") for ws in sockets))
            assert all("stats" in h and isinstance(h["log"], list) for h in hellos)

            # Pushes for ~3 s: every socket gets them, and the hub fetched stats once per push.
            # Counted from a push after every hello: the pushes socket 0 got while the others
            # connected may predate a connect's own fetch (a greeting with stale stats fetches).
            await drain(sockets[0])
            first = await next_of(sockets[0], "stats")
            for _ in range(3):
                last = await next_of(sockets[0], "stats")
            pushes = last["hub"]["pushes"] - first["hub"]["pushes"]
            fetches = last["hub"]["statsFetches"] - first["hub"]["statsFetches"]
            assert pushes >= 3 and fetches == pushes, last["hub"]
            assert last["hub"]["pushEveryMs"] == 1000  # the session's LIVE_PUSH_SECONDS
            assert last["hub"]["sockets"] == MAX_LIVE_SOCKETS
            others = await asyncio.gather(*(next_of(ws, "stats") for ws in sockets[1:]))
            assert all(o["stats"]["shards"] and len(o["stats"]["shards"]) == SHARDS for o in others)

            # Log lines from every shard reach every socket, a batch per message.
            assert worker.admin_post("/api/stop").status_code == 200
            assert worker.admin_post("/api/start").status_code == 200
            seen: dict[int, set[int]] = {}

            async def collect(i, ws):
                deadline = time.monotonic() + 30
                shards = seen.setdefault(i, set())
                while time.monotonic() < deadline and len(shards) < SHARDS:
                    batch = await next_of(ws, "logs", timeout=max(0.1, deadline - time.monotonic()))
                    assert batch["entries"] and all("message" in e for e in batch["entries"])
                    shards.update(e["shard"] for e in batch["entries"])

            await asyncio.gather(collect(0, sockets[0]), collect(1, sockets[-1]))
            assert seen[0] == seen[1] == set(range(SHARDS)), seen

            # One more than the cap: accepted, then closed with 1013 and a reason.
            extra = await connect(ws_url(worker), origin=worker.url, open_timeout=30)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(extra.recv(), 15)
            assert closed.value.rcvd.code == 1013 and "too many" in closed.value.rcvd.reason
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)

    asyncio.run(scenario())


def test_the_alarm_stops_with_the_last_socket_and_resumes_with_the_next(worker):
    async def scenario():
        async with connect(ws_url(worker), origin=worker.url, open_timeout=30) as ws:
            await next_of(ws, "hello")
            last = await next_of(ws, "stats")
        # Nobody connected: at most the alarm already set fires (and finds no socket).
        # Absence is what is measured here, so a span of time is the only way.
        await asyncio.sleep(3.5)
        async with connect(ws_url(worker), origin=worker.url, open_timeout=30) as ws:
            hello = await next_of(ws, "hello")
            assert hello["hub"]["alarms"] - last["hub"]["alarms"] <= 1, (last["hub"], hello["hub"])
            again = await next_of(ws, "stats")  # and pushes resume for the new socket
            assert again["hub"]["pushes"] > last["hub"]["pushes"]

    asyncio.run(scenario())
