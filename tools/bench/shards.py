"""Sharding proof: N tracker shards against the Lighter simulator, checked end to end.

    python -m bench shards --shards 2 --markets 600      (also --shards 1, --shards 4)

Starts tools/lighter_sim (--markets 600 at a modest --rate, Lighter's limits on: 500
subscriptions and 200 messages/min per connection) and wrangler dev with
--var SHARDS:N, starts tracking, waits until the subscriptions are complete (or, with
one shard, have stopped growing at the 500-per-connection cap), then until every shard
has flushed --windows more windows, and checks:

  subscriptions   the simulator's open connections: one per shard; their union is every
                  active market; no market on two connections; each connection holds one
                  residue class of market_id % N
  D1 rows         lighter_snapshots has a row for every market in every complete window
                  after full subscription; no (market_index, timestamp) twice; tick_count equals
                  the number of valid two-sided frames the simulator sent in that window
  lighter_markets every market once, shard == market_id % N
  /api/stats      `shards` has N entries; each summed counter equals the sum over shards;
                  each shard's `markets` is its residue class

Subscribing is paced by the tracker within one per-IP budget shared by the shards
(tracker.pacing.Budget.share: 180 messages a minute in all, 4 per shard kept for
pings), so 600 markets take over 3 minutes whatever N: the time to full subscription
is reported.

    python -m bench shards --shards 4 --markets 600 --storm [--docs]

runs the reconnect-storm proof of issue 10 instead (tools/bench/storm.py): two drops of
every connection 30 s apart and a restart of wrangler dev, against the simulator's
per-IP limits; zero refusals, every market live again, every row exact. It exits 1 when
a check fails; --docs also copies the result to docs/bench/shards-<M>x<N>.json.
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import devstack

from . import procstat
from .common import ADMIN_TOKEN, ROOT, get_json, http, machine, results_dir, snapshot_tree, table, write_results

PER_CONNECTION_CAP = 500
SUMMED = (
    "markets", "subscribed", "validBooks", "messagesReceived", "reconnects", "gaps", "malformed",
    "errors", "crossed", "oneSided", "lateFrames", "flushFailures", "windowsFlushed", "windowsLost",
    "pendingWindows",
)


def _log(msg: str) -> None:
    print(f"[shards {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def d1_query(persist: Path, sql: str, *args) -> list[tuple]:
    folder = persist / "v3" / "d1" / "miniflare-D1DatabaseObject"
    files = [p for p in folder.glob("*.sqlite") if p.name != "metadata.sqlite"]
    if not files:
        return []
    con = sqlite3.connect(f"file:{max(files, key=lambda p: p.stat().st_size)}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def num(text) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def check_markets(persist: Path, markets: int, n: int) -> dict:
    """lighter_markets: every market once, on shard market_id % N."""
    rows = d1_query(persist, "SELECT market_index, shard FROM lighter_markets")
    wrong = [(m, s) for m, s in rows if s != m % n]
    out = {"rows": len(rows), "expected": markets, "wrong_shard": len(wrong), "wrong_sample": wrong[:5]}
    out["ok"] = len(rows) == markets and not wrong
    return out


def check_stats(stats: dict, n: int, expected_ids: list[int]) -> dict:
    """/api/stats: N shards listed, each total the sum over shards, each shard its residue class."""
    per = sorted(stats.get("shards") or [], key=lambda s: s.get("shard", 0))
    sums = {k: (stats.get(k), sum(s.get(k) or 0 for s in per)) for k in SUMMED}
    bad_sums = {k: v for k, v in sums.items() if v[0] != v[1]}
    per_markets = [s.get("markets") for s in per]
    expected_per = [sum(1 for m in expected_ids if m % n == k) for k in range(n)]
    out = {
        "shards_listed": len(per), "sum_mismatches": bad_sums,
        "markets_per_shard": per_markets, "expected_markets_per_shard": expected_per,
        "subscribed_per_shard": [s.get("subscribed") for s in per],
        "totals": {k: stats.get(k) for k in ("markets", "subscribed", "validBooks", "messagesReceived", "gaps",
                                             "lateFrames", "windowsFlushed", "windowsLost", "lastError")},
    }
    out["ok"] = len(per) == n and not bad_sums and per_markets == expected_per
    return out


def run(args: argparse.Namespace) -> dict:
    n = args.shards
    out = results_dir()
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    window_ms = args.window_seconds * 1000
    expected_ids = list(range(args.markets))
    expected_subscribed = min(args.markets, n * PER_CONNECTION_CAP) if n > 1 else min(args.markets, PER_CONNECTION_CAP)
    result: dict = {
        "kind": "bench-shards", "started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args),
        "machine": machine(), "load_at_start": procstat.loadavg(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="lot-shards-"))
    persist = tmp / "state"
    app = tmp / "app"
    result["code"] = snapshot_tree(app)
    for name in ("shards-simulator.log", f"shards-{n}-wrangler.log"):
        (logs / name).unlink(missing_ok=True)
    sim = devstack.Simulator(logs / "shards-simulator.log", markets=args.markets, rate=args.rate, seed=args.seed,
                             extra_args=["--quiet"])
    wvars = {"LIGHTER_API_URL": sim.url, "LIGHTER_WS_URL": sim.ws_url, "ADMIN_TOKEN": ADMIN_TOKEN,
             "SHARDS": str(n), "WINDOW_SECONDS": str(args.window_seconds)}
    worker = devstack.WranglerDev(logs / f"shards-{n}-wrangler.log", persist_dir=persist, cwd=app,
                                  config=app / "wrangler.toml", vars=wvars)
    try:
        devstack.apply_schema(persist, cwd=app, config=app / "wrangler.toml")
        sim.start()
        worker.start()
        _log(f"{n} shard(s), {args.markets} markets at {args.rate}/s each: wrangler up "
             f"({worker.first_response_seconds:.1f}s); starting tracking")
        t0 = time.monotonic()
        status, body = http("POST", worker.url + "/api/start", token=ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"/api/start -> {status}: {body}")

        # Subscriptions: until complete, or (1 shard) until they stop growing at the cap.
        progress = []
        full_at = None
        last_change = time.monotonic()
        last_count = -1
        while True:
            stats = get_json(worker.url + "/api/stats")
            count = stats.get("subscribed") or 0
            now = time.monotonic()
            progress.append((round(now - t0, 1), count))
            if count != last_count:
                last_count, last_change = count, now
            if count >= expected_subscribed and full_at is None:
                full_at = now
                full_wall_ms = int(time.time() * 1000)
                _log(f"{count} markets subscribed {now - t0:.1f}s after /api/start")
            if full_at is not None and (count >= args.markets or now - last_change > args.plateau_seconds):
                break
            if now - t0 > args.subscribe_timeout:
                _log(f"subscriptions still at {count} after {args.subscribe_timeout:.0f}s: going on")
                if full_at is None:
                    full_at, full_wall_ms = now, int(time.time() * 1000)
                break
            time.sleep(1.0)
        result["subscribe"] = {
            "seconds_to_full": round(full_at - t0, 1), "subscribed": last_count,
            "expected": expected_subscribed, "progress": progress[:: max(1, len(progress) // 40)],
        }

        # Windows: `--windows` complete windows that began after full subscription, flushed by every shard.
        first_window = full_wall_ms - full_wall_ms % window_ms + window_ms
        need_until = first_window + args.windows * window_ms
        deadline = time.monotonic() + args.windows * args.window_seconds + 90
        while True:
            stats = get_json(worker.url + "/api/stats")
            per = stats.get("shards") or [stats]
            if all((s.get("flushedUntil") or 0) >= need_until and not s.get("pendingWindows") for s in per):
                break
            if time.monotonic() > deadline:
                _log("windows not all flushed in time: checking what is there")
                break
            time.sleep(1.0)
        _log(f"{args.windows} windows flushed after full subscription ({time.monotonic() - t0:.0f}s in all)")

        # -- checks ---------------------------------------------------------------------
        state = get_json(sim.url + "/_sim/state")
        stats = get_json(worker.url + "/api/stats")
        open_conns = [c for c in state["connections"] if c["open"] and not c.get("readonly")]
        subs = Counter(m for c in open_conns for m in c["subscriptions"])
        union = set(subs)
        twice = sorted(m for m, k in subs.items() if k > 1)
        residues_ok = all(len({m % n for m in c["subscriptions"]}) <= 1 for c in open_conns)
        check_subs = {
            "open_connections": len(open_conns), "expected_connections": n,
            "per_connection": [len(c["subscriptions"]) for c in open_conns],
            "union": len(union), "missing": len(set(expected_ids) - union),
            "missing_sample": sorted(set(expected_ids) - union)[:10],
            "on_two_connections": len(twice), "one_residue_class_per_connection": residues_ok,
        }
        check_subs["ok"] = (len(open_conns) == n and not twice and residues_ok
                            and len(union) == expected_subscribed)

        windows = list(range(first_window, need_until, window_ms))
        rows = d1_query(persist, "SELECT market_index, timestamp, tick_count FROM lighter_snapshots WHERE timestamp >= ? "
                   "AND timestamp < ?", first_window, need_until)
        dupes = d1_query(persist, "SELECT COUNT(*) FROM (SELECT market_index, timestamp FROM lighter_snapshots "
                    "GROUP BY market_index, timestamp HAVING COUNT(*) > 1)")[0][0]
        by_window = defaultdict(set)
        ticks = {}
        for market, ts, tick_count in rows:
            by_window[ts].add(market)
            ticks[(market, ts)] = tick_count
        # Ticks the simulator sent: frames after which the client's book is valid and two-sided.
        record = get_json(f"{sim.url}/_sim/record?since_ms={first_window}", timeout=120)
        sent = Counter()
        for r in record:
            ts = r["timestamp_ms"]
            if not first_window <= ts < need_until or not r.get("valid"):
                continue
            bid, ask = num(r.get("best_bid")), num(r.get("best_ask"))
            if bid is None or ask is None or not bid < ask:
                continue
            sent[(r["market_id"], ts - ts % window_ms)] += 1
        tracked = union if union else set(expected_ids)
        mismatch = [(k, ticks.get(k), v) for k, v in sent.items() if k[0] in tracked and ticks.get(k) != v]
        extra = [k for k in ticks if k not in sent]
        check_d1 = {
            "windows_checked": len(windows),
            "markets_per_window": [len(by_window.get(w, ())) for w in windows],
            "expected_per_window": expected_subscribed,
            "duplicate_market_timestamp": dupes,
            "rows_checked": len(rows),
            "tick_count_mismatches": len(mismatch),
            "tick_count_mismatch_sample": [list(m) for m in mismatch[:5]],
            "rows_without_sent_frames": len(extra),
            "sim_frames_counted": sum(sent.values()),
        }
        check_d1["ok"] = (all(len(by_window.get(w, ())) == expected_subscribed for w in windows)
                          and dupes == 0 and not mismatch and not extra and bool(windows))

        result["checks"] = {"subscriptions": check_subs, "d1": check_d1,
                            "markets": check_markets(persist, args.markets, n),
                            "stats": check_stats(stats, n, expected_ids)}
        if n == 1 or args.markets > n * PER_CONNECTION_CAP:
            log = worker.log_text()
            hints = [line.strip() for line in log.splitlines()
                     if any(w in line for w in ("500", "limit", "capacity", "too many", "excess", "cannot"))]
            result["excess"] = {
                "markets": args.markets, "per_connection_cap": PER_CONNECTION_CAP,
                "left_out": args.markets - len(union),
                "tracker_says": {k: stats.get(k) for k in ("markets", "subscribed", "validBooks", "lastError")},
                "per_shard": [{k: s.get(k) for k in ("shard", "markets", "subscribed", "lastError")} for s in per],
                "log_lines": hints[-10:],
                "sim_errors_sent": state.get("errors_sent"),
            }
        result["sim_errors_sent"] = state.get("errors_sent")
    finally:
        worker.stop()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result["load_at_end"] = procstat.loadavg()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return result


def report(r: dict) -> str:
    c = r["checks"]
    s, d, m, st = c["subscriptions"], c["d1"], c["markets"], c["stats"]
    ok = lambda b: "ok" if b else "FAIL"  # noqa: E731
    rows = [
        ("time to full subscription", f"{r['subscribe']['seconds_to_full']} s "
                                      f"({r['subscribe']['subscribed']}/{r['args']['markets']} markets)", ""),
        ("sim: open connections", f"{s['open_connections']} (subs each: {s['per_connection']})",
         ok(s["open_connections"] == s["expected_connections"])),
        ("sim: union of subscriptions", f"{s['union']} of {r['args']['markets']} (missing {s['missing']})",
         ok(s["union"] == r["checks"]["d1"]["expected_per_window"])),
        ("sim: market on two connections", s["on_two_connections"], ok(s["on_two_connections"] == 0)),
        ("sim: one id%N class per connection", s["one_residue_class_per_connection"],
         ok(s["one_residue_class_per_connection"])),
        ("D1: markets per window", f"{d['markets_per_window']} (expect {d['expected_per_window']})",
         ok(all(x == d["expected_per_window"] for x in d["markets_per_window"]) and d["markets_per_window"])),
        ("D1: duplicate (market,timestamp)", d["duplicate_market_timestamp"], ok(d["duplicate_market_timestamp"] == 0)),
        ("D1: tick_count == frames sim sent", f"{d['rows_checked']} rows, {d['tick_count_mismatches']} mismatches, "
                                             f"{d['rows_without_sent_frames']} unexplained",
         ok(not d["tick_count_mismatches"] and not d["rows_without_sent_frames"])),
        ("D1: lighter_markets shard == id % N", f"{m['rows']} rows, {m['wrong_shard']} wrong", ok(m["ok"])),
        ("stats: shards listed", st["shards_listed"], ok(st["shards_listed"] == r["args"]["shards"])),
        ("stats: totals == sum of shards", "all equal" if not st["sum_mismatches"] else st["sum_mismatches"],
         ok(not st["sum_mismatches"])),
        ("stats: markets per shard", f"{st['markets_per_shard']} (expect {st['expected_markets_per_shard']})",
         ok(st["markets_per_shard"] == st["expected_markets_per_shard"])),
        ("stats: subscribed per shard", st["subscribed_per_shard"], ""),
    ]
    text = f"SHARDS={r['args']['shards']}, {r['args']['markets']} markets\n"
    text += table(rows, ("check", "value", ""))
    if "excess" in r:
        e = r["excess"]
        text += (f"\n\nexcess: {e['left_out']} market(s) not tracked (cap {e['per_connection_cap']} per connection). "
                 f"Tracker says: {e['tracker_says']}")
        if e["log_lines"]:
            text += "\n  log: " + "\n  log: ".join(e["log_lines"])
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench shards", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--markets", type=int, default=600)
    ap.add_argument("--rate", type=float, default=1.0, help="simulator updates/s per market (default 1)")
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--window-seconds", type=int, default=15)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subscribe-timeout", type=float, default=300)
    ap.add_argument("--plateau-seconds", type=float, default=75,
                    help="with fewer than all markets subscribed, stop waiting after no change for this long")
    ap.add_argument("--storm", action="store_true",
                    help="the reconnect-storm proof (issue 10): two drops --drop-gap s apart, then a restart")
    ap.add_argument("--drop-gap", type=float, default=30, help="--storm: seconds between the two drops")
    ap.add_argument("--live-timeout", type=float, default=600,
                    help="--storm: give up waiting for every market to be live after this long (per event)")
    ap.add_argument("--docs", action="store_true",
                    help="--storm: also copy the result to docs/bench/shards-<markets>x<shards>.json")
    args = ap.parse_args(argv)
    if args.storm:
        return _storm(args, argv)
    result = run(args)
    path = write_results(f"shards-{args.shards}", result)
    print()
    print(report(result))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    return 0


def _storm(args: argparse.Namespace, argv: list[str] | None) -> int:
    import shlex
    import sys

    from . import storm

    args.command = "bash scripts/bench shards " + shlex.join(sys.argv[2:] if argv is None else argv)
    result = storm.run(args)
    path = write_results(f"shards-storm-{args.shards}", result)
    print()
    print(storm.report(result))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    if args.docs:
        docs = ROOT / "docs" / "bench" / f"shards-{args.markets}x{args.shards}.json"
        docs.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, docs)
        print(f"copied to {docs.relative_to(ROOT)}")
    return 0 if result.get("ok") else 1
