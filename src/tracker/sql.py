"""Every SQL statement the tracker and the API run, in one place.

All values are bound parameters; only the fixed column lists below are
interpolated. Keep in step with schema.sql.
"""

from __future__ import annotations

import json
import re

from .rows import DEPTH_COLUMNS, SLIPPAGE_COLUMNS

_ROW_COLUMNS = (
    "symbol", "market_index", "timestamp", "avg_bid", "avg_ask", "avg_spread", "tick_count",
    "avg_mid", "avg_spread_bps", "min_spread", "max_spread", "avg_bid_size", "avg_ask_size",
    "last_bid", "last_ask", "twap_mid", "covered_ms",
)
# Depth columns, then slippage columns, come last: that is where ALTER TABLE ... ADD
# COLUMN put them (migrations/0003 rebuilt the tables in this order; 0003 adds slippage).
SNAPSHOT_COLUMNS = _ROW_COLUMNS + ("window_ms",) + DEPTH_COLUMNS + SLIPPAGE_COLUMNS
MINUTE_COLUMNS = _ROW_COLUMNS + ("windows",) + DEPTH_COLUMNS + SLIPPAGE_COLUMNS
HOUR_COLUMNS = MINUTE_COLUMNS
# Counts added with their measures (NOT NULL DEFAULT 0). A row closed by an older Worker
# and still in the outbox when the new one flushes it is shorter: its missing counts
# are 0, not a NULL the column refuses (which would fail that flush for ever).
_ADDED_COUNTS = ("depth_samples",) + tuple(c for c in SLIPPAGE_COLUMNS if c.startswith("fill_samples_"))


def _upsert_json(table: str, columns: tuple[str, ...], keep_if: str = "") -> str:
    """Upsert many rows bound as ONE JSON text: `[[v1, v2, ...], ...]` in `columns` order.

    One bound string instead of a statement per row: a flush of 200 markets costs
    one statement and one value to convert into JS, not 200 x 18. ON CONFLICT ...
    DO UPDATE makes a retried flush rewrite its rows instead of duplicating them
    (UNIQUE(market_index, timestamp)); SQLite needs the WHERE to parse an upsert-select.
    Rows are keyed on the market's id, not its symbol: two markets that share a
    symbol keep separate rows (the symbol stays a column; the API answers by it).
    `keep_if` guards the update: a batch that was in flight when its object was
    evicted may land after a newer one, and must not undo it.
    """
    picks = ", ".join(
        f"COALESCE(json_extract(value, '$[{i}]'), 0)" if c in _ADDED_COUNTS else f"json_extract(value, '$[{i}]')"
        for i, c in enumerate(columns)
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in ("market_index", "timestamp"))
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {picks} FROM json_each(?) WHERE true "
        f"ON CONFLICT(market_index, timestamp) DO UPDATE SET {updates}{keep_if}"
    )


def bind_count(statement: str) -> int:
    """How many values `statement` takes: its highest ?NNN, or its anonymous ?s."""
    numbered = [int(n) for n in re.findall(r"\?(\d+)", statement)]
    return max(numbered) if numbered else statement.count("?")


# Rows per bulk statement: keeps one bound JSON text well under D1's size limits.
BULK_ROWS = 500


def bulk(statement: str, rows: list[tuple]) -> list[tuple[str, tuple[str]]]:
    """(statement, (json_rows,)) pairs for `rows`, BULK_ROWS at a time."""
    return [(statement, (json.dumps(rows[i : i + BULK_ROWS]),)) for i in range(0, len(rows), BULK_ROWS)]


STATS_COLUMNS = (
    "shard", "is_tracking", "markets", "connected", "messages_received", "last_message_at",
    "reconnects", "gaps", "malformed", "late_frames", "flush_failures", "windows_flushed",
    "windows_lost", "flushed_until", "started_at", "updated_at",
    # Added after the first release: history ending at or before sealed_until is final in
    # D1 for this shard (windows written, minutes rolled); rows_written and the outbox.
    "sealed_until", "rows_written", "outbox_windows", "written_until",
)

