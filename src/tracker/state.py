"""What a tracker shard keeps in Durable Object storage, so it survives an eviction,
a redeploy or a restart of `wrangler dev`: whether tracking is on, how far windows
and minutes have been written, and the running totals the stats report."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields


@dataclass
class Totals:
    """Counters summed over every connection of the current tracking run."""

    messages: int = 0
    reconnects: int = 0
    gaps: int = 0
    malformed: int = 0
    late_frames: int = 0
    errors: int = 0
    crossed: int = 0
    one_sided: int = 0
    flush_failures: int = 0
    windows_flushed: int = 0
    windows_lost: int = 0
    rows_written: int = 0
    markets_added: int = 0  # listed while tracking ran, then subscribed
    markets_removed: int = 0  # delisted while tracking ran, then unsubscribed
    alarm_errors: int = 0  # steps of an alarm that raised (logged; the alarm carried on)
    future_frames: int = 0  # stamped too far ahead of our clock: placed at our clock
    dropped_late: int = 0  # updates that came after their window was written (the feed's lag)

    def add(self, counters) -> None:
        """Folds a dropped connection's feed counters (feed.FeedCounters) in: every
        counter both records name (the feed counts more than a run keeps)."""
        for f in fields(self):
            if hasattr(counters, f.name):
                setattr(self, f.name, getattr(self, f.name) + getattr(counters, f.name))


@dataclass
class TrackerState:
    # Which shard this object is, saved at start: an alarm can wake a fresh instance
    # whose `ctx.id.name` is undefined (seen in workerd; partykit PR #391).
    shard: int | None = None
    shards: int = 1  # SHARDS when this run started
    tracking: bool = False
    started_at: int | None = None  # ms
    flushed_until: int = 0  # end of the newest window handed to D1 (ms)
    # How far ahead of our clock the feed's stamps ran lately (tracker/feedtime.py): an
    # instance resumed after an eviction measures from the window after the stamps'.
    clock_ahead_ms: int = 0
    minutes_rolled_until: int = 0  # end of the newest minute rolled up (ms)
    # Minutes a previous run still owes ([shards, since, until]): its outbox drained
    # after a new start; they are rolled with that run's split of markets.
    rollup_debts: list[list[int]] = field(default_factory=list)
    # Hours ([shards, hour start]) whose minutes were (re)written since their row was:
    # rewritten once no minute of them is owed (rollup.ripe_hours).
    stale_hours: list[list[int]] = field(default_factory=list)
    # Stopped, and the stats row saying so (is_tracking=0) is not in D1 yet.
    stats_unpublished: bool = False
    # Read only from states saved before the send history got a storage key of its own
    # (sendstore.SENDS_KEY): messages sent in the last rate window (ms).
    sent_at: list[int] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    # The most recent windows lost to an eviction/restart: [{"from": ms, "to": ms}]
    lost_ranges: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        # Saved at every alarm: a shallow copy is enough (asdict recurses through
        # every list and is several times slower).
        raw = dict(self.__dict__)
        raw["totals"] = dict(self.totals.__dict__)
        return json.dumps(raw)

    @classmethod
    def from_json(cls, text: str | None) -> TrackerState:
        if not text:
            return cls()
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError(f"stored tracker state is not an object: {text[:80]!r}")
        known = {f.name for f in fields(Totals)}
        stored_totals = raw.pop("totals", None)
        if not isinstance(stored_totals, dict):
            stored_totals = {}
        totals = Totals(**{k: v for k, v in stored_totals.items() if k in known})
        own = {f.name for f in fields(cls)}
        return cls(totals=totals, **{k: v for k, v in raw.items() if k in own})

    def record_lost(self, start: int, end: int, window_ms: int, keep: int = 100) -> int:
        """Windows [start, end) were never measured (the object was not running, or
        the outbox overflowed): count them and keep the range for the stats."""
        lost = (end - start) // window_ms
        if lost <= 0:
            return 0
        self.totals.windows_lost += lost
        self.lost_ranges = (self.lost_ranges + [{"from": start, "to": end}])[-keep:]
        return lost

    def unrecord_lost(self, ranges: list[dict], window_ms: int) -> None:
        """Take back ranges `record_lost` just recorded (the same dicts), when the write
        that lost their windows failed after all."""
        for r in ranges:
            if any(kept is r for kept in self.lost_ranges):
                self.lost_ranges = [kept for kept in self.lost_ranges if kept is not r]
                self.totals.windows_lost -= (r["to"] - r["from"]) // window_ms
