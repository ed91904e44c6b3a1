"""GET /api/compare: one asset's rows on each exchange, side by side (issue 20). Pure
(D1 comes in as a port).

A page is a run of row timestamps, newest first, like every other route's (`limit`,
`offset`, inclusive `from`/`to`): the timestamps where either exchange has a row of the
asset, each exchange's row there or null. Windows, minutes and hours start at the same
instants on both exchanges (each is aligned to its exchange's own clock, on the same
WINDOW_SECONDS grid), so a timestamp is one stretch of time on both.

How a page is read (sql.py): each exchange's newest `limit` rows of the range, merged.
The union's `limit` newest timestamps are surely among them: fewer than `limit` of the
union's timestamps are newer than one of those, so fewer than `limit` of its own
exchange's are, and its row is within that exchange's newest `limit`. With an `offset`,
the page first finds where it starts (COMPARE_PAGE_START: the offset-th newest timestamp
of the union) and reads from there down the same way. Each exchange's part costs the
rows it returns, plus (with an offset) the walk past the skipped ones.

The basis, per timestamp with both rows:

    basis_bps = (paradex twap_mid - lighter twap_mid) / lighter twap_mid * 1e4

Time-weighted mids, not the tick-weighted avg_mid: the two feeds publish at different
rates (Paradex about 10 frames a second, Lighter in its own batches), so a mean over
ticks weights each exchange's busy moments its own way; the time-weighted mid is each
book's price over the same stretch of time. Lighter's mid as the denominator: the basis
reads as Paradex's premium in bps of Lighter's price (this tracker's home venue), and is
recomputed from two columns without more. The symmetric form, over the mean of the two
mids, differs from it by basis^2 / 2e4 bps: 0.005 bps at a 10 bps basis, far below what
a window's mids resolve. Null where either mid is (no covered time) or either row is missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .assets import Asset
from .sql import COMPARE_COLUMNS, COMPARE_PAGE_START, STATEMENTS

RESOLUTIONS = tuple(COMPARE_PAGE_START)  # windows, minutes, hours
SERIES_COLUMNS = COMPARE_COLUMNS[1:]  # per exchange, one list each, aligned on `timestamps`
BASIS_OF = ("lighter", "paradex")  # (reference, other): basis = (other - reference) / reference
# The market id bound for an exchange without a market of the asset: no market has it (ids
# are >= 0), and unlike None it binds the same through every D1 binding.
NO_MARKET = -1


class Reader(Protocol):
    async def query(self, sql: str, *params) -> list[dict]: ...


@dataclass
class Aligned:
    """A page: its timestamps, newest first, and each exchange's row at each (or None)."""

    timestamps: list[int]
    rows: dict[str, list[dict | None]]


def basis_bps(reference_mid: float | None, other_mid: float | None) -> float | None:
    """(other - reference) / reference in bps; None without both (or a non-positive reference)."""
    if reference_mid is None or other_mid is None or reference_mid <= 0:
        return None
    return (other_mid - reference_mid) / reference_mid * 1e4


def align(rows: Mapping[str, Sequence[Mapping]], limit: int) -> Aligned:
    """Each exchange's rows (any order) merged on their timestamps: the newest `limit`
    timestamps of any exchange, each exchange's row there or None."""
    by_time = {x: {int(r["timestamp"]): r for r in xrows} for x, xrows in rows.items()}
    stamps = sorted({t for times in by_time.values() for t in times}, reverse=True)[:limit]
    return Aligned(stamps, {x: [times.get(t) for t in stamps] for x, times in by_time.items()})


async def read_page(db: Reader, asset: Asset, resolution: str, from_ms: int, to_ms: int,
                    limit: int, offset: int) -> Aligned:
    """The page of `asset`'s rows at `resolution` (RESOLUTIONS) on every exchange it has a
    market on: where the page starts (with an offset), then each exchange's part at once."""
    markets = asset.markets
    if offset:
        start = await db.query(COMPARE_PAGE_START[resolution], *(
            markets[x].market_index if x in markets else NO_MARKET for x in BASIS_OF), from_ms, to_ms, offset)
        if not start:
            return align({x: [] for x in markets}, limit)
        to_ms = int(start[0]["timestamp"])
    parts = await asyncio.gather(*(
        db.query(STATEMENTS[x].API_COMPARE[resolution], m.market_index, from_ms, to_ms, limit)
        for x, m in markets.items()))
    return align(dict(zip(markets, parts)), limit)


def answer(asset: Asset, resolution: str, page: Aligned, limit: int, offset: int,
           enabled: Sequence[str]) -> dict:
    """The JSON body: the asset and its market on each exchange, the page's timestamps and,
    per exchange, one list per column aligned on them; the basis where both are there."""
    series = {x: {c: [r[c] if r is not None else None for r in rows] for c in SERIES_COLUMNS}
              for x, rows in page.rows.items()}
    reference, other = BASIS_OF
    basis = None
    if reference in series and other in series:
        basis = [basis_bps(a, b) for a, b in zip(series[reference]["twap_mid"], series[other]["twap_mid"])]
    return {
        "asset": asset.name,
        "resolution": resolution,
        "exchanges": list(asset.markets),
        "markets": {x: {"symbol": m.symbol, "market_index": m.market_index} for x, m in asset.markets.items()},
        "note": note(asset, enabled),
        "timestamps": page.timestamps,
        "series": series,
        "basis_bps": basis,
        "count": len(page.timestamps),
        "limit": limit,
        "offset": offset,
    }


def note(asset: Asset, enabled: Sequence[str]) -> str | None:
    """Why the answer has one exchange only (None when it has both)."""
    if asset.shared:
        return None
    (only,) = asset.markets
    if len(enabled) == 1:
        return (f"only {only} is enabled (ENABLED_EXCHANGES={only}): its series alone, no basis")
    missing = ", ".join(x for x in enabled if x not in asset.markets)
    return (f"{asset.name} is tracked on {only} only ({missing}: no tracked market of it; "
            "GET /api/assets lists the assets on both, ASSET_PAIRS pairs others): its series alone, no basis")
