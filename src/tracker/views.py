"""How the JSON API shapes D1 rows into answers. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .assets import Asset, AssetMap
from .sql import OVERVIEW_MINUTE_COLUMNS, OVERVIEW_WINDOW_COLUMNS


def market_row(row: dict, tracks: Callable[[str], bool] = lambda symbol: True) -> dict:
    """SQLite has no boolean: `active` is stored 0/1 and answered true/false. `tracked`:
    active and allowed by LIGHTER_MARKETS / PARADEX_MARKETS (`tracks`, Config.tracks),
    true at once after a deploy that narrows the list, before the next refresh marks the
    markets it left out inactive."""
    active = bool(row["active"])
    return {"market_index": row["market_index"], "symbol": row["symbol"], "active": active,
            "tracked": active and tracks(row["symbol"])}


def overview_row(row: dict, now_ms: int) -> dict:
    """One API_OVERVIEW row (w_* latest window, m_* latest minute, NULL when none)
    as {market_index, symbol, window, minute, age_ms}.

    age_ms runs from the window's end (timestamp + window_ms), the moment its data
    was complete: with 15 s windows and a 1.5 s flush grace, a healthy tracker
    shows 1.5-16.5 s. Clamped at 0: window timestamps follow the exchange's clock.
    """
    window = _prefixed(row, "w_", OVERVIEW_WINDOW_COLUMNS)
    minute = _prefixed(row, "m_", OVERVIEW_MINUTE_COLUMNS)
    age = None if window is None else max(0, now_ms - (int(window["timestamp"]) + int(window["window_ms"])))
    return {
        "market_index": row["market_index"],
        "symbol": row["symbol"],
        "window": window,
        "minute": minute,
        "age_ms": age,
    }


def _prefixed(row: dict, prefix: str, columns: tuple[str, ...]) -> dict | None:
    if row.get(prefix + "timestamp") is None:  # LEFT JOIN found no row
        return None
    return {c: row.get(prefix + c) for c in columns}


def asset_row(asset: Asset) -> dict:
    """One asset of GET /api/assets: its market on each exchange, and whether it was
    derived from the market lists or set by ASSET_PAIRS."""
    return {"asset": asset.name, "source": asset.source,
            "markets": {x: {"symbol": m.symbol, "market_index": m.market_index} for x, m in asset.markets.items()}}


def assets_answer(amap: AssetMap, enabled: Sequence[str]) -> dict:
    """GET /api/assets: the assets tracked on more than one exchange. With one exchange
    enabled there are none, and `note` says why."""
    shared = amap.shared()
    note = None
    if len(enabled) == 1:
        note = (f"only {enabled[0]} is enabled (ENABLED_EXCHANGES={enabled[0]}): no asset is tracked on more than "
                "one exchange; GET /api/compare answers an asset's market there alone")
    return {
        "assets": [asset_row(a) for a in shared],
        "count": len(shared),
        "exchanges": list(enabled),
        "note": note,
        # ASSET_PAIRS symbols that are not a tracked market of their exchange (skipped).
        "pairsNotListed": [{"asset": n.asset, "exchange": n.exchange, "symbol": n.symbol} for n in amap.not_listed],
    }
