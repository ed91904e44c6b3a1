"""Start and stop across shards: which shard objects to call, and one combined answer.

A failing shard is reported as failed in the combined result, never as a failure
of the whole call (the other shards did start). Objects beyond the current SHARDS
(left tracking when SHARDS was lowered) are stopped on start and on stop, so no
object keeps tracking out of the API's reach.

A start is two steps, so that a SHARDS changed while tracking (issue 18, defect 2)
is picked up without loss, duplication or going over the per-IP budget:

1. `release` on every shard (and every one beyond SHARDS that D1 knows, or that a
   released shard's split names): a shard tracking
   under another split stops (its last windows go to D1, its last minutes are rolled
   with its own split: rollup debts); each answers whether it still tracks, the split
   of its last run, the end of its newest closed window and its sends in the last
   rate window. A shard tracking under the new split is left running.
2. `start` on every shard of the new split, with a hand-over from the shards of
   another split that no longer track: `after`, the newest window end any of them
   closed (a market that moves starts after the window its old shard wrote last, so
   no window key is written by two shards) and `sent`, their sends in the rate window
   but the starting shard's own (its object counts those already).

The budget across the change, over any rate window W (B: the deployment's budget per
IP, n new shards each with share s = B // n, H: the old split's sends within W, S_i:
new shard i's). Shard i sends only while what it counts in W stays within s, and it
counts all of H (the others' from the hand-over, its own from its storage):
H + S_i <= s, so S_i <= s - H, and H + sum(S_i) <= H + n (s - H) = n s - (n - 1) H
<= n s <= B. (Pings and pongs count too: pacing.SubscriptionPacer.) A release that
fails leaves the old split possibly running: nothing is started then (a shard of each
split on one market would be the duplication), and the answer says why; /api/start
again retries.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable

# (shard, action, body or None) -> the shard's answer
Call = Callable[..., Awaitable[dict]]


def targets(action: str, shards: int, known: Iterable[int]) -> list[tuple[int, str]]:
    """(shard, action) pairs: every current shard gets `action`; known shards beyond
    SHARDS (from tracking_stats) get "stop"."""
    beyond = sorted({s for s in known if s >= shards})
    return [(s, action) for s in range(shards)] + [(s, "stop") for s in beyond]


async def fan_out(action: str, shards: int, known: Iterable[int], call: Call) -> list[dict]:
    if action == "start":
        return await _start(shards, known, call)
    if action == "stop":
        return await _stop(shards, known, call)
    return await _gather([(s, a, None) for s, a in targets(action, shards, known)], call)


async def _stop(shards: int, known: Iterable[int], call: Call) -> list[dict]:
    # As a start's release: a stopped shard names the split it ran under (`split`), and
    # that split's other shards are stopped too. D1 may be down, so `known` may miss a
    # shard a deploy alone left running beyond SHARDS (seed 8746).
    return await _following_splits(shards, known, "stop", None, "split", call)


async def _following_splits(shards: int, known: Iterable[int], action: str, body: dict | None, split_key: str,
                            call: Call) -> list[dict]:
    """`action` on the shards of the split `shards` and those D1's stats table knows
    (`known`), then on every shard of a split an answer names under `split_key`, until
    none is new (D1 may be down, or may not list a shard yet: the objects themselves
    know their split). The answers, in shard order."""
    asked: set[int] = set()
    todo = set(range(shards)) | set(known)
    answers: list[dict] = []
    while todo:
        answers += await _gather([(s, action, body) for s in sorted(todo)], call)
        asked |= todo
        todo = {s for r in answers if "failed" not in r for s in range(int(r.get(split_key) or 0))} - asked
    return sorted(answers, key=lambda r: r["shard"])


async def _start(shards: int, known: Iterable[int], call: Call) -> list[dict]:
    # The shards to release: the new split's, those D1's stats table knows, and every
    # shard of a split a released shard says it ran under (`shards`).
    released = await _following_splits(shards, known, "release", {"shards": shards}, "shards", call)
    failed = [r for r in released if "failed" in r]
    if failed:
        why = "; ".join(f"shard {r['shard']}: {r['failed']}" for r in failed)
        return [{"shard": s, "failed": f"not started: could not check which split shard(s) run ({why}); "
                                       f"POST /api/start again"[:300]} for s in range(shards)]
    # Shards no longer tracking whose last run had another split (or lies beyond it).
    old = [r for r in released if not r["tracking"] and (r.get("shards") not in (None, shards) or r["shard"] >= shards)]
    after = max((int(r["flushedUntil"]) for r in old), default=0)

    def handover(shard: int) -> dict | None:
        sent = list(heapq.merge(*(sorted(r["sent"]) for r in old if r["shard"] != shard)))
        return {"after": after, "sent": sent} if old else None

    started = await _gather([(s, "start", handover(s)) for s in range(shards)], call)
    return started + [r for r in released if r["shard"] >= shards]  # (stopped by their release)


async def _gather(plan: list[tuple[int, str, dict | None]], call: Call) -> list[dict]:
    results = await asyncio.gather(*(call(s, a, body) for s, a, body in plan), return_exceptions=True)
    out = []
    for (shard, _, _), result in zip(plan, results):
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
