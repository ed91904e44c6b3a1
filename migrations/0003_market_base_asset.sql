-- Migration 0003: `base_asset` on lighter_markets and paradex_markets (issue 20): what each
-- market trades, by which GET /api/assets and /api/compare pair Lighter's perp `BTC` with
-- Paradex's `BTC-USD-PERP` (base_currency BTC). Applied by `wrangler d1 migrations apply
-- DB --remote` after 0002 (DEPLOY.md, sections 4 and 18).
--
-- It may meet the tables 0001/0002 left (no base_asset) or, on a database created by hand
-- from this release's schema.sql, tables that already have it: SQLite has no ADD COLUMN IF
-- NOT EXISTS, so each table is rebuilt (new table, copy, drop, rename, its symbol index
-- made again), base_asset copied through the correlated subquery 0002 explains (it reads
-- the inner table's column when there is one, else the outer `d.base_asset`, NULL).
-- The tables hold one row per market (a few hundred): the copy writes that many rows.
-- Rows keep base_asset NULL until shard 0's next market refresh rewrites them (the API
-- reads the asset from the symbol meanwhile: tracker/assets.py).

CREATE TABLE lighter_markets_new (
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
INSERT INTO lighter_markets_new (market_index, symbol, market_type, status, active, price_decimals, size_decimals, shard, updated_at, base_asset)
    SELECT o.market_index, o.symbol, o.market_type, o.status, o.active, o.price_decimals, o.size_decimals, o.shard,
           o.updated_at,
           (SELECT base_asset FROM lighter_markets AS i WHERE i.market_index = o.market_index) AS base_asset
    FROM lighter_markets AS o, (SELECT NULL AS base_asset) AS d;
DROP TABLE lighter_markets;
ALTER TABLE lighter_markets_new RENAME TO lighter_markets;
CREATE INDEX IF NOT EXISTS idx_markets_symbol ON lighter_markets(symbol);

CREATE TABLE paradex_markets_new (
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
INSERT INTO paradex_markets_new (market_index, symbol, market_type, status, active, price_decimals, size_decimals, shard, updated_at, base_asset)
    SELECT o.market_index, o.symbol, o.market_type, o.status, o.active, o.price_decimals, o.size_decimals, o.shard,
           o.updated_at,
           (SELECT base_asset FROM paradex_markets AS i WHERE i.market_index = o.market_index) AS base_asset
    FROM paradex_markets AS o, (SELECT NULL AS base_asset) AS d;
DROP TABLE paradex_markets;
ALTER TABLE paradex_markets_new RENAME TO paradex_markets;
CREATE INDEX IF NOT EXISTS idx_paradex_markets_symbol ON paradex_markets(symbol);
