"""Talking to the tracker shards from the Worker: one Durable Object per exchange and shard.

Lighter's shards are objects of the TRACKER binding (class LighterTracker), Paradex's
of PARADEX_TRACKER (class ParadexTracker); each exchange has its own SHARDS
(`SHARDS`, `PARADEX_SHARDS`) and its own stats table.
"""

from __future__ import annotations

import asyncio
import json

from tracker import control
from tracker.config import Config
from tracker.exchange import by_name
from tracker.shardstats import combine  # noqa: F401  (re-exported for the API)

from . import d1
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


async def call_all(env, config: Config, path: str, method: str = "GET", skip: int | None = None,
                   exchange: str = "lighter") -> list[dict]:
    """Every shard's answer; a shard that fails is `{"shard": n, "failed": why}`."""
    targets = [s for s in range(config.for_exchange(exchange).shards) if s != skip]
    results = await asyncio.gather(*(call(env, s, path, method, exchange) for s in targets), return_exceptions=True)
    return [_failed(s, r, exchange) if isinstance(r, Exception) else r for s, r in zip(targets, results)]


async def control_all(env, config: Config, action: str, exchange: str = "lighter",
                      enabled: bool = True) -> list[dict]:
    """start/stop every shard of one exchange, and stop the objects beyond its SHARDS
    that its stats table knows (left tracking when SHARDS was lowered). A disabled
    exchange: only the shards its stats table knows are stopped (none is created)."""
    try:
        known = [r["shard"] for r in await d1.query(env.DB, by_name(exchange).sql.SELECT_KNOWN_SHARDS)]
    except Exception:  # D1 down: the current shards still get the action
        known = []
    shards = config.for_exchange(exchange).shards if enabled else 0
    return await control.fan_out(action, shards, known,
                                 lambda s, a, body=None: call(env, s, f"/{a}", "POST", exchange, body))


def _failed(shard: int, exc: Exception, exchange: str = "lighter") -> dict:
    emit("error", "API", f"{exchange} tracker shard {shard} unreachable: {type(exc).__name__}: {exc}",
         event="tracker_unreachable")
    return {"shard": shard, "failed": "unreachable"}
