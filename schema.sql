-- Lighter Orderbook Tracker: the D1 schema, as a fresh install has it.
-- This file is the readable snapshot: a database is created and upgraded with
-- `wrangler d1 migrations apply DB --remote` (migrations/, DEPLOY.md sections 4 and 18),
-- which ends at exactly these tables, columns, keys and indexes
-- (tests/integration/test_migrations.py checks it from every earlier release).
--
-- The window, minute and hour tables are keyed by PRIMARY KEY (market_index, timestamp)
-- WITHOUT ROWID, with no other index: D1 bills each index entry a write touches as one
-- more row written, and a WITHOUT ROWID table's key is the table itself (one row
-- written per row inserted). Lookups by symbol go through *_market_symbols.

-- Markets as Lighter's REST API lists them (GET /api/v1/orderBooks).
CREATE TABLE IF NOT EXISTS lighter_markets (
    market_index     INTEGER PRIMARY KEY,   -- Lighter's market_id (can exceed 16 bits)
    symbol           TEXT    NOT NULL,
    market_type      TEXT    NOT NULL DEFAULT 'perp',  -- 'perp' | 'spot'
    status           TEXT    NOT NULL DEFAULT 'active',
    active           INTEGER NOT NULL DEFAULT 1,       -- 1 when status = 'active'
    price_decimals   INTEGER,
    size_decimals    INTEGER,
    shard            INTEGER NOT NULL DEFAULT 0,       -- tracker shard that owns it
    updated_at       INTEGER NOT NULL,                 -- ms
    base_asset       TEXT                              -- what it trades (BTC of perp BTC, ETH of ETH/USDC); NULL: unknown
);
CREATE INDEX IF NOT EXISTS idx_markets_symbol ON lighter_markets(symbol);

-- Every symbol each market has had: one row per (symbol, market id), written with the
-- market list and never changed. `symbol` in the API finds a symbol's rows through it
-- (then by the rows' own `symbol`): Lighter may rename a market or list a new one under
-- a delisted one's id, and the rows written under the old symbol stay answerable by it,
-- unchanged, where *_markets now names the id otherwise.
CREATE TABLE IF NOT EXISTS lighter_market_symbols (
    symbol           TEXT    NOT NULL,
    market_index     INTEGER NOT NULL,
    PRIMARY KEY (symbol, market_index)
) WITHOUT ROWID;

-- One row per market and closed window (WINDOW_SECONDS, default 15 s). Kept for
-- SNAPSHOT_RETENTION_MINUTES. `timestamp` is the window's start in ms, aligned to
-- the exchange's own message timestamps. Means are tick-weighted unless named twap.
CREATE TABLE IF NOT EXISTS lighter_snapshots (
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
    -- the mid, buying and selling: the mean over the samples whose book filled that size on
    -- both sides (fill_samples_<size> of them); NULL when none did.
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

-- One row per market and complete minute, rolled up from its windows and kept for
-- MINUTE_RETENTION_HOURS. Same columns; `windows` is how many windows it holds.
CREATE TABLE IF NOT EXISTS lighter_minutes (
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
    -- Slippage: its windows' means weighted by their fill_samples_<size> (see lighter_snapshots).
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

-- One row per market and hour, rolled up from its minutes when the hour is complete
-- (and the partial hour when tracking stops), kept HOUR_RETENTION_DAYS (default 90).
-- Same columns as lighter_minutes; `windows` is the number of windows in the hour.
CREATE TABLE IF NOT EXISTS lighter_hours (
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

-- One row per tracker shard, rewritten at every flush: what /api/stats reads
-- when the tracker itself is asleep, and a record of what happened to the feed.
CREATE TABLE IF NOT EXISTS tracking_stats (
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

-- =============================================================================
-- Paradex (issue 14): the same tables, the same shapes, written by the same code
-- (tracker/sql.py `Statements`), for ENABLED_EXCHANGES=lighter,paradex. Paradex has
-- no numeric market ids: market_index is a hash of the symbol. See the Lighter
-- tables above for what each column means.
-- =============================================================================
CREATE TABLE IF NOT EXISTS paradex_markets (
    market_index     INTEGER PRIMARY KEY,   -- a hash of the symbol (tracker/paradex_markets.py)
    symbol           TEXT    NOT NULL,
    market_type      TEXT    NOT NULL DEFAULT 'perp',  -- 'perp' | 'spot'
    status           TEXT    NOT NULL DEFAULT 'active',
    active           INTEGER NOT NULL DEFAULT 1,       -- 1 when status = 'active'
    price_decimals   INTEGER,
    size_decimals    INTEGER,
    shard            INTEGER NOT NULL DEFAULT 0,       -- tracker shard that owns it
    updated_at       INTEGER NOT NULL,                 -- ms
    base_asset       TEXT                              -- what it trades (base_currency: BTC of BTC-USD-PERP); NULL: unknown
);
CREATE INDEX IF NOT EXISTS idx_paradex_markets_symbol ON paradex_markets(symbol);

-- As lighter_market_symbols (a Paradex id is a hash of its symbol: one row per market).
CREATE TABLE IF NOT EXISTS paradex_market_symbols (
    symbol           TEXT    NOT NULL,
    market_index     INTEGER NOT NULL,
    PRIMARY KEY (symbol, market_index)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS paradex_snapshots (
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
    -- the mid, buying and selling: the mean over the samples whose book filled that size on
    -- both sides (fill_samples_<size> of them); NULL when none did.
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

CREATE TABLE IF NOT EXISTS paradex_minutes (
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
    -- Slippage: its windows' means weighted by their fill_samples_<size> (see paradex_snapshots).
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

CREATE TABLE IF NOT EXISTS paradex_hours (
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
