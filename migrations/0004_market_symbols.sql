-- Migration 0004: lighter_market_symbols and paradex_market_symbols, every symbol each
-- market has had (schema.sql says why). `symbol` in the API finds a symbol's rows through
-- them and the rows' own `symbol`, so a page of final history stays what it was when
-- Lighter renames a market or lists a new one under a delisted one's id (before, the
-- lookup went through *_markets, whose row for the id then names the new symbol: the old
-- symbol's rows vanished from its pages, and the new symbol's pages showed them).
-- Applied by `wrangler d1 migrations apply DB --remote` after 0003 (DEPLOY.md, sections 4
-- and 18).
--
-- Filled from *_markets (one row per market: a few hundred rows written). A symbol whose
-- id was already reused or renamed before this migration is not in *_markets any more, so
-- it stays unanswerable by that name, as it was; the tracker adds every later one with
-- each market list it saves.

CREATE TABLE IF NOT EXISTS lighter_market_symbols (
    symbol           TEXT    NOT NULL,
    market_index     INTEGER NOT NULL,
    PRIMARY KEY (symbol, market_index)
) WITHOUT ROWID;
INSERT OR IGNORE INTO lighter_market_symbols (symbol, market_index) SELECT symbol, market_index FROM lighter_markets;

CREATE TABLE IF NOT EXISTS paradex_market_symbols (
    symbol           TEXT    NOT NULL,
    market_index     INTEGER NOT NULL,
    PRIMARY KEY (symbol, market_index)
) WITHOUT ROWID;
INSERT OR IGNORE INTO paradex_market_symbols (symbol, market_index) SELECT symbol, market_index FROM paradex_markets;
