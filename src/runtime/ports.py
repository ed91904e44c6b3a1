"""The real ports (tracker/ports.py) under the Workers runtime: js.Date, Durable
Object storage, D1, js.WebSocket, fetch, and the other shards' stubs.

Each is a thin adapter: no decision is taken here. `ctx.storage` arrives wrapped
by the workers SDK, which converts Python dicts and lists to JS and results back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import js
from workers import fetch

from tracker.ports import Statement, storage_calls

from . import d1, shards
from .breath import GateBreath
from .feed_socket import FeedSocket


class JsClock:
    def now_ms(self) -> int:
        return int(js.Date.now())


class DoStorage:
    def __init__(self, storage) -> None:
        self._s = storage

    async def get(self, key: str) -> str | None:
        value = await self._s.get(key)
        return None if value is None else str(value)

    async def put_many(self, entries: dict[str, str]) -> None:
        # One put() of an object is one transaction of at most 128 keys; more are cut
        # so that the last ones commit together (tracker/ports.py, Storage.put_many).
        for call in storage_calls(list(entries.items())):
            await self._s.put(dict(call))

    async def delete_many(self, keys: Sequence[str]) -> None:
        for call in storage_calls(list(keys)):
            await self._s.delete(call)

    async def set_alarm(self, at_ms: int) -> None:
        await self._s.setAlarm(at_ms)

    async def get_alarm(self) -> int | None:
        value = await self._s.getAlarm()
        return None if value is None else int(value)

    async def delete_alarm(self) -> None:
        await self._s.deleteAlarm()


class D1Database:
    def __init__(self, db) -> None:
        self._db = db

    async def query(self, sql: str, *params) -> list[dict]:
        return await d1.query(self._db, sql, *params)

    async def batch(self, statements: Sequence[Statement]) -> list[dict]:
        return await d1.run_batch(self._db, list(statements))


def socket_opener(ctx):
    """The tracker's `sockets` port for a Durable Object: its feed sockets breathe
    through the object's input gate (runtime/breath.py)."""
    breath = GateBreath(ctx)

    def open_socket(url, on_frame, on_open, on_down) -> FeedSocket:
        FeedSocket.count += 1
        return FeedSocket(url, FeedSocket.count, on_frame, on_open, on_down, breath)

    return open_socket


class JsHttp:
    """fetch(), aborted when its deadline passes (tracker/ports.py cancels the call):
    an abandoned request would otherwise keep one of the six connections an
    invocation may hold open (developers.cloudflare.com/workers/platform/limits/
    #simultaneous-open-connections), and later ones would queue behind it."""

    async def get_text(self, url: str) -> tuple[int, str]:
        async def call(signal):
            response = await fetch(url, signal=signal)
            return int(response.status), str(await response.text())

        return await _abortable(call)

    async def post_json(self, url: str, body: dict) -> int:
        async def call(signal):
            response = await fetch(url, method="POST", headers={"content-type": "application/json"},
                                   body=json.dumps(body), signal=signal)
            return int(response.status)

        return await _abortable(call)


async def _abortable(call):
    """Run `call(signal)`; if this task is cancelled, abort the request (the body being
    read included) before passing the cancellation on."""
    controller = js.AbortController.new()
    try:
        return await call(controller.signal)
    except asyncio.CancelledError:
        controller.abort()
        raise


class ShardPeers:
    def __init__(self, env, exchange: str = "lighter") -> None:
        self.env = env
        self.exchange = exchange

    async def send_markets(self, shard: int, payload: dict) -> None:
        response = await shards.stub(self.env, shard, self.exchange).fetch(
            "https://tracker/markets", method="POST", body=json.dumps(payload))
        if int(response.status) != 200:
            raise RuntimeError(f"shard {shard} answered HTTP {response.status}")


def spawn(log):
    """Run a coroutine in the background; its failure is logged, never lost."""

    def run(coro, what: str) -> asyncio.Future:
        task = asyncio.ensure_future(coro)

        def done(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is not None:
                log("error", "Tracker", "background_failed", f"{what} failed: {t.exception()!r}")

        task.add_done_callback(done)
        return task

    return run


def wasm_heap_bytes() -> int | None:
    """Size of this isolate's Pyodide linear memory: what counts toward the 128 MB limit
    for the Python side (it grows as Python allocates, and never shrinks)."""
    try:
        import pyodide_js

        return int(pyodide_js._module.HEAPU8.length)
    except Exception:  # not exposed by this runtime: report nothing rather than guess
        return None
