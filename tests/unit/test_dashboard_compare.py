"""The dashboard's compare view reads GET /api/compare's answer into chart lines
(frontend/static/js/compareseries.js under node): each venue's values at each timestamp,
nothing where a venue has no row or a size is not filled on both sides, the basis only
where the answer has one and only with both venues. The page itself is checked in
tests/browser/test_dashboard.py (test_compare_view)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import devstack

from tracker.compare import SERIES_COLUMNS

COMPARE_JS = Path(__file__).resolve().parents[2] / "frontend" / "static" / "js" / "compareseries.js"


def run_js(body: str):
    script = (
        f"import * as C from {json.dumps(COMPARE_JS.as_uri())};\n"
        f"const out = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    done = subprocess.run([devstack.node_executable(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _answer() -> dict:
    """Three timestamps, newest first: both venues at 3000; Lighter only at 2000 (its 1m
    sell unfilled); Paradex only at 1000 (no basis)."""

    lighter = {c: [1.0, 2.0, None] for c in SERIES_COLUMNS}
    paradex = {c: [10.0, None, 30.0] for c in SERIES_COLUMNS}
    lighter["avg_spread_bps"] = [0.5, 0.7, None]
    lighter["bid_depth_50"], lighter["ask_depth_50"] = [100.0, 200.0, None], [50.0, 25.0, None]
    lighter["slip_buy_1m"], lighter["slip_sell_1m"] = [3.0, 4.0, None], [5.0, None, None]
    return {"asset": "BTC", "exchanges": ["lighter", "paradex"], "timestamps": [3000, 2000, 1000],
            "series": {"lighter": lighter, "paradex": paradex}, "basis_bps": [1.25, None, None]}


def test_points_are_each_venues_values_at_each_timestamp_oldest_first():
    points = run_js(f"return C.comparePoints({json.dumps(_answer())});")
    assert [p["t"] for p in points] == [1000, 2000, 3000]
    old, mid, new = points
    assert old["lighter"] is None and old["paradex"]["spread"] == 30.0 and old["basis"] is None
    assert mid["paradex"] is None and mid["lighter"]["spread"] == 0.7
    assert mid["lighter"]["depth_50"] == 225.0 and new["lighter"]["depth_50"] == 150.0  # bid + ask
    assert new["lighter"]["slip_1m"] == 4.0  # the mean of buy 3 and sell 5
    assert mid["lighter"]["slip_1m"] is None  # the sell side did not fill 1M: no cost, not half of one
    assert new["basis"] == 1.25


def test_each_view_draws_both_venues_lines_then_the_basis():
    out = run_js(f"""
      const points = C.comparePoints({json.dumps(_answer())});
      const pick = (ds) => ds.map((d) => [d.label, d.data.map((p) => [p.x, p.y])]);
      return {{
        spread: pick(C.compareDatasets(points, "spread")),
        depth: C.compareDatasets(points, "depth").map((d) => d.label),
        slippage: C.compareDatasets(points, "slippage").map((d) => d.label),
        alone: C.compareDatasets(points, "spread", ["lighter"]).map((d) => d.label),
      }};
    """)
    assert out["spread"] == [
        ["Lighter spread", [[2000, 0.7], [3000, 0.5]]],
        ["Paradex spread", [[1000, 30.0], [3000, 10.0]]],
        ["basis (bps)", [[3000, 1.25]]],
    ]
    assert out["depth"] == [f"{v} depth ±{b} bps" for v in ("Lighter", "Paradex") for b in (10, 50, 100)] + ["basis (bps)"]
    assert out["slippage"] == [f"{v} slippage {s}" for v in ("Lighter", "Paradex")
                               for s in ("1K", "10K", "100K", "1M")] + ["basis (bps)"]
    assert out["alone"] == ["Lighter spread"]  # one venue: no basis line


def test_an_empty_or_odd_answer_draws_nothing():
    out = run_js("""
      return [C.comparePoints(null), C.comparePoints({}), C.comparePoints({ timestamps: ["x", 5], series: {} })];
    """)
    assert out[0] == [] and out[1] == []
    assert out[2] == [{"t": 5, "basis": None, "lighter": None, "paradex": None}]
