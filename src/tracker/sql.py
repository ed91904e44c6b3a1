"""Every SQL statement the tracker and the API run, in one place.

All values are bound parameters; only the fixed column lists below are
interpolated. Keep in step with schema.sql.
"""

from __future__ import annotations

import json

_ROW_COLUMNS = (
    "symbol", "market_index", "timestamp", "avg_bid", "avg_ask", "avg_spread", "tick_count",
    "avg_mid", "avg_spread_bps", "min_spread", "max_spread", "avg_bid_size", "avg_ask_size",
    "last_bid", "last_ask", "twap_mid", "covered_ms",
)
SNAPSHOT_COLUMNS = _ROW_COLUMNS + ("window_ms",)
MINUTE_COLUMNS = _ROW_COLUMNS + ("windows",)


def _upsert_json(table: str, columns: tuple[str, ...]) -> str:
    """Upsert many rows bound as ONE JSON text: `[[v1, v2, ...], ...]` in `columns` order.

    One bound string instead of a statement per row: a flush of 200 markets costs
    one statement and one value to convert into JS, not 200 x 18. ON CONFLICT ...
    DO UPDATE makes a retried flush rewrite its rows instead of duplicating them
    (UNIQUE(symbol, timestamp)); SQLite needs the WHERE to parse an upsert-select.
    """
    picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("symbol", "timestamp"))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picks} FROM json_each(?) WHERE true "
        f"ON CONFLICT(symbol, timestamp) DO UPDATE SET {updates}"
    )


UPSERT_SNAPSHOTS = _upsert_json("lighter_snapshots", SNAPSHOT_COLUMNS)
UPSERT_MINUTES = _upsert_json("lighter_minutes", MINUTE_COLUMNS)
# Rows per bulk statement: keeps one bound JSON text well under D1's size limits.
BULK_ROWS = 500


def bulk(statement: str, rows: list[tuple]) -> list[tuple[str, tuple[str]]]:
    """(statement, (json_rows,)) pairs for `rows`, BULK_ROWS at a time."""
    return [(statement, (json.dumps(rows[i : i + BULK_ROWS]),)) for i in range(0, len(rows), BULK_ROWS)]

UPSERT_MARKET = (
    "INSERT INTO lighter_markets (market_index, symbol, market_type, status, active, "
    "price_decimals, size_decimals, shard, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(market_index) DO UPDATE SET symbol = excluded.symbol, "
    "market_type = excluded.market_type, status = excluded.status, active = excluded.active, "
    "price_decimals = excluded.price_decimals, size_decimals = excluded.size_decimals, "
    "shard = excluded.shard, updated_at = excluded.updated_at"
)
# Markets Lighter no longer lists are kept (their history stays readable) but inactive.
DEACTIVATE_MISSING_MARKETS = "UPDATE lighter_markets SET active = 0, updated_at = ? WHERE updated_at < ? AND shard = ?"
SELECT_SHARD_MARKETS = (
    "SELECT market_index, symbol, market_type, status, active, price_decimals, size_decimals "
    "FROM lighter_markets WHERE shard = ? AND active = 1 ORDER BY market_index"
)

SELECT_WINDOWS_FOR_ROLLUP = (
    f"SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM lighter_snapshots "
    "WHERE timestamp >= ? AND timestamp < ? AND market_index IN (SELECT market_index FROM lighter_markets WHERE shard = ?) "
    "ORDER BY symbol, timestamp"
)

PRUNE_SNAPSHOTS = "DELETE FROM lighter_snapshots WHERE timestamp < ?"
PRUNE_MINUTES = "DELETE FROM lighter_minutes WHERE timestamp < ?"

STATS_COLUMNS = (
    "shard", "is_tracking", "markets", "connected", "messages_received", "last_message_at",
    "reconnects", "gaps", "malformed", "late_frames", "flush_failures", "windows_flushed",
    "windows_lost", "flushed_until", "started_at", "updated_at",
)
UPSERT_STATS = (
    f"INSERT INTO tracking_stats ({', '.join(STATS_COLUMNS)}) VALUES ({', '.join('?' * len(STATS_COLUMNS))}) "
    "ON CONFLICT(shard) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in STATS_COLUMNS if c != "shard")
)


# =============================================================================
# API queries (owned by the JSON API, src/runtime/api.py). Read-only. Every value
# is bound; only the fixed column lists and table names here are interpolated.
# Time bounds are always bound (0 and year 9999 when the client gave none), so each
# query has one fixed text per variant and SQLite plans it once.
# =============================================================================

# Both counts in one D1 round trip (GET /api/stats).
API_COUNT_ROWS = (
    "SELECT (SELECT COUNT(*) FROM lighter_snapshots) AS snapshots, (SELECT COUNT(*) FROM lighter_minutes) AS minutes"
)
API_SELECT_MARKETS = "SELECT market_index, symbol, active FROM lighter_markets ORDER BY market_index"
# Uses idx_markets_symbol.
API_SYMBOL_EXISTS = "SELECT 1 AS found FROM lighter_markets WHERE symbol = ? LIMIT 1"