# The overview's columns of the latest window (w_*) and latest minute (m_*); the market
# table shows slippage at 10k and 100k.
_OVERVIEW_SLIPPAGE = ("slip_buy_10k", "slip_sell_10k", "slip_buy_100k", "slip_sell_100k")
OVERVIEW_WINDOW_COLUMNS = (
    "timestamp", "window_ms", "avg_bid", "avg_ask", "avg_mid", "avg_spread", "avg_spread_bps",
    "tick_count", "last_bid", "last_ask", "bid_depth_50", "ask_depth_50", "imbalance_50",
) + _OVERVIEW_SLIPPAGE
OVERVIEW_MINUTE_COLUMNS = (
    "timestamp", "windows", "avg_bid", "avg_ask", "avg_mid", "avg_spread", "avg_spread_bps",
    "tick_count", "last_bid", "last_ask", "bid_depth_50", "ask_depth_50", "imbalance_50",
) + _OVERVIEW_SLIPPAGE


# GET /api/compare's columns of each exchange's rows (tracker/compare.py): the row's time,
# both mids (the basis is taken between the time-weighted ones), the spread, depth at each
# band and slippage at each size, with the sample counts that say how much each is worth.
COMPARE_COLUMNS = (
    "timestamp", "avg_mid", "twap_mid", "avg_spread_bps", "tick_count",
) + DEPTH_COLUMNS + SLIPPAGE_COLUMNS
# /api/compare's `resolution` -> the tables' suffix.
COMPARE_TABLES = {"windows": "snapshots", "minutes": "minutes", "hours": "hours"}


def _series(table: str) -> str:
    """Binds: (market_index, from_ms, to_ms, limit): one market's newest rows of [from, to],
    along the key (a seek to (market, to) and a walk down): reads what it returns."""
    return (
        f"SELECT {', '.join(COMPARE_COLUMNS)} FROM {table} WHERE market_index = ?1 "
        "AND timestamp >= ?2 AND timestamp <= ?3 ORDER BY timestamp DESC LIMIT ?4"
    )


def _page_start(suffix: str) -> str:
    """Binds: (lighter_market, paradex_market, from_ms, to_ms, offset): the newest timestamp
    of a compare page that skips `offset` timestamps (market -1: that exchange has none).
    The page's timestamps are those of either market, so the offset-th of their union is
    among each market's newest offset + 1: each is read along its key that far, no further,
    and only the one timestamp comes back. Like OFFSET on the other routes, the skipped rows
    are read: about 3.5 rows read per skipped row for two markets, measured on D1's SQLite
    (both walks, and the merge's steps), 2 for one."""
    one = ("SELECT timestamp FROM {t} WHERE market_index = {m} AND timestamp >= ?3 AND timestamp <= ?4 "
           "ORDER BY timestamp DESC LIMIT ?5 + 1")
    lighter = one.format(t=f"lighter_{suffix}", m="?1")
    paradex = one.format(t=f"paradex_{suffix}", m="?2")
    # A compound SELECT ordered as its parts are: SQLite merges them (no temporary table).
    return (
        f"SELECT timestamp FROM ({lighter}) UNION SELECT timestamp FROM ({paradex}) "
        "ORDER BY timestamp DESC LIMIT 1 OFFSET ?5"
    )


# Both exchanges' tables at once: GET /api/compare's page start, by resolution.
COMPARE_PAGE_START = {resolution: _page_start(suffix) for resolution, suffix in COMPARE_TABLES.items()}


def _prune(table: str) -> str:
    """Binds: (before_ms, shards, shard): this shard's rows older than before_ms."""
    return (
        f"WITH RECURSIVE {_market_ids(table)} "
        f"DELETE FROM {table} WHERE market_index IN (SELECT i FROM ids WHERE i % ?2 = ?3) AND timestamp < ?1"
    )


def _export_page(table: str, symbols: str | None = None) -> str:
    cols = ", ".join(MINUTE_COLUMNS)
    if symbols is not None:
        return (
            f"SELECT {cols} FROM {table} WHERE market_index IN (SELECT market_index FROM {symbols} WHERE symbol = ?1) "
            "AND symbol = ?1 AND timestamp >= ?2 AND (timestamp, symbol) > (?2, ?3) AND timestamp <= ?4 "
            "ORDER BY timestamp, symbol LIMIT ?5"
        )
    return (
        f"WITH RECURSIVE {_market_ids(table)} SELECT {cols} FROM {table} "
        "WHERE market_index IN (SELECT i FROM ids) AND timestamp >= ?1 AND timestamp < ?5 "
        "AND (timestamp, symbol) > (?1, ?2) AND timestamp <= ?3 "
        "ORDER BY timestamp, symbol LIMIT ?4"
    )


