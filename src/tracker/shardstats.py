"""Combining the tracker shards' stats into the one view /api/stats and the dashboard show.

How each key combines is declared once, on `tracker.stats.ShardStats`; this module
only applies those rules. A shard that could not answer appears in `shards` as
`{"shard": n, "failed": "why"}` and is left out of the sums (it is reported, not hidden).
`merge_exchanges` puts several exchanges' answers into one (/api/stats, /api/health
and the dashboard hub's pushes).
"""

from __future__ import annotations

from .stats import ShardStats, combine_rules
from .validation import DEFAULT_EXCHANGE

_RULES = combine_rules()


def combine(per_shard: list[dict]) -> dict:
    answered = [s for s in per_shard if "failed" not in s] or [ShardStats().to_json()]
    total: dict = {}
    for key, rule in _RULES.items():
        values = [s.get(key) for s in answered]
        present = [v for v in values if v is not None]
        if rule == "none":
            continue
        if rule == "sum":
            total[key] = sum(present)
        elif rule == "any":
            total[key] = any(present)
        elif rule == "all_tracking":
            tracking = [s for s in answered if s.get("isTracking")]
            total[key] = bool(tracking) and all(s.get(key) for s in tracking)
        elif rule == "max":
            total[key] = max(present) if present else None
        elif rule == "min":
            total[key] = min(present) if present else None
        elif rule == "first_set":
            total[key] = next((v for v in present if v), None)
        elif rule == "concat":
            total[key] = [item for v in present for item in v]
        elif rule == "union":
            total[key] = sorted({item for v in present for item in v})
        elif rule == "merge":
            total[key] = {k: v for d in present for k, v in d.items()}
        elif rule == "memory":
            total[key] = _memory(present)
        elif rule == "aggregator":
            total[key] = {
                "currentSymbols": sum(v.get("currentSymbols", 0) for v in present),
                "windowElapsed": max((v.get("windowElapsed", 0) for v in present), default=0),
            }
        else:  # "first"
            total[key] = present[0] if present else None
    total["shardsFailed"] = [s for s in per_shard if "failed" in s]
    total["shards"] = per_shard
    return total


def _memory(per_shard: list[dict]) -> dict:
    out = {k: sum(m.get(k) or 0 for m in per_shard) for k in ("books", "levels", "aggregator")}
    # Instances may share an isolate or not: the largest heap is what a limit meets.
    heaps = [m["wasmHeap"] for m in per_shard if m.get("wasmHeap")]
    out["wasmHeapMax"] = max(heaps) if heaps else None
    return out


def merge_exchanges(per_exchange: dict[str, dict]) -> dict:
    """One answer for several exchanges: the default exchange's fields at the top (as
    before Paradex), plus `exchange` (which one that is) and every exchange's answer
    under `exchanges`. The first exchange's when the default is not among them."""
    if not per_exchange:
        raise ValueError("merge_exchanges needs at least one exchange")
    first = DEFAULT_EXCHANGE if DEFAULT_EXCHANGE in per_exchange else next(iter(per_exchange))
    return {**per_exchange[first], "exchange": first, "exchanges": per_exchange}


def combine_exchanges(per_exchange_shards: dict[str, list[dict]]) -> dict:
    """{exchange: its shards' /stats answers} of the enabled exchanges -> what the
    dashboard hub pushes: each exchange's shards combined and marked `enabled`, then
    merged as /api/stats answers (without /api/stats's D1 row counts)."""
    return merge_exchanges({name: {**combine(answers), "enabled": True} for name, answers in per_exchange_shards.items()})
