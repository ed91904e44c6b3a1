"""Talking to the tracker shards from the Worker: one Durable Object per shard."""

from __future__ import annotations

import asyncio
import json

from tracker.config import Config

# Counters that add up across shards in /api/stats.
SUMMED = (
    "markets", "subscribed", "validBooks", "messagesReceived", "reconnects", "gaps", "malformed",
    "errors", "crossed", "oneSided", "lateFrames", "flushFailures", "windowsFlushed", "windowsLost",
    "pendingWindows",
)


def shard_name(shard: int) -> str:
    return f"shard-{shard}"


def stub(env, shard: int):
    return env.TRACKER.getByName(shard_name(shard))


async def call(env, shard: int, path: str, method: str = "GET") -> dict:
    response = await stub(env, shard).fetch(f"https://tracker{path}", method=method)
    return json.loads(await response.text())


async def call_all(env, config: Config, path: str, method: str = "GET") -> list[dict]:
    return list(await asyncio.gather(*(call(env, s, path, method) for s in range(config.shards))))


def combine(per_shard: list[dict]) -> dict:
    """Sum the shards' stats into one view (shard 0's fields as the base)."""
    total = dict(per_shard[0])
    total.pop("shard", None)
    for key in SUMMED:
        total[key] = sum(s.get(key) or 0 for s in per_shard)
    total["isTracking"] = any(s["isTracking"] for s in per_shard)
    total["connected"] = all(s["connected"] for s in per_shard) if total["isTracking"] else False
    stamps = [s["lastMessageAt"] for s in per_shard if s.get("lastMessageAt")]
    total["lastMessageAt"] = max(stamps) if stamps else None
    total["aggregator"] = {
        "currentSymbols": sum(s["aggregator"]["currentSymbols"] for s in per_shard),
        "windowElapsed": max(s["aggregator"]["windowElapsed"] for s in per_shard),
    }
    total["shards"] = per_shard
    return total
