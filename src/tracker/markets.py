"""Lighter's market list (`GET /api/v1/orderBooks`) and how markets split into shards."""

from __future__ import annotations

from dataclasses import dataclass

ORDER_BOOKS_PATH = "/api/v1/orderBooks"


class MarketListError(ValueError):
    """The market list answer is not what Lighter documents."""


@dataclass(frozen=True, slots=True)
class Market:
    market_index: int
    symbol: str
    market_type: str  # "perp" | "spot"
    status: str
    price_decimals: int | None = None
    size_decimals: int | None = None
    # The asset the market trades (a perpetual's underlying): tracker/assets.py pairs the
    # exchanges' markets by it. Lighter names a perp by its base asset (`BTC`, `1000PEPE`)
    # and a spot market `BASE/QUOTE`; Paradex says it (`base_currency`). None: unknown.
    base_asset: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


def parse_order_books(payload: object) -> list[Market]:
    """Parse the JSON body of GET /api/v1/orderBooks into markets, sorted by id."""
    if not isinstance(payload, dict):
        raise MarketListError("orderBooks answer is not a JSON object")
    code = payload.get("code")
    # Live captures say 200; an old doc example says 100. Both mean success.
    if code not in (200, 100):
        raise MarketListError(f"orderBooks answered code {code!r}: {str(payload.get('message', ''))[:120]}")
    books = payload.get("order_books")
    if not isinstance(books, list):
        raise MarketListError("orderBooks answer has no order_books list")
    markets: dict[int, Market] = {}
    for entry in books:
        if not isinstance(entry, dict):
            raise MarketListError(f"order_books entry is not an object: {entry!r:.80}")
        market_id = entry.get("market_id")
        symbol = entry.get("symbol")
        if type(market_id) is not int or market_id < 0 or market_id >= 2**53:
            raise MarketListError(f"market_id is not a valid id: {market_id!r:.40}")
        if not isinstance(symbol, str) or not symbol:
            raise MarketListError(f"market {market_id} has no symbol")
        price_decimals = entry.get("supported_price_decimals")
        size_decimals = entry.get("supported_size_decimals")
        markets[market_id] = Market(
            market_index=market_id,
            symbol=symbol,
            market_type=str(entry.get("market_type", "perp")),
            status=str(entry.get("status", "active")),
            price_decimals=price_decimals if type(price_decimals) is int else None,
            size_decimals=size_decimals if type(size_decimals) is int else None,
            base_asset=lighter_base_asset(symbol, str(entry.get("market_type", "perp"))),
        )
    return [markets[m] for m in sorted(markets)]


def lighter_base_asset(symbol: str, market_type: str) -> str | None:
    """What a Lighter market trades: a perp is named by its base asset (`BTC`, `1000PEPE`:
    one contract is 1000 PEPE), a spot market `BASE/QUOTE` (`ETH/USDC`). Lighter's list
    gives only numeric asset ids (`base_asset_id`), no names."""
    if market_type == "perp":
        return symbol
    if market_type == "spot":
        base, sep, _ = symbol.partition("/")
        return base if sep and base else None
    return None


def shard_of(market_index: int, shards: int) -> int:
    """Markets are split across tracker objects by id; stable as markets come and go."""
    return market_index % shards
