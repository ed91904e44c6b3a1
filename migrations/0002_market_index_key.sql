-- Upgrade 0002: rows keyed on (market_index, timestamp) instead of (symbol, timestamp),
-- and four new tracking_stats columns. For a database created from the first
-- release's schema.sql. Run ONCE, with tracking stopped:
--   wrangler d1 execute DB --remote --file=migrations/0002_market_index_key.sql
-- SQLite cannot change a UNIQUE constraint in place: each table is rebuilt (new
-- table, copy, drop, rename), keeping every row. Two markets that shared a symbol
-- could not both have rows before, so the copy never meets a conflict.

CREATE TABLE lighter_snapshots_v2 (
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
    UNIQUE (market_index, timestamp)
);
INSERT INTO lighter_snapshots_v2 (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, window_ms)
    SELECT symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, window_ms FROM lighter_snapshots;
DROP TABLE lighter_snapshots;
ALTER TABLE lighter_snapshots_v2 RENAME TO lighter_snapshots;
CREATE INDEX IF NOT EXISTS idx_snapshots_timestamp ON lighter_snapshots(timestamp);
CREATE INDEX IF NOT EXISTS idx_snapshots_symbol ON lighter_snapshots(symbol, timestamp);

CREATE TABLE lighter_minutes_v2 (
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
    UNIQUE (market_index, timestamp)
);
INSERT INTO lighter_minutes_v2 (symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows)
    SELECT symbol, market_index, timestamp, avg_bid, avg_ask, avg_spread, tick_count, avg_mid, avg_spread_bps, min_spread, max_spread, avg_bid_size, avg_ask_size, last_bid, last_ask, twap_mid, covered_ms, windows FROM lighter_minutes;
DROP TABLE lighter_minutes;
ALTER TABLE lighter_minutes_v2 RENAME TO lighter_minutes;
CREATE INDEX IF NOT EXISTS idx_minutes_timestamp ON lighter_minutes(timestamp);
CREATE INDEX IF NOT EXISTS idx_minutes_symbol ON lighter_minutes(symbol, timestamp);

ALTER TABLE tracking_stats ADD COLUMN sealed_until INTEGER;
ALTER TABLE tracking_stats ADD COLUMN rows_written INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracking_stats ADD COLUMN outbox_windows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tracking_stats ADD COLUMN written_until INTEGER;
