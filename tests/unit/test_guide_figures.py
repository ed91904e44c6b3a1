"""DEPLOY.md's measured figures come from docs/bench/guide.json (tools/guide_figures.py).

Fails when a marked figure differs from the committed JSON (regenerate with
`bash scripts/guide-figures`), and when a section that quotes measurements carries a
number with a unit outside the markers.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import guide_figures as gf  # noqa: E402

GUIDE = ROOT / "DEPLOY.md"

# The sections whose numbers are measurements: each must come from the JSON.
MEASURED_SECTIONS = (
    "Plans and cost",
    "12. Sharding: how many shards",
    "13. Memory, CPU and D1: measured figures",
)
# A number followed by a unit of time, size, rate or count per time.
NUMBER_WITH_UNIT = re.compile(
    r"(?<![\w.,/-])\d[\d,]*(?:\.\d+)?\s?(?:msg/s|messages/s|requests/s|µs|us|ms|s|min|minutes?|h|hours?|days?|"
    r"MiB|MB|KiB|KB|kB|GB-s|GB|B|%)(?![\w/])"
)
# Published figures (Cloudflare's and Lighter's limits and prices, config defaults) that
# these sections may quote as they are: they are not measurements.
PUBLISHED = {
    "128 MB", "10 ms", "30 s", "10 GB", "500 MB", "5 GB", "15 s", "1.5 s", "60 s", "2 s", "7 days", "30 days",
    "24 h", "1 h", "90 days",
    "13,000 GB-s", "400,000 GB-s",  # Durable Objects: Free plan a day, Workers Paid a month
    "50 ms",  # the one report of Lighter's delta batching
}


def sections(text: str) -> dict[str, str]:
    """{heading: body} for every `##` heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def unmarked(body: str) -> list[str]:
    body = gf.MARKER.sub("", body)
    body = re.sub(r"^```.*?^```", "", body, flags=re.M | re.S)  # quoted log lines and commands
    body = re.sub(r"`[^`\n]*`", "", body)  # inline code: var names, values, commands
    body = re.sub(r"\(https?://[^)]*\)", "", body)  # link targets
    return [m.group(0) for m in NUMBER_WITH_UNIT.finditer(body) if m.group(0) not in PUBLISHED]


# -- the committed guide against the committed JSON ----------------------------------


@pytest.fixture(scope="module")
def data() -> dict:
    return gf.load()


def test_every_marked_figure_is_the_jsons(data):
    text = GUIDE.read_text()
    assert len(gf.MARKER.findall(text)) >= 20, "the guide quotes its figures between <!-- fig:... --> markers"
    assert gf.differences(text, data) == [], "run `bash scripts/guide-figures` to rewrite them from the JSON"


def test_the_json_says_how_it_was_made():
    raw = json.loads(gf.BENCH_JSON.read_text())
    assert raw["command"].startswith("bash scripts/guide-figures --bench")
    keys = [r["key"] for r in raw["runs"]]
    assert keys == ["run", *(f"shards.{n}" for n in gf.SHARD_COUNTS)]
    assert all(r["command"].startswith("python -m bench ") for r in raw["runs"])
    assert raw["dry_run"]["command"] == "npx wrangler deploy --dry-run"
    assert raw["run"]["kind"] == "bench-run" and all(s["kind"] == "bench-shards" for s in raw["shards"].values())


def test_measurement_sections_quote_no_number_outside_markers():
    found = sections(GUIDE.read_text())
    missing = [name for name in MEASURED_SECTIONS if name not in found]
    assert not missing, f"sections renamed? {missing}"
    stray = {name: unmarked(found[name]) for name in MEASURED_SECTIONS}
    stray = {name: hits for name, hits in stray.items() if hits}
    assert not stray, f"numbers with a unit outside <!-- fig --> markers: {stray}"


# -- the machinery ---------------------------------------------------------------------


BENCH = {"run": {"ingest": {"msgs_per_s": 16496, "workerd_cpu_us_per_msg": 61.43}}}


def test_render_rewrites_each_marker_from_the_json():
    text = ("x <!-- fig:run.ingest.msgs_per_s -->1<!-- /fig --> msg/s, "
            "<!-- fig:run.ingest.workerd_cpu_us_per_msg|.1f -->0<!-- /fig --> µs")
    new, problems = gf.render(text, BENCH)
    assert problems == []
    assert new == ("x <!-- fig:run.ingest.msgs_per_s -->16,496<!-- /fig --> msg/s, "
                   "<!-- fig:run.ingest.workerd_cpu_us_per_msg|.1f -->61.4<!-- /fig --> µs")
    assert gf.differences(new, BENCH) == []


def test_differences_name_a_stale_figure_and_a_missing_path():
    text = "<!-- fig:run.ingest.msgs_per_s -->16,000<!-- /fig --> <!-- fig:run.nope -->3<!-- /fig -->"
    diff = gf.differences(text, BENCH)
    assert diff[0] == "run.ingest.msgs_per_s: guide says '16,000', JSON says '16,496'"
    assert diff[1].startswith("run.nope: not in the JSON")
    _, problems = gf.render(text, BENCH)
    assert problems and problems[0].startswith("run.nope")


