"""Lighter beside Paradex under the real Worker (issue 20): GET /api/assets and
/api/compare against the session's two simulators, both exchanges tracked.

The session's simulators list BTC, ETH and SOL on both venues (Lighter's perps `BTC`...,
Paradex's `BTC-USD-PERP`...). After a short run (and a stop, which rolls the partial
minute and hour), every number /api/compare answers for BTC, at every resolution, is
compared with the rows of each exchange's own tables read straight from the D1 file,
and the basis is recomputed here from the two rows' time-weighted mids. Paging, a time
range, a final (cacheable) page and the errors go through the real runtime too.
"""

from __future__ import annotations

import pytest

from conftest import wait_until
from simrecord import d1_rows
from tracker.compare import SERIES_COLUMNS
from tracker.paradex_markets import market_index_of

pytestmark = pytest.mark.timeout(300)

TABLES = {"windows": "snapshots", "minutes": "minutes", "hours": "hours"}
SHARED = {"BTC": "BTC-USD-PERP", "ETH": "ETH-USD-PERP", "SOL": "SOL-USD-PERP"}


def _rows(worker, exchange: str, resolution: str, market: int) -> dict[int, dict]:
    rows = d1_rows(worker, f"SELECT * FROM {exchange}_{TABLES[resolution]} WHERE market_index = ?", market)
    return {r["timestamp"]: r for r in rows}


def _check_page(body: dict, rows: dict[str, dict[int, dict]], stamps: list[int]) -> None:
    """Every value of the answer is the row's own (None where that exchange has no row),
    and the basis is (paradex twap_mid - lighter twap_mid) / lighter twap_mid * 1e4."""
    assert body["timestamps"] == stamps and body["count"] == len(stamps)
    for exchange in ("lighter", "paradex"):
        series = body["series"][exchange]
        assert set(series) == set(SERIES_COLUMNS)
        for column in SERIES_COLUMNS:
            want = [rows[exchange][t][column] if t in rows[exchange] else None for t in stamps]
            assert series[column] == want, (exchange, column)
    for i, t in enumerate(stamps):
        a, b = rows["lighter"].get(t), rows["paradex"].get(t)
        if a and b and a["twap_mid"] is not None and b["twap_mid"] is not None:
            assert body["basis_bps"][i] == (b["twap_mid"] - a["twap_mid"]) / a["twap_mid"] * 1e4
        else:
            assert body["basis_bps"][i] is None


def test_compare_answers_each_exchanges_rows_side_by_side(worker, simulator, paradex_simulator):
    lighter_ids = {b["symbol"]: b["market_id"] for b in simulator.get("/api/v1/orderBooks")["order_books"]
                   if b["market_type"] == "perp" and b["status"] == "active"}
    paradex_perps = {r["symbol"] for r in paradex_simulator.get("/v1/markets")["results"] if r["asset_kind"] == "PERP"}
    assert set(SHARED) <= set(lighter_ids) and set(SHARED.values()) <= paradex_perps, "both simulators list them"
    btc = {"lighter": lighter_ids["BTC"], "paradex": market_index_of("BTC-USD-PERP")}
    assert worker.admin_post("/api/start").status_code == 200  # both exchanges (idempotent)
    try:
        # The asset map, derived from the two market lists: exactly the three on both.
        listed = worker.wait_json("/api/assets", lambda b: b["count"] >= 3, timeout=60)
        assert listed["exchanges"] == ["lighter", "paradex"] and listed["note"] is None
        assert {a["asset"]: a["markets"] for a in listed["assets"]} == {
            name: {"lighter": {"symbol": name, "market_index": lighter_ids[name]},
                   "paradex": {"symbol": symbol, "market_index": market_index_of(symbol)}}
            for name, symbol in SHARED.items()}

        # A few windows of BTC on both, then a stop: it rolls the partial minute and hour.
        wait_until(lambda: all(len(_rows(worker, x, "windows", m)) >= 3 for x, m in btc.items()),
                   timeout=90, what="three BTC windows on each exchange")
    finally:
        assert worker.admin_post("/api/stop").status_code == 200
    for exchange in ("lighter", "paradex"):
        worker.wait_json(f"/api/stats?exchange={exchange}", lambda s: s["pendingWindows"] == 0, timeout=30)

    for resolution in TABLES:
        rows = {x: _rows(worker, x, resolution, m) for x, m in btc.items()}
        union = sorted(set(rows["lighter"]) | set(rows["paradex"]), reverse=True)
        assert set(rows["lighter"]) & set(rows["paradex"]), f"{resolution}: no timestamp with both exchanges' rows"
        body = worker.get_json(f"/api/compare?asset=BTC&resolution={resolution}&limit=1000")
        assert body["asset"] == "BTC" and body["resolution"] == resolution and body["note"] is None
        assert body["markets"] == {"lighter": {"symbol": "BTC", "market_index": btc["lighter"]},
                                   "paradex": {"symbol": "BTC-USD-PERP", "market_index": btc["paradex"]}}
        _check_page(body, rows, union)
        assert any(v is not None for v in body["basis_bps"])
        # Pages of one timestamp walk the same union, newest first; a range cuts it.
        for offset in range(min(len(union), 4)):
            page = worker.get_json(f"/api/compare?asset=BTC&resolution={resolution}&limit=1&offset={offset}")
            _check_page(page, rows, union[offset:offset + 1])
        lo, hi = union[-1], union[len(union) // 2]
        ranged = worker.get_json(f"/api/compare?asset=BTC&resolution={resolution}&from={lo + 1}&to={hi}&limit=2")
        _check_page(ranged, rows, [t for t in union if lo < t <= hi][:2])

    # Final history (it ends before what both exchanges sealed) is cached like the other routes'.
    windows = sorted(set(_rows(worker, "lighter", "windows", btc["lighter"])))
    path = f"/api/compare?asset=BTC&resolution=windows&from=0&to={windows[0]}"
    first = worker.get(path)
    assert first.status_code == 200 and first.headers["cache-control"].startswith("public, max-age=")
    again = worker.get(path, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304

    # The other asset spellings and the errors, as the other routes answer them.
    assert worker.get_json("/api/compare?asset=ETH&limit=1")["markets"]["paradex"]["symbol"] == "ETH-USD-PERP"
    unknown = worker.get("/api/compare?asset=btc")
    assert unknown.status_code == 404 and "did you mean 'BTC'" in unknown.json()["error"]
    assert worker.get("/api/compare?asset=BTC&resolution=days").status_code == 400
    assert worker.get("/api/compare").status_code == 400
    assert worker.admin_post("/api/start").status_code == 200  # leave tracking on, as the other modules expect
