"""Talking to the tracker shards from the Worker: one Durable Object per shard."""

from __future__ import annotations

import asyncio
import json

from tracker.config import Config
from tracker.shardstats import combine  # noqa: F401  (re-exported for the API)


def shard_name(shard: int) -> str:
    return f"shard-{shard}"


def stub(env, shard: int):
    return env.TRACKER.getByName(shard_name(shard))


async def call(env, shard: int, path: str, method: str = "GET") -> dict:
    response = await stub(env, shard).fetch(f"https://tracker{path}", method=method)
    return json.loads(await response.text())


async def call_all(env, config: Config, path: str, method: str = "GET", skip: int | None = None) -> list[dict]:
    targets = [s for s in range(config.shards) if s != skip]
    return list(await asyncio.gather(*(call(env, s, path, method) for s in targets)))
