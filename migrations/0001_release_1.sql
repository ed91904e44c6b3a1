-- Migration 0001: the first release's schema (tests/fixtures/schema_v1.sql), the baseline
-- every later migration starts from. Every statement is CREATE ... IF NOT EXISTS: on a
-- database that already has these tables (any earlier release, created by hand with
-- `wrangler d1 execute`, with no d1_migrations table) it changes nothing; 0002 then
-- brings every table to today's shape.


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
    updated_at       INTEGER NOT NULL                  -- ms
);
CREATE INDEX IF NOT EXISTS idx_markets_symbol ON lighter_markets(symbol);

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
    UNIQUE (symbol, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_snapshots_timestamp ON lighter_snapshots(timestamp);

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
    UNIQUE (symbol, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_minutes_timestamp ON lighter_minutes(timestamp);

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
    updated_at         INTEGER NOT NULL
);
