"""The guide's measured figures, from ONE committed benchmark JSON (docs/bench/guide.json).

    bash scripts/guide-figures                 # rewrite every marked figure of DEPLOY.md from the JSON
    bash scripts/guide-figures --check         # exit 1 (and list them) when a marked figure differs
    bash scripts/guide-figures --bench         # run the benchmarks (full set), write the JSON, rewrite
    bash scripts/guide-figures --bench --quick # the same, short (what the first committed JSON is)

A figure in the guide is written between markers naming its path in the JSON and,
optionally, a format:

    <!-- fig:run.ingest.msgs_per_s -->16,496<!-- /fig -->
    <!-- fig:run.ingest.workerd_cpu_us_per_msg|.1f -->61.4<!-- /fig -->

Paths start with `run.` (python -m bench run), `shards.N.` (python -m bench shards
--shards N) or `cost.` (figures derived here from measured ones and Cloudflare's
published prices: `derive`). Integers print with thousands separators; floats with
the given format (default `,.1f`). tests/unit/test_guide_figures.py fails when a marked
figure differs from the JSON, and when a measurement section quotes a number with a
unit outside markers.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from tracker.config import Config, estimate_d1_bytes, estimate_d1_rows  # noqa: E402
GUIDE = ROOT / "DEPLOY.md"
BENCH_JSON = ROOT / "docs" / "bench" / "guide.json"
RESULTS = ROOT / "bench-results"

MARKER = re.compile(r"<!-- fig:([A-Za-z0-9_.]+)(?:\|([^ ]+))? -->(.*?)<!-- /fig -->")

# The benchmark commands of a full run and of a quick one (module `bench` under tools/).
SHARD_COUNTS = (1, 2, 4)


def bench_commands(quick: bool) -> list[tuple[str, list[str]]]:
    """(key in the JSON, argv of `python -m bench ...`) for each benchmark run."""
    run = ["run", "--output", "guide-run"] + (["--quick"] if quick else [])
    out = [("run", run)]
    for n in SHARD_COUNTS:
        argv = ["shards", "--shards", str(n), "--markets", "600"]
        if quick:  # fewer markets, one window: the same figures, minutes instead of a quarter hour
            argv = ["shards", "--shards", str(n), "--markets", "200", "--windows", "1", "--plateau-seconds", "30"]
        out.append((f"shards.{n}", argv))
    return out


# -- Cloudflare's published prices and allowances (checked 2026-11; cite in DEPLOY.md) -------
# https://developers.cloudflare.com/durable-objects/platform/pricing/
# https://developers.cloudflare.com/d1/platform/pricing/  and  /d1/platform/limits/
# https://developers.cloudflare.com/workers/platform/pricing/  and  /workers/platform/limits/
# Duration is billed at 128 MB per object, whatever it uses, and Cloudflare's own
# examples turn that into GB-s as 128 MB / 1 GB = 0.128 ("4,320,000 seconds * 128 MB /
# 1 GB = 552,960 GB-s", durable-objects/platform/pricing/): an object awake all day is
# 11,059 GB-s, of the Free plan's 13,000.
DO_MEMORY_GB = 128 / 1000
SECONDS_PER_DAY = 86_400
DAYS_PER_MONTH = 30
DO_FREE_GB_S_PER_DAY = 13_000
DO_PAID_GB_S_PER_MONTH = 400_000
DO_PAID_USD_PER_MILLION_GB_S = 12.50
D1_PAID_ROWS_WRITTEN_PER_MONTH = 50_000_000
D1_PAID_USD_PER_MILLION_ROWS_WRITTEN = 1.00
D1_FREE_ROWS_WRITTEN_PER_DAY = 100_000
D1_PAID_STORAGE_GB = 5
D1_PAID_USD_PER_GB_MONTH = 0.75
WORKERS_PAID_USD_PER_MONTH = 5.00
COST_MARKETS = (50, 200, 600)
# D1 rows written come from D1's own count, not a model: `python -m bench d1cost` runs the
# simulation on D1's SQLite with D1's row counters (tools/d1sqlite) and its committed run
# is docs/bench/d1cost.json: rows written per market and window (window, minute and hour
# rows, their pruning, the market list) and the stats row per shard and window.
D1COST_JSON = ROOT / "docs" / "bench" / "d1cost.json"
WINDOW_S = 15
# Lighter does not document its update rate; one report has deltas batched every 50 ms:
# at most ~20 messages a second per market, the ceiling the shard rule plans for.
PEAK_MSGS_PER_MARKET_S = 20
MAX_SUBSCRIPTIONS_PER_CONNECTION = 500
def lookup(data: dict, path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def fmt(value: Any, spec: str | None) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a figure: {value!r}")
    if spec:
        return format(value, spec)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def counted_rows(d1cost: dict) -> tuple[float, float]:
    """(rows written per market and window, per shard and window), D1's count at steady
    state: the run with the most markets (Lighter's) of docs/bench/d1cost.json."""
    run = max(d1cost["steady"], key=lambda r: r["markets"])
    return round(run["market_rows_written_per_market_window"], 2), round(run["stats_rows_written_per_shard_window"], 2)


def derive(bench: dict, d1cost: dict | None = None) -> dict:
    """Figures computed from measured ones (flat-out ingest of one shard, D1's row count)
    and the published prices above: the guide's plans-and-cost table."""
    ingest = bench["run"].get("ingest", {}).get("msgs_per_s") or 0
    windows_per_day = SECONDS_PER_DAY // WINDOW_S
    d1cost = d1cost if d1cost is not None else json.loads(D1COST_JSON.read_text())
    rows_per_market_window, rows_per_shard_window = counted_rows(d1cost)
    # A shard should run at most half busy: the rest is its alarm, stats and dashboards.
    shard_capacity = ingest // 2
    cost: dict[str, Any] = {
        "do_gb_s_per_shard_day": round(DO_MEMORY_GB * SECONDS_PER_DAY),
        "shard_capacity_msgs_per_s": shard_capacity,
        "rows_written_per_market_window": rows_per_market_window,
        "rows_written_per_shard_window": rows_per_shard_window,
        "rows_written_per_market_day": round(rows_per_market_window * windows_per_day),
        "rows_written_per_shard_day": round(rows_per_shard_window * windows_per_day),
        # A market's rows at the default retention once the hours are full (tracker/config.py).
        "rows_per_market_default_retention": estimate_d1_rows(1, Config().window_ms, Config().snapshot_retention_ms,
                                                              Config().minute_retention_ms, Config().hour_retention_ms),
        # One shard: its stats rows first, then as many markets as the rest allows.
        "free_plan_markets": int((D1_FREE_ROWS_WRITTEN_PER_DAY - rows_per_shard_window * windows_per_day)
                                 // (rows_per_market_window * windows_per_day)),
    }
    for m in COST_MARKETS:
        shards = max(1, math.ceil(m / MAX_SUBSCRIPTIONS_PER_CONNECTION),
                     math.ceil(m * PEAK_MSGS_PER_MARKET_S / shard_capacity) if shard_capacity else 1)
        gb_s_month = DO_MEMORY_GB * SECONDS_PER_DAY * DAYS_PER_MONTH * shards
        rows_month = (rows_per_market_window * m + rows_per_shard_window * shards) * windows_per_day * DAYS_PER_MONTH
        do_usd = max(0.0, gb_s_month - DO_PAID_GB_S_PER_MONTH) / 1e6 * DO_PAID_USD_PER_MILLION_GB_S
        rows_usd = max(0.0, rows_month - D1_PAID_ROWS_WRITTEN_PER_MONTH) / 1e6 * D1_PAID_USD_PER_MILLION_ROWS_WRITTEN
        defaults = Config()
        size = estimate_d1_bytes(m, defaults.window_ms, defaults.snapshot_retention_ms, defaults.minute_retention_ms,
                                 defaults.hour_retention_ms)
        cost[f"m{m}"] = {
            "shards": shards,
            "d1_mb_default_retention": round(size / 1e6),
            "peak_msgs_per_s": m * PEAK_MSGS_PER_MARKET_S,
            "do_gb_s_month": round(gb_s_month),
            "do_usd_month": round(do_usd, 2),
            "rows_written_month_millions": round(rows_month / 1e6, 1),
            "rows_usd_month": round(rows_usd, 2),
            "usd_month": round(WORKERS_PAID_USD_PER_MONTH + do_usd + rows_usd, 2),
        }
    return cost


def calc(bench: dict) -> dict:
    """Per-unit figures the guide quotes, divided out of the run's measured totals."""
    run = bench["run"]
    mem = run["memory"]["memoryBytes_end"]
    markets = run["args"]["markets"]
    sequential = [*run["api"]["sequential"].values(), *run["api"]["sequential_no_ingest"].values()]
    return {
        "markets": markets,
        "books_bytes_per_level": round(mem["books"] / max(1, mem["levels"])),
        "books_bytes_per_market": round(mem["books"] / markets),
        "aggregator_bytes_per_market": round(mem["aggregator"] / markets),
        "wasm_heap_mib": round(mem["wasmHeapMax"] / 2**20, 1),
        "api_sequential_p50_ms_max": max(e["p50_ms"] for e in sequential),
        "api_sequential_p99_ms_max": max(e["p99_ms"] for e in sequential),
        # Lighter's per-IP budget, split between the shards with a keepalive reserve each
        # (tracker/pacing.py): S x (floor(180 / S) - 4) subscriptions a minute in all.
        **{f"subscribes_per_minute_s{n}": subscribes_per_minute(n) for n in (1, 2, 4, 16)},
        "subscribe_minutes_600_s1": round(600 / subscribes_per_minute(1), 1),
        "subscribe_minutes_600_s4": round(600 / subscribes_per_minute(4), 1),
    }


def subscribes_per_minute(shards: int) -> int:
    """Subscriptions a minute the whole deployment sends, every shard together."""
    from tracker.pacing import Budget

    return shards * Budget.share(shards).subscribes_per_minute


# The Free plan's daily limits (developers.cloudflare.com: workers/platform/pricing/,
# durable-objects/platform/pricing/ "Free plan": requests 100,000 / day, duration 13,000
# GB-s / day, SQLite rows read 5 million / day, rows written 100,000 / day; d1/platform/pricing/).
FREE_LIMITS = {
    "workers_requests": 100_000,
    "do_requests": 100_000,
    "do_gb_s": DO_FREE_GB_S_PER_DAY,
    "do_storage_rows_written": 100_000,
    "do_storage_rows_read": 5_000_000,
    "d1_rows_written": D1_FREE_ROWS_WRITTEN_PER_DAY,
    "d1_rows_read": 5_000_000,
}
FREEPLAN_JSON = ROOT / "docs" / "bench" / "freeplan.json"
# An uptime monitor on GET /api/health once a minute (DEPLOY.md, section 14): a Workers
# request and one request to each shard.
MONITOR_PER_DAY = 1_440
# D1 rows read by GET /api/overview per market (docs/bench/d1cost.txt, "Rows read per
# call": 1,000 for 200 markets): the widest read the page makes at every window; its
# charts read only their new rows. The page's reads are bounded with it, not counted.
OVERVIEW_ROWS_READ_PER_MARKET = 5


def free_plan(d1cost: dict, freeplan: dict) -> dict:
    """The Free-plan deployment of DEPLOY.md (one shard, LIGHTER_MARKETS naming M markets,
    the dashboard open all day): what it uses a day of each Free-plan limit. The shard's
    figures are counted in the simulation (`python -m bench d1cost`, its one-shard run of
    M markets: D1 rows, alarm invocations, object storage rows); the dashboard's are
    measured under wrangler dev with the page open (`python -m bench freeplan`: the hub's
    counters, the page's requests by route, the stats round trip a push waits on)."""
    markets = freeplan["markets"]
    run = next(r for r in d1cost["steady"] if r["exchange"] == "lighter" and r["shards"] == 1
               and r["markets"] == markets)
    windows = SECONDS_PER_DAY // WINDOW_S
    hub = freeplan["hub_per_day"]
    pages = freeplan["page_requests_per_day"]
    sockets = pages.get("/ws", 0)
    # Awake while a handler runs (the hub hibernates: WebSocket Hibernation API): a push
    # waits on the stats round trip to the shard; a log batch and a socket's opening
    # are counted at the same length, which they do not reach.
    hub_awake_s = (hub["alarms"] + hub["logBatches"] + sockets) * freeplan["health_ms"]["p50"] / 1000
    use = {
        "workers_requests": freeplan["page_requests_per_day_total"] + MONITOR_PER_DAY,
        "do_requests": round(run["alarms_per_shard_window"] * windows) + hub["alarms"] + hub["statsFetches"]
                       + hub["logBatches"] + sockets + MONITOR_PER_DAY,
        "do_gb_s": round(DO_MEMORY_GB * (SECONDS_PER_DAY + hub_awake_s)),
        "do_storage_rows_written": round(run["storage_rows_written_per_shard_window"] * windows) + hub["alarms"],
        "do_storage_rows_read": round(run["storage_rows_read_per_shard_window"] * windows),
        "d1_rows_written": round(run["rows_written_per_market_window"] * markets * windows),
        "d1_rows_read": round(run["rows_read_per_market_window"] * markets * windows
                              + freeplan["page_requests_per_day_total"] * OVERVIEW_ROWS_READ_PER_MARKET * markets),
    }
    out: dict[str, Any] = {"markets": markets, "rows_written_per_market_window": round(run["rows_written_per_market_window"], 2),
                           "alarms_per_window": round(run["alarms_per_shard_window"], 2),
                           "storage_rows_written_per_window": round(run["storage_rows_written_per_shard_window"], 1),
                           "hub_awake_s": round(hub_awake_s), "push_every_s": round(freeplan["push_every_ms"] / 1000),
                           "stats_round_trip_ms": freeplan["health_ms"]["p50"]}
    for name, used in use.items():
        limit = FREE_LIMITS[name]
        out[name] = {"used": used, "limit": limit, "percent": round(100 * used / limit)}
    # How many markets the binding limit, D1's rows written, allows on one shard.
    per_market = run["market_rows_written_per_market_window"] * windows
    per_shard = run["stats_rows_written_per_shard_window"] * windows
    out["max_markets"] = int((D1_FREE_ROWS_WRITTEN_PER_DAY - per_shard) // per_market)
    return out


def figures(bench: dict) -> dict:
    out = {**bench, "cost": derive(bench), "calc": calc(bench)}
    if FREEPLAN_JSON.exists():
        out["free"] = free_plan(json.loads(D1COST_JSON.read_text()), json.loads(FREEPLAN_JSON.read_text()))
    return out


def render(text: str, data: dict) -> tuple[str, list[str]]:
    """The text with every marked figure rewritten from `data`, and the problems found
    (a path missing from the JSON)."""
    problems: list[str] = []

    def one(m: re.Match) -> str:
        path, spec = m.group(1), m.group(2)
        try:
            value = fmt(lookup(data, path), spec)
        except (KeyError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
            return m.group(0)
        head = f"<!-- fig:{path}|{spec} -->" if spec else f"<!-- fig:{path} -->"
        return f"{head}{value}<!-- /fig -->"

    return MARKER.sub(one, text), problems


def differences(text: str, data: dict) -> list[str]:
    """Every marked figure whose text is not what the JSON says (or whose path is missing)."""
    out: list[str] = []
    for m in MARKER.finditer(text):
        path, spec, shown = m.group(1), m.group(2), m.group(3)
        try:
            want = fmt(lookup(data, path), spec)
        except (KeyError, ValueError) as exc:
            out.append(f"{path}: not in the JSON ({exc})")
            continue
        if shown != want:
            out.append(f"{path}: guide says {shown!r}, JSON says {want!r}")
    return out


def load(path: Path = BENCH_JSON) -> dict:
    return figures(json.loads(path.read_text()))


# -- running the benchmarks --------------------------------------------------------------


def run_benchmarks(quick: bool, python: str) -> dict:
    started = time.time()
    out: dict[str, Any] = {
        "command": "bash scripts/guide-figures --bench" + (" --quick" if quick else ""),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "runs": [],
        "shards": {},
    }
    for key, argv in bench_commands(quick):
        t0 = time.time()
        print(f"[guide-figures] python -m bench {shlex.join(argv)}", flush=True)
        subprocess.run([python, "-m", "bench", *argv], cwd=ROOT, check=True)
        name = "guide-run" if key == "run" else f"shards-{key.split('.')[1]}"
        result = json.loads((RESULTS / f"{name}.json").read_text())
        if key == "run":
            out["run"] = result
        else:
            out["shards"][key.split(".")[1]] = result
        out["runs"].append({"key": key, "command": "python -m bench " + shlex.join(argv),
                            "seconds": round(time.time() - t0, 1)})
    out["dry_run"] = dry_run_sizes()
    out["duration_s"] = round(time.time() - started, 1)
    return out


DRY_RUN = ["node_modules/.bin/wrangler", "deploy", "--dry-run"]


def dry_run_sizes() -> dict:
    """What `wrangler deploy --dry-run` says it would upload (KiB), for section 2."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([*DRY_RUN, "--outdir", tmp], cwd=ROOT, capture_output=True, text=True, check=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    total = re.search(r"Total Upload: ([\d.]+) KiB / gzip: ([\d.]+) KiB", text)
    vendored = re.search(r"Vendored Modules\s*│\s*│\s*([\d.]+) KiB", text)
    if not total or not vendored:
        raise RuntimeError("wrangler deploy --dry-run printed no sizes:\n" + text[-2000:])
    return {"command": "npx wrangler deploy --dry-run", "total_kib": float(total.group(1)),
            "gzip_kib": float(total.group(2)), "vendored_kib": float(vendored.group(1))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/guide-figures", description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    ap.add_argument("--bench", action="store_true", help="run the benchmarks first and write the JSON")
    ap.add_argument("--quick", action="store_true", help="with --bench: the short set")
    ap.add_argument("--json", type=Path, default=BENCH_JSON)
    ap.add_argument("--guide", type=Path, default=GUIDE)
    args = ap.parse_args(argv)
    if args.bench:
        t0 = time.time()
        bench = run_benchmarks(args.quick, sys.executable)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(bench, indent=1, default=str) + "\n")
        print(f"[guide-figures] benchmarks took {(time.time() - t0) / 60:.1f} min; wrote {args.json}")
    data = load(args.json)
    text = args.guide.read_text()
    if args.check:
        diff = differences(text, data)
        for line in diff:
            print(line)
        return 1 if diff else 0
    new, problems = render(text, data)
    for line in problems:
        print(f"missing: {line}", file=sys.stderr)
    if new != text:
        args.guide.write_text(new)
        print(f"[guide-figures] rewrote {args.guide.name}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
