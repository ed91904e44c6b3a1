"""Paradex's market list (`GET /markets`, JSON) as the tracker's `Market`s.

Answer shape: `{"results": [MarketResp, ...]}` with decimals as strings, e.g.
`{"symbol": "BTC-USD-PERP", "asset_kind": "PERP", "price_tick_size": "0.1",
"order_size_increment": "0.00001", "open_at": 1717065600000, "expiry_at": 0, ...}`;
errors are `{"error": "MARKET_NOT_FOUND", "message": ..., "data": ...}`.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from .markets import Market, MarketListError

MARKETS_PATH = "/markets"  # the API base URL already ends in /v1
MAX_DECIMALS = 18  # a tick finer than 1e-18 is not a real market's: decimals unknown


def market_index_of(symbol: str) -> int:
    """A stable integer id for a Paradex symbol: the first 6 bytes of its SHA-256.

    Paradex has no numeric market ids, but the tracker's rows (and its sharding) are
    keyed on an int. A hash of the symbol is the same across restarts, deploys and
    shards without any coordination or stored mapping; 48 bits stay exact in a
    JavaScript number (< 2**53). Two symbols hashing to the same id are not merged
    here: both stay in the list, and the market directory reports them as duplicates.
    """
    return int.from_bytes(hashlib.sha256(symbol.encode("utf-8")).digest()[:6], "big")


def _decimals(step: object) -> int | None:
    """Decimals of a tick or increment: "0.00001" -> 5, "1" -> 0, "0.50" -> 1; None if
    missing, not a positive decimal, or finer than MAX_DECIMALS. Exact (no float, no
    context-dependent rounding)."""
    if isinstance(step, bool) or not isinstance(step, (str, int)):
        return None
    try:
        d = Decimal(step)
        if not d.is_finite() or d <= 0:
            return None
        _, digits, exponent = d.as_tuple()
        trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
        decimals = max(0, -(exponent + trailing_zeros))
    except (ArithmeticError, ValueError):  # InvalidOperation is an ArithmeticError
        return None
    return decimals if decimals <= MAX_DECIMALS else None


def _ms(value: object) -> int | None:
    return value if type(value) is int else None


def parse_markets(
    payload: object,
    asset_kinds: frozenset[str] = frozenset({"PERP"}),
    now_ms: int | None = None,
) -> list[Market]:
    """Parse the JSON body of GET /markets into markets of the given asset kinds,
    sorted by market_index (then symbol).

    A market is "inactive" when `now_ms` is given and it opens later (`open_at` in
    the future) or has expired (`expiry_at` non-zero and not in the future);
    otherwise "active". `market_type` is the asset kind lower-cased ("perp")."""
    if not isinstance(payload, dict):
        raise MarketListError("markets answer is not a JSON object")
    if "error" in payload:
        raise MarketListError(
            f"markets answered error {str(payload.get('error'))[:60]}: {str(payload.get('message', ''))[:120]}"
        )
    results = payload.get("results")
    if not isinstance(results, list):
        raise MarketListError("markets answer has no results list")
    markets: dict[str, Market] = {}
    for entry in results:
        if not isinstance(entry, dict):
            raise MarketListError(f"results entry is not an object: {entry!r:.80}")
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise MarketListError(f"market without a symbol: {symbol!r:.40}")
        try:
            market_index = market_index_of(symbol)
        except UnicodeEncodeError:  # a lone surrogate, which JSON can carry ("\ud800")
            raise MarketListError(f"market symbol is not valid text: {symbol!r:.60}") from None
        asset_kind = entry.get("asset_kind")
        if not isinstance(asset_kind, str) or not asset_kind:
            raise MarketListError(f"market {symbol!r:.60} has no asset_kind")
        if asset_kind not in asset_kinds:
            continue
        status = "active"
        if now_ms is not None:
            open_at = _ms(entry.get("open_at"))
            expiry_at = _ms(entry.get("expiry_at"))
            if (open_at is not None and open_at > now_ms) or (expiry_at and expiry_at <= now_ms):
                status = "inactive"
        base = entry.get("base_currency")
        # The same symbol listed twice: the last entry wins (as for Lighter's ids).
        markets[symbol] = Market(
            market_index=market_index,
            symbol=symbol,
            market_type=asset_kind.lower(),
            status=status,
            price_decimals=_decimals(entry.get("price_tick_size")),
            size_decimals=_decimals(entry.get("order_size_increment")),
            base_asset=base if isinstance(base, str) and base.strip() else None,
        )
    return sorted(markets.values(), key=lambda m: (m.market_index, m.symbol))