def _extent(table: str) -> str:
    return (
        f"WITH RECURSIVE {_market_ids(table)} SELECT COUNT(i) AS markets, "
        f"MIN((SELECT MIN(timestamp) FROM {table} WHERE market_index = ids.i AND timestamp >= ?1)) AS oldest, "
        f"MAX((SELECT MAX(timestamp) FROM {table} WHERE market_index = ids.i AND timestamp <= ?2)) AS newest "
        "FROM ids WHERE i IS NOT NULL"
    )


def _market_ids(table: str) -> str:
    """A `WITH RECURSIVE` clause naming `ids(i)`: every distinct market_index in `table`,
    found by a loose index scan of its key, one seek per market (`MIN(market_index)`
    above the previous one), however many rows each market holds.

    Why: the window, minute and hour tables have no index but their primary key
    (market_index, timestamp) (WITHOUT ROWID, so the key IS the table): D1 bills every
    index entry a write touches as one more row written, so each index would add a row
    written per row inserted. Everything the tracker and the API read therefore goes
    per market along the key: a seek to (market, from) and a walk to (market, to).
    The ids come from the data itself, not from *_markets (whose save may have failed,
    and which no longer names a delisted market's last rows)."""
    return (
        f"ids(i) AS (SELECT MIN(market_index) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN(market_index) FROM {table} WHERE market_index > ids.i) FROM ids WHERE ids.i IS NOT NULL)"
    )


def _api_page(table: str, symbols: str, columns: tuple[str, ...], by_symbol: bool) -> str:
    """Newest first, ties by symbol. Binds: ([symbol,] from_ms, to_ms, limit, offset).

    One symbol: the rows that carry it. The market(s) that ever had it come from
    `symbols` (*_market_symbols, by its key), then each market's rows of [from, to]
    along the key, those of another symbol left out. Not through *_markets: when
    Lighter renames a market or reuses a delisted one's id, its row there names the
    new symbol, and a page of final history (cached as such) would lose the old
    symbol's rows and lend them to the new one (seeds 5045, 6628). Every symbol: each market's newest
    `limit + offset` rows of [from, to] at most (a market's cut-off found by one walk
    down its key), so a page reads about markets x (limit + offset) rows at worst,
    never the whole table; they are then sorted."""
    cols = ", ".join(f"t.{c}" for c in columns)
    if by_symbol:
        return (
            f"SELECT {cols} FROM {table} AS t "
            f"WHERE t.market_index IN (SELECT market_index FROM {symbols} WHERE symbol = ?1) "
            "AND t.symbol = ?1 AND t.timestamp >= ?2 AND t.timestamp <= ?3 "
            "ORDER BY t.timestamp DESC, t.symbol LIMIT ?4 OFFSET ?5"
        )
    return (
        f"WITH RECURSIVE {_market_ids(table)} "
        f"SELECT {cols} FROM ids JOIN {table} AS t ON t.market_index = ids.i AND t.timestamp <= ?2 "
        "AND t.timestamp >= MAX(?1, COALESCE(("
        f"SELECT x.timestamp FROM {table} AS x WHERE x.market_index = ids.i AND x.timestamp >= ?1 "
        "AND x.timestamp <= ?2 ORDER BY x.timestamp DESC LIMIT 1 OFFSET ?3 + ?4 - 1), ?1)) "
        "ORDER BY t.timestamp DESC, t.symbol LIMIT ?3 OFFSET ?4"
    )


