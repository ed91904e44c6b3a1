-- Add Paradex's tables (issue 14) to a deployment created before them. Safe to apply
-- more than once (CREATE ... IF NOT EXISTS); nothing of Lighter's is touched:
--   wrangler d1 execute DB --remote --file=migrations/0004_paradex.sql
-- Then deploy the new Worker, and opt in with ENABLED_EXCHANGES=lighter,paradex.
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
    -- Depth (added by migrations/0003_depth_hours.sql): quote notional (price x size)
    -- within 10/50/100 bps of the mid per side, mean of the row's depth samples (one
    -- per market and exchange second); NULL when the row has none.
    bid_depth_10    REAL,
    ask_depth_10    REAL,
    bid_depth_50    REAL,
    ask_depth_50    REAL,
    bid_depth_100   REAL,
    ask_depth_100   REAL,
    imbalance_50    REAL,                -- (bid_50 - ask_50) / (bid_50 + ask_50) of the row's means
    depth_samples   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (market_index, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_paradex_snapshots_timestamp ON paradex_snapshots(timestamp);
CREATE INDEX IF NOT EXISTS idx_paradex_snapshots_symbol ON paradex_snapshots(symbol, timestamp);

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
    UNIQUE (market_index, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_paradex_minutes_timestamp ON paradex_minutes(timestamp);
CREATE INDEX IF NOT EXISTS idx_paradex_minutes_symbol ON paradex_minutes(symbol, timestamp);

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
    UNIQUE (market_index, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_paradex_hours_timestamp ON paradex_hours(timestamp);
CREATE INDEX IF NOT EXISTS idx_paradex_hours_symbol ON paradex_hours(symbol, timestamp);

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
