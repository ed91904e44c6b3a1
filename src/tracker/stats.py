"""One shard's stats: the one type behind /api/stats, the dashboard, the
`tracking_stats` row and the OpenAPI schema.

Each field says, in its metadata, how shards combine (`sum`, `any`, `max`, ...)
and which `tracking_stats` column stores it, so the combined view
(`tracker.shardstats.combine`), the D1 row (`sql.STATS_COLUMNS`) and the OpenAPI
schema are all derived from this one definition. JSON keys are the camelCase of
the field names (the API's shape since the first release).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .sql import STATS_COLUMNS


def _f(default: Any = None, combine: str = "first", column: str | None = None, doc: str = "", factory=None):
    meta = {"combine": combine, "column": column, "doc": doc}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ShardStats:
    shard: int = _f(0, "none", "shard", "this shard's number")
    is_tracking: bool = _f(False, "any", "is_tracking", "tracking is on")
    markets: int = _f(0, "sum", "markets", "markets this shard tracks")
    markets_listed: int = _f(0, "max", None, "active markets in Lighter's listing")
    duplicate_symbols: dict = _f(combine="merge", doc="symbols shared by several market ids", factory=dict)
    markets_not_listed: list = _f(combine="union", doc="symbols of LIGHTER_MARKETS / PARADEX_MARKETS the "
                                  "exchange does not list (skipped)", factory=list)
    markets_added: int = _f(0, "sum", None, "markets listed while tracking ran, then subscribed")
    markets_removed: int = _f(0, "sum", None, "markets delisted while tracking ran, then unsubscribed")
    markets_refreshed_at: int | None = _f(None, "min", None, "when the market list was last read (ms)")
    connected: bool = _f(False, "all_tracking", "connected", "connected to Lighter (every tracking shard)")
    subscribed: int = _f(0, "sum", None, "order books subscribed")
    valid_books: int = _f(0, "sum", None, "order books valid now")
    waiting_subscriptions: int = _f(0, "sum", None, "markets not live yet (queued, refused, in flight)")
    eta_all_live_seconds: float = _f(0.0, "max", None, "estimated seconds until every market is live")
    messages_received: int = _f(0, "sum", "messages_received", "frames received this run")
    last_message_at: int | None = _f(None, "max", "last_message_at", "exchange time of the newest frame (ms)")
    reconnects: int = _f(0, "sum", "reconnects", "reconnections this run")
    gaps: int = _f(0, "sum", "gaps", "nonce gaps (books resubscribed)")
    malformed: int = _f(0, "sum", "malformed", "malformed frames counted and skipped")
    errors: int = _f(0, "sum", None, "error frames from Lighter, and frames whose handling failed")
    crossed: int = _f(0, "sum", None, "frames after which the book was crossed")
    one_sided: int = _f(0, "sum", None, "frames after which a side was empty")
    late_frames: int = _f(0, "sum", "late_frames", "frames for an already closed window")
    late_last_minute: int = _f(0, "sum", None, "updates dropped in about the last minute because their window "
                               "was already written (the feed lags more than windows wait): health says degraded")
    future_frames: int = _f(0, "sum", None, "frames stamped more than 15 s ahead of the tracker's clock, "
                            "placed at the tracker's clock instead")
    feed_lag_ms: int | None = _f(None, "max", None, "how far the exchange's stamps trail the tracker's clock on "
                                 "arrival, over the last minute (95th percentile; negative: its clock is ahead)")
    close_delay_ms: int = _f(0, "max", None, "how much longer than FLUSH_GRACE_MS windows wait for the feed's "
                             "lag (at most 10000)")
    flush_failures: int = _f(0, "sum", "flush_failures", "failed D1 writes (retried)")
    windows_flushed: int = _f(0, "sum", "windows_flushed", "windows written to D1")
    windows_lost: int = _f(0, "sum", "windows_lost", "windows that could not be measured")
    lost_ranges: list = _f(combine="concat", doc="[{from, to}] of the most recent lost windows", factory=list)
    rows_written: int = _f(0, "sum", "rows_written", "D1 rows written this run")
    pending_windows: int = _f(0, "sum", "outbox_windows", "closed windows in the outbox, waiting for D1")
    alarm_errors: int = _f(0, "sum", None, "alarm steps that raised (logged; the alarm carried on)")
    started_at: int | None = _f(None, "min", "started_at", "when this run started (ms)")
    flushed_until: int = _f(0, "min", "flushed_until", "end of the newest closed window (ms)")
    sealed_until: int | None = _f(None, "min", "sealed_until", "history ending at or before this is final in D1")
    written_until: int | None = _f(None, "min", "written_until", "every window before this is in D1")
    last_flush: dict = _f(combine="first", doc="the newest D1 flush: at, rows, windows, ms", factory=dict)
    reconnect_at: int | None = _f(None, "min", None, "when the next reconnect is due (ms)")
    last_error: str | None = _f(None, "first_set", None, "the newest error")
    split_changed: str | None = _f(None, "first_set", None,
                                   "SHARDS changed while tracking: the run keeps its split until POST /api/start")
    memory_bytes: dict = _f(combine="memory", doc="in-memory state, measured at each alarm", factory=dict)
    aggregator: dict = _f(combine="aggregator", doc="the open window", factory=dict)

    def to_json(self) -> dict:
        return {camel(f.name): getattr(self, f.name) for f in fields(self)}

    def row(self, now: int) -> tuple:
        """The `tracking_stats` row, in `STATS_COLUMNS` order."""
        values = {f.metadata["column"]: getattr(self, f.name) for f in fields(self) if f.metadata["column"]}
        values["updated_at"] = now
        for key in ("is_tracking", "connected"):
            values[key] = int(bool(values[key]))
        return tuple(values[c] for c in STATS_COLUMNS)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def stored_columns() -> set[str]:
    """The tracking_stats columns the dataclass fills (plus updated_at, the write time)."""
    return {f.metadata["column"] for f in fields(ShardStats) if f.metadata["column"]} | {"updated_at"}


def combine_rules() -> dict[str, str]:
    """camelCase key -> how shards combine it."""
    return {camel(f.name): f.metadata["combine"] for f in fields(ShardStats)}


def json_schema() -> dict:
    """The OpenAPI schema of one shard's stats, from the dataclass."""
    props = {}
    for f in fields(ShardStats):
        annotation = str(f.type)
        base = annotation.split("|")[0].strip()
        kind = {"int": "integer", "float": "number", "bool": "boolean", "str": "string",
                "dict": "object", "list": "array"}.get(base, "object")
        schema: dict = {"type": [kind, "null"] if "None" in annotation else kind}
        if f.metadata["doc"]:
            schema["description"] = f.metadata["doc"]
        props[camel(f.name)] = schema
    return {"type": "object", "required": [camel(f.name) for f in fields(ShardStats)], "properties": props}