def test_the_stray_number_check_sees_units_and_ignores_markers_and_code():
    body = ("ingest <!-- fig:a -->16,496<!-- /fig --> msg/s; flush took 17 ms; heap 36 MiB; "
            "`WINDOW_SECONDS` `15`; limit 128 MB; 1,200 msg/s")
    assert unmarked(body) == ["17 ms", "36 MiB", "1,200 msg/s"]


COUNTED = {"steady": [{"markets": 20, "market_rows_written_per_market_window": 2.5,
                       "stats_rows_written_per_shard_window": 1.25},
                      {"markets": 1, "market_rows_written_per_market_window": 9.0,
                       "stats_rows_written_per_shard_window": 9.0}]}


def test_derived_cost_follows_the_published_prices():
    cost = gf.derive({"run": {"ingest": {"msgs_per_s": 8_000}}}, COUNTED)
    # an outbound WebSocket keeps a shard awake all day at 128 MB, which Cloudflare's
    # examples count as 0.128 GB: 0.128 x 86,400 s
    assert cost["do_gb_s_per_shard_day"] == 11_059 < gf.DO_FREE_GB_S_PER_DAY
    # a shard planned half busy takes 4,000 msg/s: 600 markets at 20 msg/s need 3
    assert cost["shard_capacity_msgs_per_s"] == 4_000
    assert cost["m600"]["shards"] == 3 and cost["m600"]["do_gb_s_month"] == round(3 * 11_059.2 * 30)
    assert cost["m50"]["shards"] == 1 and cost["m50"]["do_usd_month"] == 0  # within 400,000 GB-s
    # 3 x 331,776 GB-s - 400,000 included, at $12.50 a million
    assert cost["m600"]["do_usd_month"] == round((3 * 331_776 - 400_000) * 12.5 / 1e6, 2)
    # rows (the run with the most markets): 2.5 a market and window + 1.25 a shard and
    # window, 5,760 windows a day, 30 days; 50 M included, $1 a million
    assert cost["m50"]["rows_written_month_millions"] == round((2.5 * 50 + 1.25) * 5_760 * 30 / 1e6, 1) == 21.8
    assert cost["m50"]["usd_month"] == 5 and cost["m50"]["rows_usd_month"] == 0
    # the Free plan's 100,000 a day: one shard's 7,200, then 14,400 a market
    assert cost["free_plan_markets"] == 6
    # without a measured ingest rate, only the 500 subscriptions per connection decide
    assert gf.derive({"run": {}}, COUNTED)["m600"]["shards"] == 2


def test_the_rows_written_figures_are_d1s_count_and_within_the_target():
    """The guide's D1 figures come from the committed `python -m bench d1cost` run (D1's
    own counters on the simulation), and that run meets issue 19's target."""
    counted = json.loads(gf.D1COST_JSON.read_text())
    per_market, per_shard = gf.counted_rows(counted)
    assert gf.derive({"run": {}})["rows_written_per_market_window"] == per_market <= 3
    for run in counted["steady"]:
        # every exchange: at most 3 a market and window, the stats row apart
        assert run["market_rows_written_per_market_window"] <= 3, run["exchange"]
        assert run["stats_rows_written_per_shard_window"] <= 1.5, run["exchange"]


def test_the_free_plan_deployment_is_inside_every_daily_limit():
    """DEPLOY.md's Free-plan deployment (one shard, LIGHTER_MARKETS, dashboard open) by
    the guide's own arithmetic from the two committed runs: every limit under 100 %, D1's
    rows written at most 3 a market and window with the stats row included."""
    free = gf.load()["free"]
    shares = {name: free[name]["percent"] for name in gf.FREE_LIMITS}
    assert all(free[name]["used"] < free[name]["limit"] for name in gf.FREE_LIMITS), shares
    assert free["rows_written_per_market_window"] <= 3
    assert free["markets"] <= free["max_markets"]


def test_the_free_plan_arithmetic_counts_each_part():
    d1cost = {"steady": [{"exchange": "lighter", "shards": 1, "markets": 2, "rows_written_per_market_window": 2.5,
                          "market_rows_written_per_market_window": 2.4, "stats_rows_written_per_shard_window": 0.2,
                          "rows_read_per_market_window": 30.0, "alarms_per_shard_window": 2.0,
                          "storage_rows_written_per_shard_window": 10.0, "storage_rows_read_per_shard_window": 1.0}]}
    freeplan = {"markets": 2, "push_every_ms": 10_000, "health_ms": {"p50": 50.0},
                "hub_per_day": {"alarms": 8_640, "statsFetches": 8_640, "pushes": 8_640, "logBatches": 6_000},
                "page_requests_per_day": {"/ws": 10, "/api/overview": 5_760}, "page_requests_per_day_total": 20_000}
    free = gf.free_plan(d1cost, freeplan)
    assert free["d1_rows_written"]["used"] == 2.5 * 2 * 5_760
    assert free["do_requests"]["used"] == 2 * 5_760 + 8_640 + 8_640 + 6_000 + 10 + 1_440
    assert free["do_storage_rows_written"]["used"] == 10 * 5_760 + 8_640
    assert free["workers_requests"]["used"] == 20_000 + 1_440
    # the shard all day, the hub 50 ms per push, log batch and socket: 0.128 GB each
    assert free["do_gb_s"]["used"] == round(0.128 * (86_400 + (8_640 + 6_000 + 10) * 0.05))
    assert free["max_markets"] == int((100_000 - 0.2 * 5_760) // (2.4 * 5_760))
