"""Is the tracker healthy? A verdict over the shards' stats, for GET /api/health.

Pure: it gets each shard's stats (what the tracker objects report) and the
clock, and says "idle" (tracking is off), "ok", "degraded" (the feed runs, but
frames came after their window was written in the last minute: the feed lags more
than windows wait, and the end of windows is being lost), "storage" (windows are
piling up because D1 writes keep failing), "stale" (connected, but no frame for
longer than STALE_FEED_SECONDS) or "down" (not connected).

Freshness is `now - lastMessageAt`, where lastMessageAt is the exchange's own
timestamp of the newest frame: comparing it with our clock is fine because the
stale limit (30 s by default) dwarfs any sane clock skew, and a frame stamped in
our future counts as age 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from .feedtime import MAX_FEED_LAG_MS

# The worst status among shards wins. `degraded` is below `storage`: data is being
# lost in part (the end of windows), not all of it at risk.
_RANK = {"idle": 0, "ok": 1, "degraded": 2, "storage": 3, "stale": 4, "down": 5}
# One window can wait for the next alarm after a passing D1 error; more means D1
# has failed at least twice in a row and data is at risk.
PENDING_WINDOWS_LIMIT = 2
HEALTHY = ("idle", "ok")


def rank(status: str) -> int:
    """How bad a status is (the worst wins when several are combined)."""
    return _RANK.get(status, len(_RANK))


def shard_health(stats: dict, now_ms: int, stale_ms: int, tracking: bool) -> dict:
    """One shard's verdict: {"shard", "status", "reason", ...the signals used}. Any
    verdict that would be ok (a start still connecting included) is `degraded` while
    frames are being dropped as late."""
    verdict = _verdict(stats, now_ms, stale_ms, tracking)
    late = verdict["lateLastMinute"]
    if verdict["status"] != "ok" or not late:
        return verdict
    # The feed lags more than windows wait: the end of windows is being lost.
    lag = verdict["feedLagMs"]
    lagging = f"the feed lags {lag / 1000:.1f}s" if lag is not None else "the feed lags"
    return {
        **verdict,
        "status": "degraded",
        "reason": f"{late} frame(s) dropped as late in the last minute: {lagging}, windows wait "
                  f"{(stats.get('closeDelayMs') or 0) / 1000:.1f}s for it beyond FLUSH_GRACE_MS "
                  f"(at most {MAX_FEED_LAG_MS / 1000:.0f}s)",
    }


def _verdict(stats: dict, now_ms: int, stale_ms: int, tracking: bool) -> dict:
    verdict = {
        "shard": stats.get("shard", 0),
        "connected": bool(stats.get("connected")),
        "lastMessageAt": stats.get("lastMessageAt"),
        "ageMs": None,
        "reconnectAt": stats.get("reconnectAt"),
        "lastError": stats.get("lastError"),
        "feedLagMs": stats.get("feedLagMs"),
        "lateLastMinute": stats.get("lateLastMinute") or 0,
    }
    if "failed" in stats:  # the tracker object itself failing is the worst health there is
        # The failure's text stays in the logs (runtime/shards.py logs it), not in answers.
        return {**verdict, "status": "down", "reason": "tracker unreachable (details in the logs)"}
    if not stats.get("isTracking"):
        if tracking:  # the others track: this one was left behind
            return {**verdict, "status": "down", "reason": "this shard is not tracking"}
        return {**verdict, "status": "idle", "reason": "tracking is off"}
    started = stats.get("startedAt")
    # A run that began less than the stale limit ago may still be connecting or
    # waiting for its first frame: not an outage yet.
    starting = started is not None and now_ms - started < stale_ms
    if not verdict["connected"]:
        if starting and not verdict["lastError"]:
            return {**verdict, "status": "ok", "reason": "starting: connecting to the feed"}
        return {**verdict, "status": "down", "reason": _down_reason(verdict, now_ms)}
    last = verdict["lastMessageAt"]
    if last is None:
        if starting:
            return {**verdict, "status": "ok", "reason": "starting: waiting for the first frame"}
        return {**verdict, "status": "stale", "reason": "connected, but no frame received yet"}
    age = max(0, now_ms - int(last))
    verdict["ageMs"] = age
    if age > stale_ms:
        return {
            **verdict,
            "status": "stale",
            "reason": f"no frame for {age / 1000:.0f}s (stale after {stale_ms / 1000:.0f}s)",
        }
    pending = stats.get("pendingWindows") or 0
    if pending >= PENDING_WINDOWS_LIMIT:
        return {
            **verdict,
            "status": "storage",
            "reason": f"D1 writes failing: {pending} windows waiting ({verdict['lastError'] or 'no detail'})",
        }
    return {**verdict, "status": "ok", "reason": None}


def _down_reason(verdict: dict, now_ms: int) -> str:
    reason = "feed disconnected"
    if verdict["lastError"]:
        reason += f": {verdict['lastError']}"
    if verdict["reconnectAt"] is not None:
        wait = max(0, int(verdict["reconnectAt"]) - now_ms)
        reason += f" (reconnecting in {wait / 1000:.1f}s)"
    return reason


def assess(per_shard: Sequence[dict], now_ms: int, stale_ms: int) -> tuple[int, dict]:
    """(HTTP status, body) for GET /api/health: 200 when idle or ok, else 503."""
    tracking = any(s.get("isTracking") for s in per_shard)
    shards = [shard_health(s, now_ms, stale_ms, tracking) for s in per_shard]
    worst = max(shards, key=lambda s: _RANK[s["status"]])
    status = worst["status"]
    # SHARDS changed while tracking (a deploy): the old split runs on (nothing lost or
    # doubled) until /api/start re-splits; a shard of the new split not started yet
    # would say "not tracking". Say why instead.
    split = next((s.get("splitChanged") for s in per_shard if s.get("splitChanged")), None)
    if split is not None and rank(status) <= rank("degraded"):
        worst = {**worst, "status": "degraded", "reason": split}
        status = "degraded"
    elif split is not None and worst["reason"] == "this shard is not tracking":
        worst = {**worst, "reason": f"{worst['reason']} ({split})"}
    body = {
        "status": status,
        "isTracking": tracking,
        "now": now_ms,
        "staleAfterMs": stale_ms,
        "shards": shards,
    }
    if status not in HEALTHY:
        prefix = f"shard {worst['shard']}: " if len(shards) > 1 else ""
        body["reason"] = prefix + worst["reason"]
    elif worst["reason"]:
        body["detail"] = worst["reason"]
    stamps = [s["lastMessageAt"] for s in shards if s["lastMessageAt"] is not None]
    body["lastMessageAt"] = max(stamps) if stamps else None
    return (200 if status in HEALTHY else 503), body
