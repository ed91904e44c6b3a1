"""GET /api/compare's page (tracker/compare.py) on D1's own SQLite (tools/d1sqlite) with
the real statements: each exchange's rows aligned on their timestamps, paged newest first
exactly as the union of both exchanges' rows would be, the basis between the two
time-weighted mids, and one exchange alone."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d1sqlite import D1Sqlite
from tracker import sql
from tracker.assets import Asset, Listed
from tracker.compare import RESOLUTIONS, SERIES_COLUMNS, align, answer, basis_bps, read_page
from tracker.rows import SLIPPAGE_COLUMNS
from tracker.validation import MAX_TIMESTAMP_MS

SCHEMA = (Path(__file__).resolve().parents[2] / "schema.sql").read_text()
STEP = {"windows": 15_000, "minutes": 60_000, "hours": 3_600_000}
T0 = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000
BTC_L, BTC_P, ETH_L = 1, 252258115184701, 0
BTC = Asset("BTC", {"lighter": Listed("lighter", BTC_L, "BTC"), "paradex": Listed("paradex", BTC_P, "BTC-USD-PERP")})


class Reader:
    """The Reader port over D1Sqlite, counting the rows D1 would bill."""

    def __init__(self, db: D1Sqlite) -> None:
        self.db, self.rows_read, self.calls = db, 0, 0

    async def query(self, statement, *params):
        result = self.db.run(statement, params)
        self.rows_read += result.rows_read
        self.calls += 1
        return result.rows


def row(exchange: str, market: int, ts: int, mid: float, k: int, columns: tuple[str, ...]) -> list:
    values = {"symbol": {"lighter": "BTC", "paradex": "BTC-USD-PERP"}[exchange] if market != ETH_L else "ETH",
              "market_index": market, "timestamp": ts, "avg_bid": mid - 0.5, "avg_ask": mid + 0.5, "avg_spread": 1.0,
              "tick_count": 10 + k, "avg_mid": mid + 0.01, "avg_spread_bps": 1e4 / mid, "twap_mid": mid,
              "covered_ms": 1000, "window_ms": 15_000, "windows": 4, "depth_samples": 15,
              "bid_depth_50": 1e5 + k, "ask_depth_50": 2e5 + k, "imbalance_50": -0.3}
    for i, c in enumerate(SLIPPAGE_COLUMNS):
        values[c] = k if c.startswith("fill_") else 0.5 + i + k / 1000
    return [values.get(c, 1.0) for c in columns]


def fill(db: D1Sqlite, resolution: str, stamps: dict[str, list[int]]) -> dict[str, list[list]]:
    """Rows of BTC on each exchange at the given timestamps (and ETH on Lighter everywhere)."""
    table = sql.COMPARE_TABLES[resolution]
    columns = sql.SNAPSHOT_COLUMNS if resolution == "windows" else sql.MINUTE_COLUMNS
    out = {}
    for exchange, market in (("lighter", BTC_L), ("paradex", BTC_P)):
        rows = [row(exchange, market, t, 100.0 + (3 if exchange == "paradex" else 0) + k / 7, k, columns)
                for k, t in enumerate(stamps[exchange])]
        statement = {"snapshots": sql.STATEMENTS[exchange].UPSERT_WINDOWS, "minutes": sql.STATEMENTS[exchange].UPSERT_MINUTES,
                     "hours": sql.STATEMENTS[exchange].UPSERT_HOURS}[table]
        db.run(statement, (json.dumps(rows),))
        out[exchange] = [dict(zip(columns, r)) for r in rows]
    everywhere = sorted(set(stamps["lighter"]) | set(stamps["paradex"]))
    eth = [row("lighter", ETH_L, t, 2000.0, 0, columns) for t in everywhere]
    db.run(sql.LIGHTER.UPSERT_MINUTES if table == "minutes" else sql.LIGHTER.UPSERT_HOURS if table == "hours"
           else sql.LIGHTER.UPSERT_WINDOWS, (json.dumps(eth),))
    return out


def brute(rows: dict[str, list[dict]], from_ms: int, to_ms: int, limit: int, offset: int):
    """The page by definition: the union of the timestamps in range, newest first, sliced."""
    stamps = sorted({r["timestamp"] for rs in rows.values() for r in rs if from_ms <= r["timestamp"] <= to_ms},
                    reverse=True)[offset:offset + limit]
    at = {x: {r["timestamp"]: r for r in rs} for x, rs in rows.items()}
    return stamps, {x: [at[x].get(t) for t in stamps] for x in rows}


@settings(max_examples=60, derandomize=True, deadline=None)
@given(resolution=st.sampled_from(RESOLUTIONS), seed=st.integers(0, 10_000), limit=st.integers(1, 12),
       offset=st.integers(0, 30), bounds=st.tuples(st.integers(-2, 45), st.integers(-2, 45)))
def test_a_page_is_the_union_of_both_exchanges_rows_sliced_newest_first(resolution, seed, limit, offset, bounds):
    rng = random.Random(seed)
    step = STEP[resolution]
    # Each exchange has rows at some of 40 instants: gaps on one, the other, both.
    stamps = {x: [T0 + k * step for k in range(40) if rng.random() < rng.choice((0.2, 0.6, 0.95))]
              for x in ("lighter", "paradex")}
    db = D1Sqlite()
    db.script(SCHEMA)
    rows = fill(db, resolution, stamps)
    from_ms, to_ms = (max(0, T0 + b * step) for b in bounds)
    reader = Reader(db)
    page = asyncio.run(read_page(reader, BTC, resolution, from_ms, to_ms, limit, offset))
    want_stamps, want_rows = brute(rows, from_ms, to_ms, limit, offset)
    assert page.timestamps == want_stamps
    for x in ("lighter", "paradex"):
        got = [None if r is None else {c: r[c] for c in SERIES_COLUMNS} for r in page.rows[x]]
        assert got == [None if r is None else {c: r[c] for c in SERIES_COLUMNS} for r in want_rows[x]]
    # D1's bill: each exchange's part reads what it returns, and an offset its walk: never the table.
    # (The page start's merge of the two walks costs D1 about 3.5 rows read per skipped row.)
    assert reader.rows_read <= 2 * (limit + 1) + (4 * (offset + 1) if offset else 0)
    assert reader.calls <= 2 + bool(offset)


def test_an_offset_past_the_end_is_an_empty_page_with_both_exchanges():
    db = D1Sqlite()
    db.script(SCHEMA)
    fill(db, "minutes", {"lighter": [T0, T0 + 60_000], "paradex": [T0 + 60_000]})
    page = asyncio.run(read_page(Reader(db), BTC, "minutes", 0, MAX_TIMESTAMP_MS, 5, 2))
    assert page.timestamps == [] and page.rows == {"lighter": [], "paradex": []}
    body = answer(BTC, "minutes", page, 5, 2, ["lighter", "paradex"])
    assert body["count"] == 0 and body["basis_bps"] == [] and body["series"]["paradex"]["avg_mid"] == []


def test_the_answer_aligns_each_column_and_takes_the_basis_between_the_time_weighted_mids():
    db = D1Sqlite()
    db.script(SCHEMA)
    rows = fill(db, "windows", {"lighter": [T0, T0 + 15_000, T0 + 30_000], "paradex": [T0 + 15_000, T0 + 45_000]})
    page = asyncio.run(read_page(Reader(db), BTC, "windows", 0, MAX_TIMESTAMP_MS, 10, 0))
    body = answer(BTC, "windows", page, 10, 0, ["lighter", "paradex"])
    assert body["timestamps"] == [T0 + 45_000, T0 + 30_000, T0 + 15_000, T0]
    assert body["markets"] == {"lighter": {"symbol": "BTC", "market_index": BTC_L},
                               "paradex": {"symbol": "BTC-USD-PERP", "market_index": BTC_P}}
    assert body["exchanges"] == ["lighter", "paradex"] and body["note"] is None
    lighter, paradex = body["series"]["lighter"], body["series"]["paradex"]
    assert set(lighter) == set(SERIES_COLUMNS) == set(paradex)
    assert all(len(v) == 4 for s in (lighter, paradex) for v in s.values())
    assert lighter["twap_mid"][0] is None and paradex["twap_mid"][1] is None and lighter["twap_mid"][3] is not None
    by_time = {x: {r["timestamp"]: r for r in rs} for x, rs in rows.items()}
    l15, p15 = by_time["lighter"][T0 + 15_000], by_time["paradex"][T0 + 15_000]
    assert lighter["slip_buy_100k"][2] == l15["slip_buy_100k"] and paradex["ask_depth_50"][2] == p15["ask_depth_50"]
    # Recomputed here from the two rows' time-weighted mids, Lighter's as the denominator.
    assert body["basis_bps"] == [None, None, (p15["twap_mid"] - l15["twap_mid"]) / l15["twap_mid"] * 1e4, None]
    lighter_mid = 100.0 + 1 / 7  # its second row; Paradex's first, at 103
    assert body["basis_bps"][2] == pytest.approx((103.0 - lighter_mid) / lighter_mid * 1e4, rel=1e-12)


def test_basis_bps():
    assert basis_bps(100.0, 100.1) == pytest.approx(10.0)
    assert basis_bps(100.0, 99.9) == pytest.approx(-10.0)
    assert basis_bps(None, 1.0) is None and basis_bps(1.0, None) is None and basis_bps(0.0, 1.0) is None
    # Antisymmetric up to basis^2 / 1e4 against the mean-of-mids form (the docstring's claim).
    b = basis_bps(100.0, 100.1)
    assert abs(b - (100.1 - 100.0) / ((100.1 + 100.0) / 2) * 1e4) <= b * b / 2e4 * 1.01


def test_one_exchange_only_answers_it_and_says_so():
    db = D1Sqlite()
    db.script(SCHEMA)
    fill(db, "hours", {"lighter": [T0, T0 + 3_600_000], "paradex": [T0]})
    lighter_only = Asset("BTC", {"lighter": BTC.markets["lighter"]})
    reader = Reader(db)
    for offset in (0, 1):
        page = asyncio.run(read_page(reader, lighter_only, "hours", 0, MAX_TIMESTAMP_MS, 10, offset))
        assert page.timestamps == [T0 + 3_600_000, T0][offset:] and list(page.rows) == ["lighter"]
    body = answer(lighter_only, "hours", page, 10, 1, ["lighter"])
    assert body["exchanges"] == ["lighter"] and list(body["series"]) == ["lighter"] and body["basis_bps"] is None
    assert body["note"] == "only lighter is enabled (ENABLED_EXCHANGES=lighter): its series alone, no basis"
    # Both enabled, the asset tracked on one: said too.
    text = answer(lighter_only, "hours", page, 10, 1, ["lighter", "paradex"])["note"]
    assert text.startswith("BTC is tracked on lighter only (paradex: no tracked market of it")


def test_align_keeps_the_newest_timestamps_of_either_exchange():
    page = align({"lighter": [{"timestamp": 3}, {"timestamp": 1}], "paradex": [{"timestamp": 2}, {"timestamp": 3}]}, 2)
    assert page.timestamps == [3, 2]
    assert page.rows == {"lighter": [{"timestamp": 3}, None], "paradex": [{"timestamp": 3}, {"timestamp": 2}]}
    assert align({"lighter": []}, 5).timestamps == []
