"""The market directory: which of the exchange's markets this shard tracks, kept current.

Exchanges list new markets regularly and delist others. The directory reads the
list every MARKET_REFRESH_SECONDS and says what changed, so the feed subscribes
new markets and unsubscribes delisted ones while tracking runs.

One REST read per refresh for the whole deployment (Lighter allows 60 REST
requests a minute per IP): shard 0 reads Lighter's REST, saves the list to D1
(`lighter_markets`) and hands it to the other shards; they read the saved list
from D1 when their own refresh is due and no hand-over came. When REST fails,
shard 0 also falls back to the saved list, so a restart during a REST outage
still tracks.

Rows are keyed on market_index, so two markets sharing a symbol are both tracked;
the directory reports such symbols (`duplicates`) instead of merging them.

An allowlist (LIGHTER_MARKETS / PARADEX_MARKETS, `Config.market_symbols`) narrows it
here, where a listing is adopted, and nowhere else: every shard applies the same rule
to the same listing, so they agree on what is tracked whatever the listing's source
(shard 0's REST read, its hand-over, the list saved in D1), and shard 0 saves only
the tracked markets to `*_markets` (`tracked`), so the saved list, /api/markets and
/api/overview name exactly those (markets left out later turn inactive there, their
history kept). An allowed symbol the exchange does not list is reported
(`not_listed`, with a same-letters-other-case hint), never an error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from typing import TYPE_CHECKING

from . import sql
from .exchange import LIGHTER, Exchange
from .markets import Market, MarketListError, shard_of
from .ports import Database, Http, Statement

if TYPE_CHECKING:
    from .config import Config

STORAGE_KEY = "markets"
# After a failed read, try again after this long (doubling), never later than a refresh.
RETRY_MS = 15_000


@dataclass
class Change:
    added: list[Market] = field(default_factory=list)
    removed: list[Market] = field(default_factory=list)


class MarketDirectory:
    def __init__(self, shard: int, shards: int, refresh_ms: int, exchange: Exchange = LIGHTER,
                 symbols: tuple[str, ...] = ()) -> None:
        self.exchange = exchange
        self.shard = shard
        self.shards = shards
        self.refresh_ms = refresh_ms
        # The allowlist (Config.market_symbols); None: every market.
        self.allowed: frozenset[str] | None = frozenset(symbols) or None
        self.markets: dict[int, Market] = {}  # this shard's active markets
        self.listed = 0  # active markets in the whole listing
        self.kept = 0  # of those, the allowlist's (all of them without one), on every shard
        self.not_listed: dict[str, str | None] = {}  # allowed symbol not listed -> a listed one it may mean
        self.duplicates: dict[str, list[int]] = {}  # symbol -> market ids sharing it
        self.collisions: dict[int, list[str]] = {}  # market id -> symbols sharing it (a hash collision)
        self.refreshed_at: int | None = None
        self.as_of = 0  # when the listing in use was read from Lighter (ms)
        self.failures = 0

    # -- what changed ----------------------------------------------------------------

    def apply(self, listing: list[Market], as_of: int) -> Change:
        """Adopt a full listing (every market Lighter lists) read from Lighter at
        `as_of`; this shard's share of the active ones becomes `markets`. Returns what
        was added and removed. An older listing than the one in use is ignored (the
        saved list in D1 can lag the one shard 0 handed over)."""
        if as_of < self.as_of:
            return Change()
        self.as_of = as_of
        active = [m for m in listing if m.active]
        self.listed = len(active)
        self.not_listed = self._missing(active)
        active = [m for m in active if self.keeps(m)]
        self.kept = len(active)
        by_symbol: dict[str, list[int]] = {}
        for m in active:
            by_symbol.setdefault(m.symbol, []).append(m.market_index)
        self.duplicates = {s: ids for s, ids in by_symbol.items() if len(ids) > 1}
        # The reverse, for exchanges whose ids are a hash of the symbol (Paradex): two
        # symbols with one id would share rows. Reported; the first symbol is kept.
        by_id: dict[int, list[str]] = {}
        for m in active:
            by_id.setdefault(m.market_index, []).append(m.symbol)
        self.collisions = {i: symbols for i, symbols in by_id.items() if len(set(symbols)) > 1}
        active = [m for m in active if by_id[m.market_index][0] == m.symbol]
        mine = {m.market_index: m for m in active if shard_of(m.market_index, self.shards) == self.shard}
        change = Change(
            added=[m for i, m in sorted(mine.items()) if i not in self.markets],
            removed=[m for i, m in sorted(self.markets.items()) if i not in mine],
        )
        self.markets = mine
        return change

    @property
    def symbols(self) -> dict[int, str]:
        return {i: m.symbol for i, m in self.markets.items()}

    # -- the allowlist --------------------------------------------------------------------

    def keeps(self, market: Market) -> bool:
        return self.allowed is None or market.symbol in self.allowed

    def tracked(self, listing: list[Market]) -> list[Market]:
        """The markets of a full listing that are tracked: what shard 0 saves to D1."""
        return [m for m in listing if self.keeps(m)]

    def _missing(self, active: list[Market]) -> dict[str, str | None]:
        """Allowed symbols no active market has, each with the listed symbol it may mean
        (the same letters in another case: symbols are case-sensitive), or None."""
        if self.allowed is None:
            return {}
        listed = {m.symbol for m in active}
        by_folded = {s.casefold(): s for s in sorted(listed)}
        return {s: by_folded.get(s.casefold()) for s in sorted(self.allowed - listed)}

    # -- where the listing comes from ---------------------------------------------------

    async def from_exchange(self, http: Http, config: Config, now: int) -> list[Market]:
        """The exchange's REST list (shard 0 only). Raises MarketListError on any failure."""
        url = config.api_url + self.exchange.markets_path
        try:
            status, text = await http.get_text(url)
        except Exception as exc:
            raise MarketListError(f"GET {url}: {exc}") from None
        if status != 200:
            raise MarketListError(f"GET {url}: HTTP {status}: {text[:120]}")
        try:
            return self.exchange.parse_markets(json.loads(text), config, now)
        except ValueError as exc:
            raise MarketListError(f"GET {url}: {exc}") from None

    async def from_d1(self, db: Database) -> tuple[list[Market], int]:
        """The list shard 0 saved last, and when it was read from Lighter."""
        rows = await db.query(self.exchange.sql.SELECT_ACTIVE_MARKETS)
        markets = [
            Market(r["market_index"], r["symbol"], r["market_type"], r["status"],
                   r.get("price_decimals"), r.get("size_decimals"), r.get("base_asset"))
            for r in rows
        ]
        return markets, max((int(r["updated_at"]) for r in rows), default=0)

    @staticmethod
    def save_statements(listing: list[Market], shards: int, now: int,
                        statements_of: sql.Statements = sql.LIGHTER) -> list[Statement]:
        """Upsert every listed market (a row changes only if the market did), keep each
        (symbol, market) pair for good (the API answers a symbol through them), then
        mark the markets no longer listed inactive."""
        statements: list[Statement] = [
            (
                statements_of.UPSERT_MARKET,
                (m.market_index, m.symbol, m.market_type, m.status, 1 if m.active else 0,
                 m.price_decimals, m.size_decimals, shard_of(m.market_index, shards), now, m.base_asset),
            )
            for m in listing
        ]
        if listing:
            pairs = json.dumps([[m.symbol, m.market_index] for m in listing])
            statements.append((statements_of.INSERT_MARKET_SYMBOLS, (pairs,)))
        listed = json.dumps([m.market_index for m in listing])
        statements.append((statements_of.DEACTIVATE_MISSING_MARKETS, (now, listed)))
        return statements

    # -- when -----------------------------------------------------------------------------

    def next_refresh_at(self) -> int:
        if self.refreshed_at is None:
            return 0
        if self.failures:
            return self.refreshed_at + min(self.refresh_ms, RETRY_MS * 2 ** min(self.failures - 1, 8))
        return self.refreshed_at + self.refresh_ms

    # -- persistence (a resumed object tracks the same markets without asking again) -------

    def to_json(self) -> str:
        return json.dumps({"markets": [asdict(m) for m in self.markets.values()], "listed": self.listed,
                           "refreshed_at": self.refreshed_at, "as_of": self.as_of, "shards": self.shards})

    def restore(self, text: str | None) -> None:
        if not text:
            return
        raw = json.loads(text)
        saved = (Market(**m) for m in raw.get("markets", []))
        # Saved under another split (SHARDS changed, and the object was evicted before
        # the new run's list was saved: seed 206): only this shard's markets are kept,
        # and the list is read again at once, or the shard would track its old share.
        # Saved under another allowlist (a deploy changed it): what it leaves out is not
        # subscribed again, not even until the next refresh.
        self.markets = {m.market_index: m for m in saved
                        if shard_of(m.market_index, self.shards) == self.shard and self.keeps(m)}
        self.listed = int(raw.get("listed") or len(self.markets))
        self.refreshed_at = raw.get("refreshed_at") if raw.get("shards") == self.shards else None
        self.as_of = int(raw.get("as_of") or 0)

    @staticmethod
    def listing_payload(listing: list[Market], as_of: int) -> dict:
        return {"markets": [asdict(m) for m in listing], "asOf": as_of}

    @staticmethod
    def listing_from_payload(payload: dict) -> tuple[list[Market], int]:
        raw = payload.get("markets") if isinstance(payload, dict) else None
        if not isinstance(raw, list):
            raise MarketListError("market hand-over without a markets list")
        return [Market(**m) for m in raw], int(payload.get("asOf") or 0)
