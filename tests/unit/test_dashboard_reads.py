"""The dashboard's charts keep their rows between refreshes and ask only for the new
ones (frontend/static/js/series.js under node): an open dashboard reads a few D1 rows
a refresh instead of up to a thousand (D1 bills every row a query reads; the Free plan
allows 5 million a day, and one chart refreshing its 1,000 minutes every 15 s window
would read 5.76 million). tests/browser/test_dashboard.py checks the page really asks
that way (test_the_price_chart_asks_only_for_minutes_it_does_not_hold)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import devstack

SERIES_JS = Path(__file__).resolve().parents[2] / "frontend" / "static" / "js" / "series.js"


def run_js(body: str):
    script = (
        f"import * as S from {json.dumps(SERIES_JS.as_uri())};\n"
        f"const out = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    done = subprocess.run([devstack.node_executable(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_next_fetch_starts_at_the_newest_point_held_for_this_chart():
    out = run_js("""
      const held = { key: "lighter|ETH", points: [{ t: 1 }, { t: 2 }, { t: 3 }] };
      return [S.fetchFrom(held, "lighter|ETH"), S.fetchFrom(held, "lighter|BTC"), S.fetchFrom(null, "x"),
              S.fetchFrom({ key: "x", points: [] }, "x")];
    """)
    assert out == [3, None, None, None]


def test_fresh_rows_replace_the_held_ones_from_where_they_start():
    out = run_js("""
      const p = (t, v) => ({ t, v });
      const held = [p(1, "a"), p(2, "b"), p(3, "old")];
      return {
        // The newest held minute (3) came back grown, and a new one (4).
        grown: S.mergePoints(held, [p(3, "new"), p(4, "d")], { since: 3 }),
        // Nothing new: the held points stay (the newest one as the server has it now).
        same: S.mergePoints(held, [p(3, "old")], { since: 3 }),
        // Not incremental (first fetch, or a page came back full): the fresh rows alone.
        full: S.mergePoints(held, [p(7, "x")], { since: 3, full: true }),
        first: S.mergePoints([], [p(5, "y")], { since: null }),
        // At most `keep`, the newest; none before `after` (a range's start).
        kept: S.mergePoints(held, [p(3, "c"), p(4, "d")], { since: 3, keep: 2 }),
        ranged: S.mergePoints(held, [p(3, "c"), p(4, "d")], { since: 3, after: 2 }),
      };
    """)
    v = {k: [(p["t"], p["v"]) for p in points] for k, points in out.items()}
    assert v["grown"] == [(1, "a"), (2, "b"), (3, "new"), (4, "d")]
    assert v["same"] == [(1, "a"), (2, "b"), (3, "old")]
    assert v["full"] == [(7, "x")] and v["first"] == [(5, "y")]
    assert v["kept"] == [(3, "c"), (4, "d")]
    assert v["ranged"] == [(2, "b"), (3, "c"), (4, "d")]
