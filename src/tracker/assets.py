"""The asset map: which markets of the exchanges are the same asset (issue 20). Pure.

An asset is what a perpetual trades, its base asset: Lighter's perp `BTC` and Paradex's
`BTC-USD-PERP` (`base_currency` BTC) are both the asset `BTC`, and GET /api/compare puts
them side by side. The map is derived from the markets each exchange lists (saved in
`*_markets` with their `base_asset`, tracker/markets.py and paradex_markets.py), then the
ASSET_PAIRS setting (config.AssetPair) adds or overrides pairs.

Derived, only what is surely the same thing at the same price scale:
  * perpetuals only (`market_type` perp): a spot market or an option of the same base is
    another instrument, with another price;
  * tracked markets only: active (a delisted market drops out of the map; its rows stay
    readable through /api/minutes...) and allowed by LIGHTER_MARKETS / PARADEX_MARKETS;
  * the base asset as each exchange writes it, with one spelling made common: a contract
    of 1000 units is `1000PEPE` on Lighter and `kPEPE` on other venues, both named
    `1000PEPE` here (and `1M...` is `1000000...`). `PEPE` stays `PEPE`: a market of one
    PEPE and one of a thousand are not paired, their mids differ 1000-fold;
  * names are case-sensitive, like symbols;
  * several markets of one exchange with the same asset: the shortest symbol, then the
    lowest id, is the asset's market there (ASSET_PAIRS picks another).

ASSET_PAIRS `NAME=LIGHTER:PARADEX` then sets the asset NAME to exactly those markets (a
side left empty: none on that exchange), taking them from whatever derived asset had them;
a named symbol that is not a tracked market of its exchange is reported (`not_listed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .config import EXCHANGES, AssetPair
from .sql import STATEMENTS

if TYPE_CHECKING:
    from .config import Config

# Spellings of a multiplied contract: (prefix other venues use, the one Lighter uses).
MULTIPLIER_PREFIXES = (("k", "1000"), ("1M", "1000000"))
DERIVED = "derived"
SET_BY_PAIRS = "ASSET_PAIRS"


class Reader(Protocol):
    async def query(self, sql: str, *params) -> list[dict]: ...


@dataclass(frozen=True, slots=True)
class Listed:
    """One tracked market of one exchange, as its `*_markets` row has it."""

    exchange: str
    market_index: int
    symbol: str
    market_type: str = "perp"
    base_asset: str | None = None


@dataclass(frozen=True)
class Asset:
    name: str
    markets: Mapping[str, Listed]  # exchange -> its market, in EXCHANGES order
    source: str = DERIVED  # DERIVED or SET_BY_PAIRS

    @property
    def shared(self) -> bool:
        """Tracked on more than one exchange."""
        return len(self.markets) > 1


@dataclass(frozen=True, slots=True)
class NotListed:
    """An ASSET_PAIRS symbol that is not a tracked market of its exchange."""

    asset: str
    exchange: str
    symbol: str


@dataclass
class AssetMap:
    assets: dict[str, Asset] = field(default_factory=dict)
    not_listed: list[NotListed] = field(default_factory=list)

    def shared(self) -> list[Asset]:
        """The assets tracked on more than one exchange, by name."""
        return [self.assets[name] for name in sorted(self.assets) if self.assets[name].shared]

    def find(self, name: str) -> Asset | None:
        """The asset `name` (case-sensitive), also by another spelling of a multiplied
        contract (`kPEPE` finds `1000PEPE`)."""
        return self.assets.get(name) or self.assets.get(canonical(name))


def listed(exchange: str, rows: Iterable[Mapping], tracks: Callable[[str], bool] = lambda symbol: True) -> list[Listed]:
    """An exchange's tracked markets from its `*_markets` rows (market_index, symbol,
    market_type, base_asset, active): active ones that `tracks` (Config.tracks: the
    allowlist, which a deploy may have narrowed before the next refresh marks the rest
    inactive)."""
    return [Listed(exchange, int(r["market_index"]), r["symbol"], r.get("market_type") or "perp", r.get("base_asset"))
            for r in rows if r.get("active", 1) and tracks(r["symbol"])]


def canonical(base: str) -> str:
    """One name for a base asset however a venue spells a multiplied contract:
    `kPEPE` -> `1000PEPE`, `1MBABYDOGE` -> `1000000BABYDOGE`; anything else as it is
    (`KAITO`, `k`, `1INCH`, `PEPE`)."""
    for short, long in MULTIPLIER_PREFIXES:
        rest = base[len(short):]
        if base.startswith(short) and rest[:1].isupper():
            return long + rest
    return base


def base_of(market: Listed) -> str | None:
    """The base asset of a perpetual (None for any other market). A row saved before
    `base_asset` existed (NULL until shard 0's next market refresh) is read from the
    symbol: Lighter names a perp by its base, Paradex `BASE-QUOTE-PERP`."""
    if market.market_type != "perp":
        return None
    if market.base_asset:
        return market.base_asset
    if market.exchange == "paradex":
        base, _, rest = market.symbol.partition("-")
        return base if base and rest.endswith("PERP") else None
    return market.symbol


def build(markets: Iterable[Listed], pairs: Sequence[AssetPair] = (),
          exchanges: Sequence[str] = EXCHANGES) -> AssetMap:
    """The asset map of the tracked markets `markets` of `exchanges` (the enabled ones),
    with the ASSET_PAIRS `pairs` applied over what is derived. A pair's side on an
    exchange not in `exchanges` is left out, not reported."""
    markets = sorted(markets, key=lambda m: (len(m.symbol), m.symbol, m.market_index))
    chosen: dict[str, dict[str, Listed]] = {}
    by_symbol: dict[tuple[str, str], Listed] = {}
    for market in markets:
        by_symbol.setdefault((market.exchange, market.symbol), market)  # the lowest id of a symbol
        base = base_of(market)
        if base is not None:
            chosen.setdefault(canonical(base), {}).setdefault(market.exchange, market)
    assets = {name: Asset(name, _ordered(by_exchange)) for name, by_exchange in chosen.items()}
    not_listed: list[NotListed] = []
    for pair in pairs:
        named = {x: symbol for x in EXCHANGES if x in exchanges and (symbol := pair.symbol(x))}
        # What the pair names is its own: the derived asset of the same name goes, and its
        # markets leave whichever derived asset had them.
        assets.pop(pair.name, None)
        for name, asset in list(assets.items()):
            kept = {x: m for x, m in asset.markets.items() if named.get(x) != m.symbol}
            if len(kept) != len(asset.markets):
                assets[name] = Asset(name, kept, asset.source)
        mine: dict[str, Listed] = {}
        for exchange, symbol in named.items():
            market = by_symbol.get((exchange, symbol))
            if market is None:
                not_listed.append(NotListed(pair.name, exchange, symbol))
            else:
                mine[exchange] = market
        assets[pair.name] = Asset(pair.name, mine, SET_BY_PAIRS)
    return AssetMap({name: a for name, a in assets.items() if a.markets}, not_listed)


def _ordered(by_exchange: Mapping[str, Listed]) -> dict[str, Listed]:
    return {x: by_exchange[x] for x in EXCHANGES if x in by_exchange}


async def load(db: Reader, config: Config) -> AssetMap:
    """The asset map of the enabled exchanges, from their `*_markets` (one read each, at once)."""
    enabled = list(config.enabled_exchanges)
    answers = await asyncio.gather(*(db.query(STATEMENTS[x].API_ASSET_MARKETS) for x in enabled))
    markets = [m for x, rows in zip(enabled, answers) for m in listed(x, rows, config.for_exchange(x).tracks)]
    return build(markets, config.asset_pairs, enabled)
