"""Talking to the tracker shards from the Worker: one Durable Object per shard."""

from __future__ import annotations

import asyncio
import json

from tracker import control, sql
from tracker.config import Config
from tracker.shardstats import combine  # noqa: F401  (re-exported for the API)

from . import d1
from .log import emit


def shard_name(shard: int) -> str:
    return f"shard-{shard}"


def stub(env, shard: int):
    return env.TRACKER.getByName(shard_name(shard))


async def call(env, shard: int, path: str, method: str = "GET") -> dict:
    response = await stub(env, shard).fetch(f"https://tracker{path}", method=method)
    body = json.loads(await response.text())
    if int(response.status) != 200:
        raise RuntimeError(body.get("error") if isinstance(body, dict) else f"HTTP {response.status}")
    return body


async def call_all(env, config: Config, path: str, method: str = "GET", skip: int | None = None) -> list[dict]:
    """Every shard's answer; a shard that fails is `{"shard": n, "failed": why}`."""
    targets = [s for s in range(config.shards) if s != skip]
    results = await asyncio.gather(*(call(env, s, path, method) for s in targets), return_exceptions=True)
    return [_failed(s, r) if isinstance(r, Exception) else r for s, r in zip(targets, results)]


async def control_all(env, config: Config, action: str) -> list[dict]:
    """start/stop every shard, and stop the objects beyond SHARDS that tracking_stats
    knows (left tracking when SHARDS was lowered)."""
    try:
        known = [r["shard"] for r in await d1.query(env.DB, sql.LIGHTER.SELECT_KNOWN_SHARDS)]
    except Exception:  # D1 down: the current shards still get the action
        known = []
    return await control.fan_out(action, config.shards, known, lambda s, a: call(env, s, f"/{a}", "POST"))


def _failed(shard: int, exc: Exception) -> dict:
    emit("error", "API", f"tracker shard {shard} unreachable: {type(exc).__name__}: {exc}", event="tracker_unreachable")
    return {"shard": shard, "failed": "unreachable"}
