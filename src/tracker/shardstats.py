"""Summing the tracker shards' stats into the one view /api/stats and the dashboard show."""

from __future__ import annotations

# Counters that add up across shards.
SUMMED = (
    "markets", "subscribed", "validBooks", "messagesReceived", "reconnects", "gaps", "malformed",
    "errors", "crossed", "oneSided", "lateFrames", "flushFailures", "windowsFlushed", "windowsLost",
    "pendingWindows",
)


def combine(per_shard: list[dict]) -> dict:
    """One view of all shards: counters summed, states and-ed/or-ed, shard list kept."""
    total = {k: v for k, v in per_shard[0].items() if k != "shard"}
    for key in SUMMED:
        total[key] = sum(s.get(key) or 0 for s in per_shard)
    total["isTracking"] = any(s["isTracking"] for s in per_shard)
    total["connected"] = total["isTracking"] and all(s["connected"] for s in per_shard if s["isTracking"])
    stamps = [s["lastMessageAt"] for s in per_shard if s.get("lastMessageAt")]
    total["lastMessageAt"] = max(stamps) if stamps else None
    total["lastError"] = next((s["lastError"] for s in per_shard if s.get("lastError")), None)
    total["lostRanges"] = [r for s in per_shard for r in s.get("lostRanges", [])]
    memory = [s.get("memoryBytes") or {} for s in per_shard]
    total["memoryBytes"] = {k: sum(m.get(k, 0) for m in memory) for k in ("books", "levels", "aggregator")}
    # Each shard is its own isolate with its own 128 MB: the largest heap is what matters.
    heaps = [m["wasmHeap"] for m in memory if m.get("wasmHeap")]
    total["memoryBytes"]["wasmHeapMax"] = max(heaps) if heaps else None
    total["aggregator"] = {
        "currentSymbols": sum(s["aggregator"]["currentSymbols"] for s in per_shard),
        "windowElapsed": max(s["aggregator"]["windowElapsed"] for s in per_shard),
    }
    total["shards"] = per_shard
    return total