def _api_page(table: str, columns: tuple[str, ...], by_symbol: bool) -> str:
    # Newest first. With a symbol, the UNIQUE(symbol, timestamp) index gives the
    # rows already in order; without, idx_*_timestamp does, and the symbol tie-break
    # sorts only the rows sharing a timestamp.
    symbol = "symbol = ? AND " if by_symbol else ""
    return (
        f"SELECT {', '.join(columns)} FROM {table} "
        f"WHERE {symbol}timestamp >= ? AND timestamp <= ? "
        "ORDER BY timestamp DESC, symbol LIMIT ? OFFSET ?"
    )


# Binds: ([symbol,] from_ms, to_ms, limit, offset)
API_MINUTES_PAGE = _api_page("lighter_minutes", MINUTE_COLUMNS, by_symbol=False)
API_MINUTES_PAGE_FOR_SYMBOL = _api_page("lighter_minutes", MINUTE_COLUMNS, by_symbol=True)
API_SNAPSHOTS_PAGE = _api_page("lighter_snapshots", SNAPSHOT_COLUMNS, by_symbol=False)
API_SNAPSHOTS_PAGE_FOR_SYMBOL = _api_page("lighter_snapshots", SNAPSHOT_COLUMNS, by_symbol=True)

# /api/export pages through minutes oldest first with a keyset cursor on
# (timestamp, symbol): every page is an index seek past the previous page's last
# row, so page 150 costs what page 1 does (OFFSET would rescan all skipped rows).
# Binds: (cursor_timestamp, cursor_symbol, to_ms, page_size); the first cursor is
# (from_ms, "") and every symbol sorts after "".
API_EXPORT_MINUTES_PAGE = (
    f"SELECT {', '.join(MINUTE_COLUMNS)} FROM lighter_minutes "
    "WHERE (timestamp, symbol) > (?, ?) AND timestamp <= ? "
    "ORDER BY timestamp, symbol LIMIT ?"
)
# Binds: (symbol, cursor_timestamp, cursor_symbol, to_ms, page_size). One symbol
# walks UNIQUE(symbol, timestamp) directly.
API_EXPORT_MINUTES_PAGE_FOR_SYMBOL = (
    f"SELECT {', '.join(MINUTE_COLUMNS)} FROM lighter_minutes "
    "WHERE symbol = ? AND (timestamp, symbol) > (?, ?) AND timestamp <= ? "
    "ORDER BY timestamp, symbol LIMIT ?"
)

# The overview's columns of the latest window (w_*) and latest minute (m_*).
OVERVIEW_WINDOW_COLUMNS = (
    "timestamp", "window_ms", "avg_bid", "avg_ask", "avg_mid", "avg_spread", "avg_spread_bps",
    "tick_count", "last_bid", "last_ask",
)
OVERVIEW_MINUTE_COLUMNS = (
    "timestamp", "windows", "avg_bid", "avg_ask", "avg_mid", "avg_spread", "avg_spread_bps",
    "tick_count", "last_bid", "last_ask",
)
# One row per active market, in one statement. Each market's latest row is found
# by a correlated MAX(timestamp) over UNIQUE(symbol, timestamp): SQLite answers
# that with one index seek (its min/max optimisation), so the cost is two seeks
# per market however many rows the tables hold. A window function
# (ROW_NUMBER() OVER (PARTITION BY symbol ...)) would read every retained row.
API_OVERVIEW = (
    "SELECT m.market_index, m.symbol, "
    + ", ".join(f"w.{c} AS w_{c}" for c in OVERVIEW_WINDOW_COLUMNS)
    + ", "
    + ", ".join(f"n.{c} AS m_{c}" for c in OVERVIEW_MINUTE_COLUMNS)
    + " FROM lighter_markets AS m "
    "LEFT JOIN lighter_snapshots AS w ON w.symbol = m.symbol AND w.timestamp = "
    "(SELECT MAX(timestamp) FROM lighter_snapshots WHERE symbol = m.symbol) "
    "LEFT JOIN lighter_minutes AS n ON n.symbol = m.symbol AND n.timestamp = "
    "(SELECT MAX(timestamp) FROM lighter_minutes WHERE symbol = m.symbol) "
    "WHERE m.active = 1 ORDER BY m.market_index"
)

# The end (ms) of the history that is final in D1 for every shard: windows and
# minutes ending at or before it will never change (tracker/history_cache.py).
# Until tracking_stats has its own `sealed_until` column, a minute is taken as
# final one minute behind the slowest shard's flushed windows (the rollup runs
# after the flush). NULL when no shard has reported yet.
API_SEALED_UNTIL = "SELECT MIN(flushed_until) - 60000 AS sealed_until FROM tracking_stats"
