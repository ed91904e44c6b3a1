"""How the JSON API shapes D1 rows into answers. Pure."""

from __future__ import annotations

from collections.abc import Callable

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
