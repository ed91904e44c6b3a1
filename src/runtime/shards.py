"""Talking to the tracker shards from the Worker: one Durable Object per exchange and shard.

Lighter's shards are objects of the TRACKER binding (class LighterTracker), Paradex's
of PARADEX_TRACKER (class ParadexTracker); each exchange has its own SHARDS
(`SHARDS`, `PARADEX_SHARDS`) and its own stats table.
"""

from __future__ import annotations

import json

from tracker import control
from tracker.config import Config

from .log import emit

BINDINGS = {"lighter": "TRACKER", "paradex": "PARADEX_TRACKER"}


def shard_name(shard: int) -> str:
    return f"shard-{shard}"


def stub(env, shard: int, exchange: str = "lighter"):
    return getattr(env, BINDINGS[exchange]).getByName(shard_name(shard))


async def call(env, shard: int, path: str, method: str = "GET", exchange: str = "lighter",
               body: dict | None = None) -> dict:
    if body is None:
        response = await stub(env, shard, exchange).fetch(f"https://tracker{path}", method=method)
    else:
        response = await stub(env, shard, exchange).fetch(f"https://tracker{path}", method=method,
                                                          body=json.dumps(body))
    body = json.loads(await response.text())
    if int(response.status) != 200:
        raise RuntimeError(body.get("error") if isinstance(body, dict) else f"HTTP {response.status}")
    return body


async def call_all(env, config: Config, path: str, method: str = "GET", exchange: str = "lighter") -> list[dict]:
    """Every shard's answer; a shard that fails is `{"shard": n, "failed": "unreachable"}`."""
    return await control.ask_all(config.for_exchange(exchange).shards,
                                 lambda s: call(env, s, path, method, exchange),
                                 lambda s, exc: _failed(s, exc, exchange))


def _failed(shard: int, exc: Exception, exchange: str = "lighter") -> None:
    emit("error", "API", f"{exchange} tracker shard {shard} unreachable: {type(exc).__name__}: {exc}",
         event="tracker_unreachable")