class Statements:
    """One exchange's statements over its own tables (same shapes, same code).

    Lighter keeps the seed's table names (`lighter_*`, `tracking_stats`): its users
    query them. Paradex gets `paradex_*` and `paradex_tracking_stats`.
    """

    def __init__(self, prefix: str, stats_table: str) -> None:
        k, w, m, h = f"{prefix}_markets", f"{prefix}_snapshots", f"{prefix}_minutes", f"{prefix}_hours"
        ks = f"{prefix}_market_symbols"
        s = stats_table
        # A 15 s row is a "window" in code; its table keeps the seed's name, *_snapshots
        # ("snapshot" in code means Lighter's full book).
        self.UPSERT_WINDOWS = _upsert_json(w, SNAPSHOT_COLUMNS)
        # A minute's (an hour's) rollup only ever gains windows (none is pruned before it is
        # rolled): an older, smaller rollup landing late never replaces a newer one.
        self.UPSERT_MINUTES = _upsert_json(m, MINUTE_COLUMNS, f" WHERE excluded.windows >= {m}.windows")
        self.UPSERT_HOURS = _upsert_json(h, HOUR_COLUMNS, f" WHERE excluded.windows >= {h}.windows")

        # Binds: (market_index, symbol, market_type, status, active, price_decimals,
        # size_decimals, shard, updated_at, base_asset); base_asset came last (migration 0003).
        self.UPSERT_MARKET = (
            f"INSERT INTO {k} (market_index, symbol, market_type, status, active, "
            "price_decimals, size_decimals, shard, updated_at, base_asset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(market_index) DO UPDATE SET symbol = excluded.symbol, "
            "market_type = excluded.market_type, status = excluded.status, active = excluded.active, "
            "price_decimals = excluded.price_decimals, size_decimals = excluded.size_decimals, "
            "shard = excluded.shard, updated_at = excluded.updated_at, base_asset = excluded.base_asset "
            # Only when something about the market changed: a refresh that finds the list
            # as it was writes nothing (D1 bills every row an upsert rewrites, and one
            # more for the symbol's index entry). `updated_at` is when it last changed.
            f"WHERE ({k}.symbol, {k}.market_type, {k}.status, {k}.active, {k}.price_decimals, "
            f"{k}.size_decimals, {k}.shard, {k}.base_asset) IS NOT (excluded.symbol, excluded.market_type, "
            "excluded.status, excluded.active, excluded.price_decimals, excluded.size_decimals, excluded.shard, "
            "excluded.base_asset)"
        )
        # Every (symbol, market) pair listed, kept for good: the API finds a symbol's rows
        # through it (`_api_page`). Only a pair not seen before is written. Binds: (the
        # listed markets as one JSON text, [[symbol, market_index], ...]).
        self.INSERT_MARKET_SYMBOLS = (
            f"INSERT INTO {ks} (symbol, market_index) SELECT json_extract(value, '$[0]'), "
            "json_extract(value, '$[1]') FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"
        )
        # Markets the exchange no longer lists are kept (their history stays readable) but
        # inactive; only rows still active are rewritten. Binds: (now_ms, listed ids as a
        # JSON list).
        self.DEACTIVATE_MISSING_MARKETS = (
            f"UPDATE {k} SET active = 0, updated_at = ?1 WHERE active = 1 "
            "AND market_index NOT IN (SELECT value FROM json_each(?2))"
        )
        # The saved list, for a shard that cannot reach Lighter's REST (or is not shard 0).
        self.SELECT_ACTIVE_MARKETS = (
            "SELECT market_index, symbol, market_type, status, price_decimals, size_decimals, updated_at, base_asset "
            f"FROM {k} WHERE active = 1 ORDER BY market_index"
        )

        # A shard owns the markets whose id % SHARDS is its number. The rollup and the prune
        # select rows by that rule, never through *_markets (whose save may have failed):
        # the market ids come from the table's own key (`_market_ids`), and each of this
        # shard's markets is read (or pruned) along the key. Numbered binds (?1...) keep
        # the bind order the statements always had.
        # Binds: (from_ms, to_ms, shards, shard)
        self.SELECT_WINDOWS_FOR_ROLLUP = (
            f"WITH RECURSIVE {_market_ids(w)} SELECT {', '.join(SNAPSHOT_COLUMNS)} FROM {w} "
            "WHERE market_index IN (SELECT i FROM ids WHERE i % ?3 = ?4) AND timestamp >= ?1 AND timestamp < ?2 "
            "ORDER BY market_index, timestamp"
        )
        # How far every OTHER shard's windows are surely in D1: shards that track or still
        # hold windows in their outbox. A minute is rolled up only below this (after a
        # SHARDS change a market's windows of one minute can come from two shards).
        # And how far their history is final (windows written and minutes rolled): windows
        # are pruned only below that. A shard that neither tracks nor holds windows writes
        # none any more (it does not hold the rollup back); once its minutes are rolled too
        # (sealed_until >= flushed_until) it holds nothing back.
        # Binds: (shard,)
        self.SELECT_OTHERS_FRONTIERS = (
            "SELECT MIN(CASE WHEN is_tracking = 1 OR outbox_windows > 0 THEN written_until END) AS written, "
            "MIN(CASE WHEN is_tracking = 1 OR outbox_windows > 0 OR sealed_until < flushed_until "
            f"THEN sealed_until END) AS sealed FROM {s} WHERE shard != ?"
        )
        # Binds: (before_ms, shards, shard)
        # A window goes only once its minute row holds it: the minute exists and counts at
        # least as many windows as D1 has for that minute. This holds by construction, even
        # for a window another shard wrote late (after a SHARDS change during a D1 outage).
        self.PRUNE_WINDOWS = (
            f"WITH RECURSIVE {_market_ids(w)} "
            f"DELETE FROM {w} WHERE market_index IN (SELECT i FROM ids WHERE i % ?2 = ?3) AND timestamp < ?1 "
            f"AND EXISTS (SELECT 1 FROM {m} AS m WHERE m.market_index = {w}.market_index "
            f"AND m.timestamp = {w}.timestamp - {w}.timestamp % 60000 "
            f"AND m.windows >= (SELECT COUNT(*) FROM {w} AS w WHERE w.market_index = m.market_index "
            "AND w.timestamp >= m.timestamp AND w.timestamp < m.timestamp + 60000))"
        )
        self.PRUNE_MINUTES = _prune(m)

        # Shards that ever wrote a stats row: the start/stop fan-out stops those beyond SHARDS.
        self.SELECT_KNOWN_SHARDS = f"SELECT shard FROM {s} ORDER BY shard"

        # Binds: (hour_start, hour_end, shards, shard): the minutes of whole hours, for rollup_hours.
        self.SELECT_MINUTES_FOR_ROLLUP = (
            f"WITH RECURSIVE {_market_ids(m)} SELECT {', '.join(MINUTE_COLUMNS)} FROM {m} "
            "WHERE market_index IN (SELECT i FROM ids WHERE i % ?3 = ?4) AND timestamp >= ?1 AND timestamp < ?2 "
            "ORDER BY market_index, timestamp"
        )
        self.PRUNE_HOURS = _prune(h)

        self.UPSERT_STATS = (
            f"INSERT INTO {s} ({', '.join(STATS_COLUMNS)}) VALUES ({', '.join('?' * len(STATS_COLUMNS))}) "
            "ON CONFLICT(shard) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in STATS_COLUMNS if c != "shard")
            # A row from a batch that landed late (its object was evicted meanwhile) never
            # replaces a newer one: other shards read frontiers from these rows.
            + f" WHERE excluded.updated_at >= {s}.updated_at"
        )


        # =============================================================================
        # API queries (owned by the JSON API, src/runtime/api.py). Read-only. Every value
        # is bound; only the fixed column lists and table names here are interpolated.
        # Time bounds are always bound (0 and year 9999 when the client gave none), so each
        # query has one fixed text per variant and SQLite plans it once.
        # =============================================================================

        # Every table's row count in one D1 round trip (GET /api/stats).
        self.API_COUNT_ROWS = (
            f"SELECT (SELECT COUNT(*) FROM {w}) AS snapshots, (SELECT COUNT(*) FROM {m}) AS minutes, "
            f"(SELECT COUNT(*) FROM {h}) AS hours"
        )
        self.API_SELECT_MARKETS = f"SELECT market_index, symbol, active FROM {k} ORDER BY market_index"
        # A symbol any market ever had (its rows stay answerable by it): one seek on the key.
        self.API_SYMBOL_EXISTS = f"SELECT 1 AS found FROM {ks} WHERE symbol = ? LIMIT 1"
        # The asset map's input (GET /api/assets, /api/compare; tracker/assets.py): the active
        # markets and what they trade. One row read per market, like /api/markets.
        self.API_ASSET_MARKETS = (
            f"SELECT market_index, symbol, market_type, base_asset, active FROM {k} WHERE active = 1 "
            "ORDER BY market_index"
        )
        # GET /api/compare: one market's rows, by resolution (COMPARE_TABLES). Binds: (market_index,
        # from_ms, to_ms, limit).
        self.API_COMPARE = {resolution: _series(f"{prefix}_{suffix}") for resolution, suffix in COMPARE_TABLES.items()}




        # Binds: ([symbol,] from_ms, to_ms, limit, offset)
        self.API_MINUTES_PAGE = _api_page(m, ks, MINUTE_COLUMNS, by_symbol=False)
        self.API_MINUTES_PAGE_FOR_SYMBOL = _api_page(m, ks, MINUTE_COLUMNS, by_symbol=True)
        self.API_HOURS_PAGE = _api_page(h, ks, HOUR_COLUMNS, by_symbol=False)
        self.API_HOURS_PAGE_FOR_SYMBOL = _api_page(h, ks, HOUR_COLUMNS, by_symbol=True)
        self.API_SNAPSHOTS_PAGE = _api_page(w, ks, SNAPSHOT_COLUMNS, by_symbol=False)
        self.API_SNAPSHOTS_PAGE_FOR_SYMBOL = _api_page(w, ks, SNAPSHOT_COLUMNS, by_symbol=True)

        # /api/export pages through minutes oldest first with a keyset cursor on
        # (timestamp, symbol): every page starts just past the previous page's last row.
        # Every symbol: the page is also cut to a time slice [cursor, until) that holds
        # about a page of rows (tracker/export.py sizes it from the number of markets),
        # read per market along the key and sorted: page 150 costs what page 1 does.
        # Binds: (cursor_timestamp, cursor_symbol, to_ms, page_size, until_ms); the first
        # cursor is (from_ms, "") and every symbol sorts after "".
        self.API_EXPORT_MINUTES_PAGE = _export_page(m)
        # Binds: (symbol, cursor_timestamp, cursor_symbol, to_ms, page_size): one symbol's
        # rows, its market(s) through *_market_symbols, then along the key (`_api_page`).
        self.API_EXPORT_MINUTES_PAGE_FOR_SYMBOL = _export_page(m, ks)
        # The same keyset pages over *_hours (GET /api/export?resolution=hours).
        self.API_EXPORT_HOURS_PAGE = _export_page(h)
        self.API_EXPORT_HOURS_PAGE_FOR_SYMBOL = _export_page(h, ks)
        # Where an export's rows begin and end, and how many markets share them (one seek
        # at each end of every market's key): the slices of an every-symbol export.
        # Binds: (from_ms, to_ms).
        self.API_EXPORT_MINUTES_EXTENT = _extent(m)
        self.API_EXPORT_HOURS_EXTENT = _extent(h)

        # One row per active market, in one statement. Each market's latest row is found
        # by a correlated MAX(timestamp) over UNIQUE(market_index, timestamp): SQLite answers
        # that with one index seek (its min/max optimisation), so the cost is two seeks
        # per market however many rows the tables hold. A window function
        # (ROW_NUMBER() OVER (PARTITION BY symbol ...)) would read every retained row.
        self.API_OVERVIEW = (
            "SELECT m.market_index, m.symbol, "
            + ", ".join(f"w.{c} AS w_{c}" for c in OVERVIEW_WINDOW_COLUMNS)
            + ", "
            + ", ".join(f"n.{c} AS m_{c}" for c in OVERVIEW_MINUTE_COLUMNS)
            + f" FROM {k} AS m "
            f"LEFT JOIN {w} AS w ON w.market_index = m.market_index AND w.timestamp = "
            f"(SELECT MAX(timestamp) FROM {w} WHERE market_index = m.market_index) "
            f"LEFT JOIN {m} AS n ON n.market_index = m.market_index AND n.timestamp = "
            f"(SELECT MAX(timestamp) FROM {m} WHERE market_index = m.market_index) "
            "WHERE m.active = 1 ORDER BY m.market_index"
        )

        # The end (ms) of the history that is final in D1 for every shard: windows, minutes
        # and hours ending at or before it will never change (tracker/history_cache.py).
        # Each shard reports its own `sealed_until` (windows written, minutes rolled); shards
        # with nothing left to do hold nothing back. NULL when no shard has reported yet.
        self.API_SEALED_UNTIL = (
            "SELECT COALESCE(MIN(CASE WHEN is_tracking = 1 OR outbox_windows > 0 OR sealed_until < flushed_until "
            f"THEN sealed_until END), MAX(flushed_until)) AS sealed_until FROM {s}"
        )

LIGHTER = Statements("lighter", "tracking_stats")
PARADEX = Statements("paradex", "paradex_tracking_stats")
STATEMENTS = {"lighter": LIGHTER, "paradex": PARADEX}
