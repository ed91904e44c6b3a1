-- Migration 0002: every table as schema.sql has it now, from whatever an earlier
-- release left. Applied by `wrangler d1 migrations apply DB --remote` (DEPLOY.md,
-- sections 4 and 18), which records it in d1_migrations.
--
-- It may meet: the empty tables 0001 just made; the first release's schema with rows;
-- or a database that ran the hand-run upgrades of later releases (the market_index
-- key, depth and hours, Paradex's tables) or was created from a later schema.sql, none
-- of them recorded in d1_migrations. So nothing here assumes a column or table exists:
--   * a table that may be missing is created first, in its first shape (IF NOT EXISTS);
--   * each window, minute and hour table is rebuilt (new table, copy, drop, rename) as
--     PRIMARY KEY (market_index, timestamp) WITHOUT ROWID, with no other index (D1
--     bills each index entry a write touches as one more row written); dropping the
--     old table drops its indexes;
--   * a column that may be missing (depth, added to windows and minutes later; slippage,
--     issue 20, which a database made by hand from this release's schema.sql has; four
--     tracking_stats columns) is copied through a correlated subquery: inside
--     `(SELECT bid_depth_10 FROM t AS i WHERE <i is o's row>)` an unqualified name
--     resolves to the inner table first and, when that table has no such column, to
--     the outer query's FROM, where `(SELECT NULL AS bid_depth_10, ...) AS d` gives the
--     default. That is SQLite's name resolution; tests/integration/test_migrations.py
--     checks it under wrangler (D1's SQLite) from every starting point, with rows.
-- Every row is kept (rows of the first release, keyed by symbol, that share a market
-- and a timestamp keep the first). The rebuild writes each row once (DEPLOY.md says
-- what that costs). A later change is a migration of its own after this one.

-- Tables a database may not have yet, in their first shape (rebuilt below).
CREATE TABLE IF NOT EXISTS lighter_hours (
    symbol TEXT NOT NULL, market_index INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    avg_bid REAL NOT NULL, avg_ask REAL NOT NULL, avg_spread REAL NOT NULL, tick_count INTEGER NOT NULL,
    avg_mid REAL NOT NULL, avg_spread_bps REAL NOT NULL, min_spread REAL NOT NULL, max_spread REAL NOT NULL,
    avg_bid_size REAL NOT NULL, avg_ask_size REAL NOT NULL, last_bid REAL NOT NULL, last_ask REAL NOT NULL,
    twap_mid REAL, covered_ms INTEGER NOT NULL, windows INTEGER NOT NULL,
    bid_depth_10 REAL, ask_depth_10 REAL, bid_depth_50 REAL, ask_depth_50 REAL, bid_depth_100 REAL,
    ask_depth_100 REAL, imbalance_50 REAL, depth_samples INTEGER NOT NULL DEFAULT 0,
    UNIQUE (market_index, timestamp)
);
CREATE TABLE IF NOT EXISTS paradex_snapshots (
    symbol TEXT NOT NULL, market_index INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    avg_bid REAL NOT NULL, avg_ask REAL NOT NULL, avg_spread REAL NOT NULL, tick_count INTEGER NOT NULL,
    avg_mid REAL NOT NULL, avg_spread_bps REAL NOT NULL, min_spread REAL NOT NULL, max_spread REAL NOT NULL,
    avg_bid_size REAL NOT NULL, avg_ask_size REAL NOT NULL, last_bid REAL NOT NULL, last_ask REAL NOT NULL,
    twap_mid REAL, covered_ms INTEGER NOT NULL, window_ms INTEGER NOT NULL,
    bid_depth_10 REAL, ask_depth_10 REAL, bid_depth_50 REAL, ask_depth_50 REAL, bid_depth_100 REAL,
    ask_depth_100 REAL, imbalance_50 REAL, depth_samples INTEGER NOT NULL DEFAULT 0,
    UNIQUE (market_index, timestamp)
);
CREATE TABLE IF NOT EXISTS paradex_minutes (
    symbol TEXT NOT NULL, market_index INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    avg_bid REAL NOT NULL, avg_ask REAL NOT NULL, avg_spread REAL NOT NULL, tick_count INTEGER NOT NULL,
    avg_mid REAL NOT NULL, avg_spread_bps REAL NOT NULL, min_spread REAL NOT NULL, max_spread REAL NOT NULL,
    avg_bid_size REAL NOT NULL, avg_ask_size REAL NOT NULL, last_bid REAL NOT NULL, last_ask REAL NOT NULL,
    twap_mid REAL, covered_ms INTEGER NOT NULL, windows INTEGER NOT NULL,
    bid_depth_10 REAL, ask_depth_10 REAL, bid_depth_50 REAL, ask_depth_50 REAL, bid_depth_100 REAL,
    ask_depth_100 REAL, imbalance_50 REAL, depth_samples INTEGER NOT NULL DEFAULT 0,
    UNIQUE (market_index, timestamp)
);
CREATE TABLE IF NOT EXISTS paradex_hours (
    symbol TEXT NOT NULL, market_index INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    avg_bid REAL NOT NULL, avg_ask REAL NOT NULL, avg_spread REAL NOT NULL, tick_count INTEGER NOT NULL,
    avg_mid REAL NOT NULL, avg_spread_bps REAL NOT NULL, min_spread REAL NOT NULL, max_spread REAL NOT NULL,
    avg_bid_size REAL NOT NULL, avg_ask_size REAL NOT NULL, last_bid REAL NOT NULL, last_ask REAL NOT NULL,
    twap_mid REAL, covered_ms INTEGER NOT NULL, windows INTEGER NOT NULL,
    bid_depth_10 REAL, ask_depth_10 REAL, bid_depth_50 REAL, ask_depth_50 REAL, bid_depth_100 REAL,
    ask_depth_100 REAL, imbalance_50 REAL, depth_samples INTEGER NOT NULL DEFAULT 0,
    UNIQUE (market_index, timestamp)
);
CREATE TABLE IF NOT EXISTS paradex_markets (
    market_index     INTEGER PRIMARY KEY,   -- a hash of the symbol (tracker/paradex_markets.py)
    symbol           TEXT    NOT NULL,
    market_type      TEXT    NOT NULL DEFAULT 'perp',  -- 'perp' | 'spot'
    status           TEXT    NOT NULL DEFAULT 'active',
    active           INTEGER NOT NULL DEFAULT 1,       -- 1 when status = 'active'
    price_decimals   INTEGER,
    size_decimals    INTEGER,
    shard            INTEGER NOT NULL DEFAULT 0,       -- tracker shard that owns it
    updated_at       INTEGER NOT NULL                  -- ms
);
CREATE INDEX IF NOT EXISTS idx_paradex_markets_symbol ON paradex_markets(symbol);
CREATE TABLE IF NOT EXISTS paradex_tracking_stats (
    shard              INTEGER PRIMARY KEY,
    is_tracking        INTEGER NOT NULL,
    markets            INTEGER NOT NULL,
    connected          INTEGER NOT NULL,
    messages_received  INTEGER NOT NULL,
    last_message_at    INTEGER,            -- exchange timestamp (ms) of the newest frame
    reconnects         INTEGER NOT NULL,
    gaps               INTEGER NOT NULL,   -- nonce gaps detected (books resubscribed)
    malformed          INTEGER NOT NULL,   -- frames counted and skipped
    late_frames        INTEGER NOT NULL,   -- frames for an already flushed window
    flush_failures     INTEGER NOT NULL,
    windows_flushed    INTEGER NOT NULL,
    windows_lost       INTEGER NOT NULL,   -- windows lost to an eviction or restart
    flushed_until      INTEGER,            -- end (ms) of the newest flushed window
    started_at         INTEGER,
    updated_at         INTEGER NOT NULL,
    sealed_until       INTEGER,            -- history ending at or before this is final in D1
    rows_written       INTEGER NOT NULL DEFAULT 0,
    outbox_windows     INTEGER NOT NULL DEFAULT 0,  -- closed windows waiting for D1
    written_until      INTEGER             -- every window of this shard before it is in D1
);

-- lighter_snapshots
CREATE TABLE lighter_snapshots_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,                -- time-weighted mid; NULL when no time was covered
    covered_ms      INTEGER NOT NULL,    -- ms of the window with a valid top of book
    window_ms       INTEGER NOT NULL,
    -- Depth: quote notional (price x size) within 10/50/100 bps of the mid per side,
    -- mean of the row's depth samples (one per market and exchange second); NULL when
    -- the row has none.
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,                -- (bid_50 - ask_50) / (bid_50 + ask_50) of the row's means
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lighter_snapshots_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, window_ms, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.window_ms,
           (SELECT bid_depth_10 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_10,
           (SELECT ask_depth_10 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_10,
           (SELECT bid_depth_50 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_50,
           (SELECT ask_depth_50 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_50,
           (SELECT bid_depth_100 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_100,
           (SELECT ask_depth_100 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_100,
           (SELECT imbalance_50 FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS imbalance_50,
           (SELECT depth_samples FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS depth_samples,
           (SELECT slip_buy_1k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM lighter_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM lighter_snapshots AS o, (SELECT NULL AS bid_depth_10, NULL AS ask_depth_10, NULL AS bid_depth_50, NULL AS ask_depth_50, NULL AS bid_depth_100, NULL AS ask_depth_100, NULL AS imbalance_50, 0 AS depth_samples, NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE lighter_snapshots;
ALTER TABLE lighter_snapshots_new RENAME TO lighter_snapshots;

-- lighter_minutes
CREATE TABLE lighter_minutes_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,
    covered_ms      INTEGER NOT NULL,
    windows         INTEGER NOT NULL,
    -- Depth: the sample-weighted mean of its windows' (see lighter_snapshots).
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,                -- (bid_50 - ask_50) / (bid_50 + ask_50) of the row's means
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lighter_minutes_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.windows,
           (SELECT bid_depth_10 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_10,
           (SELECT ask_depth_10 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_10,
           (SELECT bid_depth_50 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_50,
           (SELECT ask_depth_50 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_50,
           (SELECT bid_depth_100 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_100,
           (SELECT ask_depth_100 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_100,
           (SELECT imbalance_50 FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS imbalance_50,
           (SELECT depth_samples FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS depth_samples,
           (SELECT slip_buy_1k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM lighter_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM lighter_minutes AS o, (SELECT NULL AS bid_depth_10, NULL AS ask_depth_10, NULL AS bid_depth_50, NULL AS ask_depth_50, NULL AS bid_depth_100, NULL AS ask_depth_100, NULL AS imbalance_50, 0 AS depth_samples, NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE lighter_minutes;
ALTER TABLE lighter_minutes_new RENAME TO lighter_minutes;

-- lighter_hours
CREATE TABLE lighter_hours_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,
    covered_ms      INTEGER NOT NULL,
    windows         INTEGER NOT NULL,
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lighter_hours_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.windows,
           o.bid_depth_10,
           o.ask_depth_10,
           o.bid_depth_50,
           o.ask_depth_50,
           o.bid_depth_100,
           o.ask_depth_100,
           o.imbalance_50,
           o.depth_samples,
           (SELECT slip_buy_1k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM lighter_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM lighter_hours AS o, (SELECT NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE lighter_hours;
ALTER TABLE lighter_hours_new RENAME TO lighter_hours;

-- paradex_snapshots
CREATE TABLE paradex_snapshots_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,                -- time-weighted mid; NULL when no time was covered
    covered_ms      INTEGER NOT NULL,    -- ms of the window with a valid top of book
    window_ms       INTEGER NOT NULL,
    -- Depth: quote notional (price x size) within 10/50/100 bps of the mid per side,
    -- mean of the row's depth samples (one per market and exchange second); NULL when
    -- the row has none.
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,                -- (bid_50 - ask_50) / (bid_50 + ask_50) of the row's means
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO paradex_snapshots_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, window_ms, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.window_ms,
           (SELECT bid_depth_10 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_10,
           (SELECT ask_depth_10 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_10,
           (SELECT bid_depth_50 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_50,
           (SELECT ask_depth_50 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_50,
           (SELECT bid_depth_100 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_100,
           (SELECT ask_depth_100 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_100,
           (SELECT imbalance_50 FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS imbalance_50,
           (SELECT depth_samples FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS depth_samples,
           (SELECT slip_buy_1k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM paradex_snapshots AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM paradex_snapshots AS o, (SELECT NULL AS bid_depth_10, NULL AS ask_depth_10, NULL AS bid_depth_50, NULL AS ask_depth_50, NULL AS bid_depth_100, NULL AS ask_depth_100, NULL AS imbalance_50, 0 AS depth_samples, NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE paradex_snapshots;
ALTER TABLE paradex_snapshots_new RENAME TO paradex_snapshots;

-- paradex_minutes
CREATE TABLE paradex_minutes_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,
    covered_ms      INTEGER NOT NULL,
    windows         INTEGER NOT NULL,
    -- Depth: the sample-weighted mean of its windows' (see paradex_snapshots).
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,                -- (bid_50 - ask_50) / (bid_50 + ask_50) of the row's means
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO paradex_minutes_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.windows,
           (SELECT bid_depth_10 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_10,
           (SELECT ask_depth_10 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_10,
           (SELECT bid_depth_50 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_50,
           (SELECT ask_depth_50 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_50,
           (SELECT bid_depth_100 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS bid_depth_100,
           (SELECT ask_depth_100 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS ask_depth_100,
           (SELECT imbalance_50 FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS imbalance_50,
           (SELECT depth_samples FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS depth_samples,
           (SELECT slip_buy_1k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM paradex_minutes AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM paradex_minutes AS o, (SELECT NULL AS bid_depth_10, NULL AS ask_depth_10, NULL AS bid_depth_50, NULL AS ask_depth_50, NULL AS bid_depth_100, NULL AS ask_depth_100, NULL AS imbalance_50, 0 AS depth_samples, NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE paradex_minutes;
ALTER TABLE paradex_minutes_new RENAME TO paradex_minutes;

-- paradex_hours
CREATE TABLE paradex_hours_new (
    symbol          TEXT    NOT NULL,
    market_index    INTEGER NOT NULL,
    timestamp       INTEGER NOT NULL,
    avg_bid         REAL    NOT NULL,
    avg_ask         REAL    NOT NULL,
    avg_spread      REAL    NOT NULL,
    tick_count      INTEGER NOT NULL,
    avg_mid         REAL    NOT NULL,
    avg_spread_bps  REAL    NOT NULL,
    min_spread      REAL    NOT NULL,
    max_spread      REAL    NOT NULL,
    avg_bid_size    REAL    NOT NULL,
    avg_ask_size    REAL    NOT NULL,
    last_bid        REAL    NOT NULL,
    last_ask        REAL    NOT NULL,
    twap_mid        REAL,
    covered_ms      INTEGER NOT NULL,
    windows         INTEGER NOT NULL,
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    -- Slippage (issue 20): what a market order of 1k/10k/100k/1m USD costs, in bps of
    -- the mid, buying and selling; fill_samples_<size>: the samples that filled it.
    slip_buy_1k       REAL,
    slip_sell_1k      REAL,
    fill_samples_1k   INTEGER NOT NULL DEFAULT 0,
    slip_buy_10k      REAL,
    slip_sell_10k     REAL,
    fill_samples_10k  INTEGER NOT NULL DEFAULT 0,
    slip_buy_100k     REAL,
    slip_sell_100k    REAL,
    fill_samples_100k INTEGER NOT NULL DEFAULT 0,
    slip_buy_1m       REAL,
    slip_sell_1m      REAL,
    fill_samples_1m   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (market_index, timestamp)
) WITHOUT ROWID;
INSERT OR IGNORE INTO paradex_hours_new (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows, bid_depth_10, ask_depth_10, bid_depth_50, ask_depth_50, bid_depth_100, ask_depth_100, imbalance_50, depth_samples, slip_buy_1k, slip_sell_1k, fill_samples_1k, slip_buy_10k, slip_sell_10k, fill_samples_10k, slip_buy_100k, slip_sell_100k, fill_samples_100k, slip_buy_1m, slip_sell_1m, fill_samples_1m)
    SELECT o.symbol,
           o.market_index,
           o.timestamp,
           o.avg_bid,
           o.avg_ask,
           o.avg_spread,
           o.tick_count,
           o.avg_mid,
           o.avg_spread_bps,
           o.min_spread,
           o.max_spread,
           o.avg_bid_size,
           o.avg_ask_size,
           o.last_bid,
           o.last_ask,
           o.twap_mid,
           o.covered_ms,
           o.windows,
           o.bid_depth_10,
           o.ask_depth_10,
           o.bid_depth_50,
           o.ask_depth_50,
           o.bid_depth_100,
           o.ask_depth_100,
           o.imbalance_50,
           o.depth_samples,
           (SELECT slip_buy_1k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1k,
           (SELECT slip_sell_1k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1k,
           (SELECT fill_samples_1k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1k,
           (SELECT slip_buy_10k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_10k,
           (SELECT slip_sell_10k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_10k,
           (SELECT fill_samples_10k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_10k,
           (SELECT slip_buy_100k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_100k,
           (SELECT slip_sell_100k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_100k,
           (SELECT fill_samples_100k FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_100k,
           (SELECT slip_buy_1m FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_buy_1m,
           (SELECT slip_sell_1m FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS slip_sell_1m,
           (SELECT fill_samples_1m FROM paradex_hours AS i WHERE i.market_index = o.market_index AND i.timestamp = o.timestamp) AS fill_samples_1m
    FROM paradex_hours AS o, (SELECT NULL AS slip_buy_1k, NULL AS slip_sell_1k, 0 AS fill_samples_1k, NULL AS slip_buy_10k, NULL AS slip_sell_10k, 0 AS fill_samples_10k, NULL AS slip_buy_100k, NULL AS slip_sell_100k, 0 AS fill_samples_100k, NULL AS slip_buy_1m, NULL AS slip_sell_1m, 0 AS fill_samples_1m) AS d;
DROP TABLE paradex_hours;
ALTER TABLE paradex_hours_new RENAME TO paradex_hours;

-- tracking_stats
CREATE TABLE tracking_stats_new (
    shard              INTEGER PRIMARY KEY,
    is_tracking        INTEGER NOT NULL,
    markets            INTEGER NOT NULL,
    connected          INTEGER NOT NULL,
    messages_received  INTEGER NOT NULL,
    last_message_at    INTEGER,            -- exchange timestamp (ms) of the newest frame
    reconnects         INTEGER NOT NULL,
    gaps               INTEGER NOT NULL,   -- nonce gaps detected (books resubscribed)
    malformed          INTEGER NOT NULL,   -- frames counted and skipped
    late_frames        INTEGER NOT NULL,   -- frames for an already flushed window
    flush_failures     INTEGER NOT NULL,
    windows_flushed    INTEGER NOT NULL,
    windows_lost       INTEGER NOT NULL,   -- windows lost to an eviction or restart
    flushed_until      INTEGER,            -- end (ms) of the newest flushed window
    started_at         INTEGER,
    updated_at         INTEGER NOT NULL,
    sealed_until       INTEGER,            -- history ending at or before this is final in D1
    rows_written       INTEGER NOT NULL DEFAULT 0,
    outbox_windows     INTEGER NOT NULL DEFAULT 0,  -- closed windows waiting for D1
    written_until      INTEGER             -- every window of this shard before it is in D1
);
INSERT OR IGNORE INTO tracking_stats_new (shard, is_tracking, markets, connected, messages_received, last_message_at, reconnects, gaps, malformed, late_frames, flush_failures, windows_flushed, windows_lost, flushed_until, started_at, updated_at, sealed_until, rows_written, outbox_windows, written_until)
    SELECT o.shard,
           o.is_tracking,
           o.markets,
           o.connected,
           o.messages_received,
           o.last_message_at,
           o.reconnects,
           o.gaps,
           o.malformed,
           o.late_frames,
           o.flush_failures,
           o.windows_flushed,
           o.windows_lost,
           o.flushed_until,
           o.started_at,
           o.updated_at,
           (SELECT sealed_until FROM tracking_stats AS i WHERE i.shard = o.shard) AS sealed_until,
           (SELECT rows_written FROM tracking_stats AS i WHERE i.shard = o.shard) AS rows_written,
           (SELECT outbox_windows FROM tracking_stats AS i WHERE i.shard = o.shard) AS outbox_windows,
           (SELECT written_until FROM tracking_stats AS i WHERE i.shard = o.shard) AS written_until
    FROM tracking_stats AS o, (SELECT NULL AS sealed_until, 0 AS rows_written, 0 AS outbox_windows, NULL AS written_until) AS d;
DROP TABLE tracking_stats;
ALTER TABLE tracking_stats_new RENAME TO tracking_stats;
