-- Upgrade a deployment created before depth and hours (issue 11). Apply ONCE:
--   wrangler d1 execute DB --remote --file=migrations/0003_depth_hours.sql
-- (ALTER TABLE ... ADD COLUMN cannot say IF NOT EXISTS: a second run fails with
-- "duplicate column name" and changes nothing.) Additive only: existing rows keep
-- their values and get NULL depth with depth_samples 0. Then deploy the new Worker.

ALTER TABLE lighter_snapshots ADD COLUMN bid_depth_10 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN ask_depth_10 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN bid_depth_50 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN ask_depth_50 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN bid_depth_100 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN ask_depth_100 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN imbalance_50 REAL;
ALTER TABLE lighter_snapshots ADD COLUMN depth_samples INTEGER NOT NULL DEFAULT 0;

ALTER TABLE lighter_minutes ADD COLUMN bid_depth_10 REAL;
ALTER TABLE lighter_minutes ADD COLUMN ask_depth_10 REAL;
ALTER TABLE lighter_minutes ADD COLUMN bid_depth_50 REAL;
ALTER TABLE lighter_minutes ADD COLUMN ask_depth_50 REAL;
ALTER TABLE lighter_minutes ADD COLUMN bid_depth_100 REAL;
ALTER TABLE lighter_minutes ADD COLUMN ask_depth_100 REAL;
ALTER TABLE lighter_minutes ADD COLUMN imbalance_50 REAL;
ALTER TABLE lighter_minutes ADD COLUMN depth_samples INTEGER NOT NULL DEFAULT 0;

-- lighter_hours: exactly as in schema.sql.
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
    UNIQUE (market_index, timestamp)
);
CREATE INDEX IF NOT EXISTS idx_hours_timestamp ON lighter_hours(timestamp);
CREATE INDEX IF NOT EXISTS idx_hours_symbol ON lighter_hours(symbol, timestamp);
