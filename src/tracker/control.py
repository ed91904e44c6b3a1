"""Start and stop across shards: which shard objects to call, and one combined answer.

A failing shard is reported as failed in the combined result, never as a failure
of the whole call (the other shards did start). Objects beyond the current SHARDS
(left tracking when SHARDS was lowered) are stopped on start and on stop, so no
object keeps tracking out of the API's reach.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

Call = Callable[[int, str], Awaitable[dict]]


def targets(action: str, shards: int, known: Iterable[int]) -> list[tuple[int, str]]:
    """(shard, action) pairs: every current shard gets `action`; known shards beyond
    SHARDS (from tracking_stats) get "stop"."""
    beyond = sorted({s for s in known if s >= shards})
    return [(s, action) for s in range(shards)] + [(s, "stop") for s in beyond]


async def fan_out(action: str, shards: int, known: Iterable[int], call: Call) -> list[dict]:
    plan = targets(action, shards, known)
    results = await asyncio.gather(*(call(s, a) for s, a in plan), return_exceptions=True)
    out = []
    for (shard, _), result in zip(plan, results):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            out.append({"shard": shard, "failed": f"{type(result).__name__}: {result}"[:200]})
        else:
            out.append(result)
    return out


async def ask_all(shards: int, ask: Callable[[int], Awaitable[dict]],
                  failed: Callable[[int, Exception], None]) -> list[dict]:
    """Every shard's answer to `ask(shard)`, in shard order; a shard that fails is
    `{"shard": n, "failed": "unreachable"}` (why goes to `failed`, for the log: the
    answer never carries an exception's text)."""
    results = await asyncio.gather(*(ask(s) for s in range(shards)), return_exceptions=True)
    out = []
    for shard, result in enumerate(results):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            failed(shard, result)
            out.append({"shard": shard, "failed": "unreachable"})
        else:
            out.append(result)
    return out
