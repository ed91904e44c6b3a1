"""The reconnect-storm proof (issue 10): N shards against the simulator enforcing Lighter's
limits per client IP, one run:

    bash scripts/bench shards --shards 4 --markets 600 --storm [--docs]

  start       /api/start; wait until every market is live
  drop 1      the simulator closes every connection (control `close`)
  drop 2      30 s later (--drop-gap), every connection again
              wait until every market is live
  restart     wrangler dev stopped and started on the same state (WranglerDev.restart);
              the persisted alarm alone resumes tracking; wait until every market is live
  windows     wait until every shard has flushed --windows windows after that

"Live" is the tracker's view (/api/stats: subscribed == validBooks == markets, nothing
waiting) confirmed by the simulator's (every market subscribed on exactly one open
connection, none pending). Each time is set beside the physical bound: `markets`
subscribes at the deployment's allowed rate, SHARDS x (floor(180 / SHARDS) - 4) a minute
(tracker.pacing.Budget.share), and beside Lighter's own 200 a minute.

Checks (each flagged; the command exits 1 when one fails):
  refusals    the simulator's errors_sent: 30009, 30010, 23001, 23003 and 30002 all 0;
              any refusal is attributed to its connection (shard = market_id % N of what
              it carried), with when it was first and last sent
  live        all markets live again at the end, one connection per shard
  D1 rows     every (market, window) in which the simulator sent a market valid two-sided
              frames has exactly one row and its tick_count equals that count; no row
              where nothing was sent. Windows that touch a connection's end (the drops,
              the restart, a connection the simulator closed) are "edge" windows: frames
              in flight then may or may not have been read, so they are reported apart;
              windows the tracker itself declares lost (lostRanges, the restart) too.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

import devstack
from tracker.pacing import DEFAULT_MAX_PER_MINUTE, LIGHTER_MESSAGES_PER_MINUTE, RATE_WINDOW_MS, Budget

from . import procstat
from .common import ADMIN_TOKEN, ROOT, get_json, http, machine, results_dir, snapshot_tree, table
from .shards import check_markets, check_stats, d1_query, num

REFUSALS = ("30009", "30010", "23001", "23003", "30002")
# How long after an event a connection's close still counts as caused by it (a killed
# workerd's sockets can take a few seconds to be seen closed).
EVENT_CLOSE_SLACK_MS = 30_000


def _log(msg: str) -> None:
    print(f"[storm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _now_ms() -> int:
    return int(time.time() * 1000)


def sim_post(sim: devstack.Simulator, action: str, **body) -> dict:
    req = urllib.request.Request(f"{sim.url}/_sim/{action}", method="POST", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def bound_seconds(markets: int, shards: int) -> dict:
    """The physical bound: every market's subscribe at the allowed rate. `seconds` is the
    steady rate (the issue's figure); a rolling window lets each shard send its whole
    minute's share at once, so from an empty window the last subscribe can go out after
    (ceil(per shard / share) - 1) windows (`window_seconds`), a little sooner."""
    share = Budget.share(shards).subscribes_per_minute
    per_shard = -(-markets // shards)
    return {
        "subscribes_per_minute": shards * share,
        "formula": f"{markets} / ({shards} * ({DEFAULT_MAX_PER_MINUTE // shards} - 4)) min",
        "seconds": round(markets * 60 / (shards * share), 1),
        "window_seconds": round((-(-per_shard // share) - 1) * RATE_WINDOW_MS / 1000, 1),
        "lighter_limit_seconds": round(markets * 60 / LIGHTER_MESSAGES_PER_MINUTE, 1),
    }


class Watch:
    """Polls /api/stats (every second) and the simulator's error counters (every few
    seconds); keeps a timeline of both."""

    def __init__(self, worker, sim, markets: int, shards: int, t0: float) -> None:
        self.worker, self.sim, self.markets, self.shards, self.t0 = worker, sim, markets, shards, t0
        self.timeline: list[dict] = []
        self.error_events: list[dict] = []
        self._errors: dict[str, int] = {}
        self._errors_polled = 0.0

    def rel(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def stats(self) -> dict | None:
        try:
            return get_json(self.worker.url + "/api/stats", timeout=20)
        except Exception:  # wrangler restarting, or a slow answer under load
            return None

    def poll(self, phase: str) -> dict | None:
        s = self.stats()
        if s is not None:
            self.timeline.append({
                "t": self.rel(), "phase": phase, "subscribed": s.get("subscribed"), "valid": s.get("validBooks"),
                "waiting": s.get("waitingSubscriptions"), "eta_s": s.get("etaAllLiveSeconds"),
                "per_shard": [x.get("subscribed") for x in sorted(s.get("shards") or [], key=lambda x: x.get("shard", 0))],
            })
        if time.monotonic() - self._errors_polled >= 3:
            self.poll_errors(phase)
        return s

    def poll_errors(self, phase: str) -> dict:
        self._errors_polled = time.monotonic()
        try:
            state = get_json(self.sim.url + "/_sim/state", timeout=30)
        except Exception:
            return {}
        errors = state.get("errors_sent") or {}
        for code, count in errors.items():
            if count != self._errors.get(code, 0):
                self.error_events.append({"t": self.rel(), "phase": phase, "code": code,
                                          "new": count - self._errors.get(code, 0), "total": count})
        self._errors = dict(errors)
        return state

    def sim_live(self) -> tuple[bool, dict]:
        state = get_json(self.sim.url + "/_sim/state", timeout=30)
        open_conns = [c for c in state["connections"] if c["open"]]
        subs = Counter(m for c in open_conns for m in c["subscriptions"])
        pending = sum(len(c["pending"]) for c in open_conns)
        ok = (len(subs) == self.markets and all(k == 1 for k in subs.values()) and pending == 0
              and len(open_conns) == self.shards)
        return ok, {"open_connections": len(open_conns), "union": len(subs), "pending": pending,
                    "on_two_connections": sum(1 for k in subs.values() if k > 1)}

    def all_live(self, s: dict | None) -> bool:
        m = self.markets
        return bool(s and s.get("isTracking") and s.get("connected") and s.get("subscribed") == m
                    and s.get("validBooks") == m and not s.get("waitingSubscriptions")
                    and len(s.get("shards") or []) == self.shards)

    def wait_live(self, phase: str, timeout: float, until: float | None = None) -> dict:
        """Poll until every market is live (tracker and simulator agree), the timeout, or
        the monotonic time `until` (then it returns not live)."""
        start = time.monotonic()
        first_eta = None
        low = None
        while True:
            now = time.monotonic()
            if until is not None and now >= until:
                break
            if now - start > timeout:
                _log(f"{phase}: not all live after {timeout:.0f} s")
                break
            s = self.poll(phase)
            if s is not None:
                if first_eta is None and s.get("waitingSubscriptions"):
                    first_eta = s.get("etaAllLiveSeconds")
                low = s.get("subscribed") if low is None else min(low, s.get("subscribed") or 0)
            if self.all_live(s):
                ok, view = self.sim_live()
                if ok:
                    return {"live": True, "at": time.monotonic(), "at_ms": _now_ms(), "sim": view,
                            "first_eta_s": first_eta, "fewest_subscribed": low}
            time.sleep(1.0)
        s = self.stats() or {}
        return {"live": False, "at": time.monotonic(), "at_ms": _now_ms(), "subscribed": s.get("subscribed"),
                "valid": s.get("validBooks"), "waiting": s.get("waitingSubscriptions"),
                "first_eta_s": first_eta, "fewest_subscribed": low}


def _raise(msg: str):
    raise RuntimeError(msg)


def _retry(fn, tries: int = 6, pause: float = 5.0):
    """The final reads, retried: one refused or slow answer on a loaded machine (seen
    once: both servers refused connections for a moment) must not cost the whole run."""
    for i in range(tries):
        try:
            return fn()
        except Exception as exc:
            if i == tries - 1:
                raise
            _log(f"retrying after {exc!r}")
            time.sleep(pause)


def _windows(lo: int, hi: int, window_ms: int) -> range:
    """Window starts of every window overlapping [lo, hi]."""
    return range(lo - lo % window_ms, hi - hi % window_ms + 1, window_ms)


def check_rows(sim, persist: Path, events_ms: dict[str, int], lost_ranges: list[dict], until_ms: int,
               window_ms: int, shards: int) -> dict:
    """Every (market, window) the simulator sent frames for has its row, with that tick count."""
    state = _retry(lambda: get_json(sim.url + "/_sim/state", timeout=60))
    sent: Counter = Counter()
    edge: dict[tuple[int, int], str] = {}  # (market, window) -> what ended a connection then
    conns = []
    for c in state["connections"]:
        records = _retry(lambda: get_json(f"{sim.url}/_sim/record?conn={c['conn']}", timeout=300))
        markets_seen = {r["market_id"] for r in records}
        last_ts = max((r["timestamp_ms"] for r in records), default=None)
        conns.append({"conn": c["conn"], "open": c["open"], "opened_ms": c["opened_ms"], "closed_ms": c["closed_ms"],
                      "close_code": c["close_code"], "close_reason": c["close_reason"], "frames": len(records),
                      "record_len": c.get("record_len"),
                      "shard": sorted({m % shards for m in markets_seen | set(c.get("asked") or ())}),
                      "errors_sent": c.get("errors_sent", {})})
        for r in records:
            ts = r["timestamp_ms"]
            if ts >= until_ms or not r.get("valid"):
                continue
            bid, ask = num(r.get("best_bid")), num(r.get("best_ask"))
            if bid is None or ask is None or not bid < ask:
                continue
            sent[(r["market_id"], ts - ts % window_ms)] += 1
        if c["open"] or last_ts is None:
            continue
        # A connection's end: frames in flight then may or may not have been read.
        closed = c["closed_ms"] or last_ts
        causes = [(e, name) for name, e in events_ms.items() if e <= closed <= e + EVENT_CLOSE_SLACK_MS]
        cause, label = max(causes) if causes else (None, f"closed {c['close_code']}")
        start = cause if cause is not None else min(last_ts, closed)
        for w in _windows(start, max(last_ts, start), window_ms):
            edge.update(((m, w), label) for m in markets_seen)
    lost = set()
    for r in lost_ranges:
        for w in range(r["from"] - r["from"] % window_ms, r["to"], window_ms):
            lost.add(w)
    rows = d1_query(persist, "SELECT market_index, timestamp, tick_count FROM lighter_snapshots WHERE timestamp < ?",
              until_ms)
    dupes = d1_query(persist, "SELECT COUNT(*) FROM (SELECT market_index, timestamp FROM lighter_snapshots "
               "GROUP BY market_index, timestamp HAVING COUNT(*) > 1)")[0][0]
    ticks = {(m, ts): n for m, ts, n in rows}
    out = {"checked": 0, "exact": 0, "missing": [], "mismatch": [], "unexplained": [],
           "edge": {"windows": 0, "exact": 0, "missing": 0, "differ": 0, "by_event": {}, "differ_sample": []},
           "declared_lost": {"windows": 0, "rows_present": 0}}
    for key in sorted(set(sent) | set(ticks)):
        want, got = sent.get(key), ticks.get(key)
        if key in edge:
            e = out["edge"]
            how = "exact" if got == want else "missing" if got is None else "differ"
            e["windows"] += 1
            e[how] += 1
            ev = e["by_event"].setdefault(edge[key], {"windows": 0, "exact": 0, "missing": 0, "differ": 0,
                                                        "declared_lost": 0})
            ev["windows"] += 1
            ev[how] += 1
            ev["declared_lost"] += key[1] in lost
            if how == "differ" and len(e["differ_sample"]) < 10:
                e["differ_sample"].append([*key, got, want])
            continue
        if key[1] in lost:
            out["declared_lost"]["windows"] += 1
            out["declared_lost"]["rows_present"] += got is not None
            continue
        out["checked"] += 1
        if want is None:
            out["unexplained"].append([*key, got])
        elif got is None:
            out["missing"].append([*key, want])
        elif got != want:
            out["mismatch"].append([*key, got, want])
        else:
            out["exact"] += 1
    out["duplicate_market_timestamp"] = dupes
    out["rows_in_d1"] = len(rows)
    out["sim_frames_counted"] = sum(sent.values())
    out["lost_ranges"] = lost_ranges
    out["ok"] = bool(out["exact"]) and not (out["missing"] or out["mismatch"] or out["unexplained"] or dupes)
    for k in ("missing", "mismatch", "unexplained"):
        out[f"{k}_count"] = len(out[k])
        out[k] = out[k][:20]
    out["connections"] = conns
    return out


def run(args: argparse.Namespace) -> dict:
    n, markets = args.shards, args.markets
    out = results_dir()
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    window_ms = args.window_seconds * 1000
    result: dict = {
        "kind": "bench-shards-storm", "command": args.command, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": {k: v for k, v in vars(args).items() if k != "command"},
        "machine": machine(), "load_at_start": procstat.loadavg(), "bound": bound_seconds(markets, n),
    }
    tmp = Path(tempfile.mkdtemp(prefix="lot-storm-"))
    persist, app = tmp / "state", tmp / "app"
    result["code"] = snapshot_tree(app)
    sim_log, w_log = logs / "storm-simulator.log", logs / f"storm-{n}-wrangler.log"
    for p in (sim_log, w_log):
        p.unlink(missing_ok=True)
    # Lighter's limits, per client IP (every shard connects from 127.0.0.1): stated, not
    # left to the default. Not --quiet: the log names every refusal's connection.
    sim = devstack.Simulator(sim_log, markets=markets, rate=args.rate, seed=args.seed,
                             extra_args=["--limits-per", "ip", "--msg-limit", "200", "--max-inflight", "50",
                                         "--max-subs", "500", "--max-connections", "255",
                                         "--max-new-connections", "255"])
    wvars = {"LIGHTER_API_URL": sim.url, "LIGHTER_WS_URL": sim.ws_url + "?readonly=true", "ADMIN_TOKEN": ADMIN_TOKEN,
             "SHARDS": str(n), "WINDOW_SECONDS": str(args.window_seconds)}
    worker = devstack.WranglerDev(w_log, persist_dir=persist, cwd=app, config=app / "wrangler.toml", vars=wvars)
    phases: dict = {}
    events: dict[str, int] = {}
    try:
        devstack.apply_schema(persist, cwd=app, config=app / "wrangler.toml")
        sim.start()
        worker.start()
        _log(f"{n} shards, {markets} markets at {args.rate}/s, limits per IP; wrangler up "
             f"({worker.first_response_seconds:.1f}s); bound {result['bound']['seconds']} s per full subscription")
        t0 = time.monotonic()
        watch = Watch(worker, sim, markets, n, t0)
        status, body = http("POST", worker.url + "/api/start", token=ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"/api/start -> {status}: {body}")

        def phase(name: str, since: float, live: dict, **extra) -> dict:
            p = {"seconds": round(live["at"] - since, 1) if live["live"] else None, **live, **extra}
            p.pop("at", None)
            phases[name] = p
            _log(f"{name}: " + (f"all {markets} live after {p['seconds']} s" if live["live"]
                                else f"not all live ({live.get('subscribed')} subscribed)"))
            return p

        phase("start", t0, watch.wait_live("start", args.live_timeout))

        # Drop 1, then drop 2 --drop-gap seconds later, whatever the state then.
        drop1 = time.monotonic()
        events["drop1"] = _now_ms()
        closed1 = sim_post(sim, "close", code=1011, reason="bench: drop every connection")["affected"]
        _log(f"drop 1: closed {closed1} connections")
        live1 = watch.wait_live("drop1", args.drop_gap, until=drop1 + args.drop_gap)
        while time.monotonic() < drop1 + args.drop_gap:  # the schedule: drop 2 at drop 1 + gap
            watch.poll("drop1")
            time.sleep(max(0.0, min(1.0, drop1 + args.drop_gap - time.monotonic())))
        s = watch.stats() or {}
        phase("drop1", drop1, live1, closed=closed1, subscribed_at_drop2=s.get("subscribed"))
        drop2 = time.monotonic()
        events["drop2"] = _now_ms()
        closed2 = sim_post(sim, "close", code=1011, reason="bench: drop every connection again")["affected"]
        _log(f"drop 2: closed {closed2} connections")
        p2 = phase("drop2", drop2, watch.wait_live("drop2", args.live_timeout), closed=closed2)
        p2["seconds_from_drop1"] = round(p2["seconds"] + (drop2 - drop1), 1) if p2["seconds"] is not None else None

        # Restart wrangler dev on the same state: the persisted alarm resumes tracking.
        restart = time.monotonic()
        events["restart"] = _now_ms()
        worker.restart()
        ready = time.monotonic()
        _log(f"restart: wrangler answering again after {ready - restart:.1f} s")
        p3 = phase("restart", restart, watch.wait_live("restart", args.live_timeout),
                   wrangler_ready_s=round(ready - restart, 1))
        p3["seconds_from_ready"] = round(p3["seconds"] - (ready - restart), 1) if p3["seconds"] is not None else None

        # Windows after the last event, flushed by every shard.
        last_live_ms = p3.get("at_ms") or _now_ms()
        need = last_live_ms - last_live_ms % window_ms + (args.windows + 1) * window_ms
        deadline = time.monotonic() + (args.windows + 1) * args.window_seconds + 120
        while time.monotonic() < deadline:
            s = watch.poll("windows")
            per = (s or {}).get("shards") or []
            if per and all((x.get("flushedUntil") or 0) >= need and not x.get("pendingWindows") for x in per):
                break
            time.sleep(1.0)
        else:
            _log(f"not every shard flushed past {need} in time: checking what is there")
            result["flush_wait_timed_out"] = True
        watch.poll_errors("end")
        stats = _retry(lambda: watch.stats() or _raise("no /api/stats answer"))
        until_ms = min((x.get("flushedUntil") or 0) for x in stats.get("shards") or [{}])
        _log(f"windows flushed until {until_ms}; checking")

        state = _retry(lambda: get_json(sim.url + "/_sim/state", timeout=60))
        errors = state.get("errors_sent") or {}
        refusals = {code: errors.get(code, 0) for code in REFUSALS}
        live_end, live_view = watch.sim_live()
        rows = check_rows(sim, persist, events, stats.get("lostRanges") or [], until_ms, window_ms, n)
        conns = rows.pop("connections")
        by_conn = [{k: c[k] for k in ("conn", "shard", "opened_ms", "closed_ms", "close_code", "close_reason",
                                       "errors_sent")} for c in conns if c["errors_sent"]]
        t0_ms = events["drop1"] - int((drop1 - t0) * 1000)
        for c in by_conn:  # seconds after /api/start, and the phase it fell in
            for e in c["errors_sent"].values():
                e["first_s"] = round((e["first_ms"] - t0_ms) / 1000, 1)
                e["last_s"] = round((e["last_ms"] - t0_ms) / 1000, 1)
        result["checks"] = {
            "refusals": {"counts": refusals, "ok": not any(refusals.values()),
                         "all_nonzero_codes": {k: v for k, v in errors.items() if v},
                         "by_connection": by_conn, "timeline": watch.error_events},
            "live_at_end": {"ok": live_end and watch.all_live(stats), **live_view,
                            "tracker": {k: stats.get(k) for k in ("subscribed", "validBooks", "waitingSubscriptions",
                                                                  "etaAllLiveSeconds", "reconnects")}},
            "rows": rows,
            "markets": check_markets(persist, markets, n),
            "stats": check_stats(stats, n, list(range(markets))),
        }
        result["phases"] = phases
        result["events_ms"] = events
        result["connections"] = [{k: c[k] for k in ("conn", "shard", "opened_ms", "closed_ms", "close_code",
                                                     "close_reason", "frames")} for c in conns]
        result["timeline"] = watch.timeline[:: max(1, len(watch.timeline) // 200)]
        result["ips"] = state.get("ips")
        result["tracker_totals"] = {k: stats.get(k) for k in (
            "markets", "subscribed", "validBooks", "messagesReceived", "reconnects", "gaps", "errors",
            "windowsFlushed", "windowsLost", "lostRanges", "lastError")}
    except Exception as exc:  # keep what was measured: the phases so far and the error
        import traceback

        result["error"] = repr(exc)
        result["traceback"] = traceback.format_exc()[-3000:]
        result["phases"] = phases
        _log(f"run failed: {exc!r}")
    finally:
        worker.stop()
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    c = result.get("checks", {})
    result["ok"] = bool(c) and all(c[k]["ok"] for k in ("refusals", "live_at_end", "rows", "markets", "stats")) \
        and all(p.get("live") for k, p in phases.items() if k != "drop1") \
        and not result.get("flush_wait_timed_out") and "error" not in result
    result["logs"] = {"simulator": str(sim_log.relative_to(ROOT)), "wrangler": str(w_log.relative_to(ROOT))}
    result["load_at_end"] = procstat.loadavg()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return result


def report(r: dict) -> str:
    ok = lambda b: "ok" if b else "FAIL"  # noqa: E731
    b, p, c = r["bound"], r.get("phases", {}), r.get("checks", {})
    bound = (f"bound {b['seconds']} s ({b['formula']}); from an empty {RATE_WINDOW_MS // 1000} s window "
             f"{b.get('window_seconds')} s; at Lighter's 200/min {b['lighter_limit_seconds']} s")

    def took(name: str) -> str:
        x = p.get(name) or {}
        if x.get("seconds") is None:
            return f"not all live ({x.get('subscribed')} subscribed)"
        return f"{x['seconds']} s"

    d1 = p.get("drop1", {})
    rows = [
        ("start -> all live", took("start"), bound, ok((p.get("start") or {}).get("live"))),
        ("drop 1 -> all live", took("drop1") if d1.get("live") else
         f"drop 2 came first ({d1.get('subscribed_at_drop2')} subscribed then)", "", ""),
        ("drop 2 -> all live", took("drop2") + (f" ({p['drop2'].get('seconds_from_drop1')} s after drop 1)"
                                               if (p.get("drop2") or {}).get("seconds") is not None else ""),
         bound, ok((p.get("drop2") or {}).get("live"))),
        ("restart -> all live", took("restart") + (f" (wrangler up after {p['restart']['wrangler_ready_s']} s, "
                                                   f"then {p['restart'].get('seconds_from_ready')} s)"
                                                   if (p.get("restart") or {}).get("seconds") is not None else ""),
         bound, ok((p.get("restart") or {}).get("live"))),
    ]
    if c:
        rf, le, rw, m, st = c["refusals"], c["live_at_end"], c["rows"], c["markets"], c["stats"]
        rows += [
            ("sim: refusals " + "/".join(rf["counts"]), " / ".join(str(v) for v in rf["counts"].values()),
             "all 0", ok(rf["ok"])),
            ("sim: other error codes", {k: v for k, v in rf["all_nonzero_codes"].items() if k not in rf["counts"]} or
             "none", "", ""),
            ("live at end (tracker + sim)", f"{le['union']} markets on {le['open_connections']} connections, "
                                            f"{le['pending']} pending", f"{r['args']['markets']} on "
                                            f"{r['args']['shards']}", ok(le["ok"])),
            ("D1: (market, window) checked", f"{rw['checked']} ({rw['exact']} exact, {rw['missing_count']} missing, "
                                             f"{rw['mismatch_count']} tick_count wrong, {rw['unexplained_count']} "
                                             "unexplained)", "all exact", ok(rw["ok"])),
            ("D1: duplicate (market, timestamp)", rw["duplicate_market_timestamp"], "0",
             ok(not rw["duplicate_market_timestamp"])),
            ("D1: edge windows (drop/restart)", f"{rw['edge']['windows']}: {rw['edge']['exact']} exact, "
                                                f"{rw['edge']['missing']} no row, {rw['edge']['differ']} differ",
             "reported", ""),
            *((f"  edge: {name}", f"{ev['windows']}: {ev['exact']} exact, {ev['missing']} no row, "
                                   f"{ev['differ']} differ; {ev['declared_lost']} declared lost", "", "")
              for name, ev in rw["edge"].get("by_event", {}).items()),
            ("D1: declared lost by the tracker", f"{rw['declared_lost']['windows']} (market, window) in "
                                                 f"{len(rw['lost_ranges'])} range(s)", "reported", ""),
            ("D1: lighter_markets shard == id % N", f"{m['rows']} rows, {m['wrong_shard']} wrong", "", ok(m["ok"])),
            ("stats: totals == sum of shards", "all equal" if not st["sum_mismatches"] else st["sum_mismatches"], "",
             ok(not st["sum_mismatches"])),
        ]
    text = f"STORM: SHARDS={r['args']['shards']}, {r['args']['markets']} markets, limits per IP\n"
    text += table(rows, ("event / check", "value", "against", ""))
    if c and c["refusals"]["by_connection"]:
        text += "\n\nrefusals by connection (shard = market_id % N of what it carried; s after /api/start):"
        for x in c["refusals"]["by_connection"]:
            codes = ", ".join(f"{k} x{v['count']} at {v['first_s']}..{v['last_s']} s" for k, v in x["errors_sent"].items())
            text += (f"\n  conn {x['conn']} shard {x['shard']}: {codes}; closed {x['close_code']} "
                     f"{x['close_reason']!r}")
    if r.get("flush_wait_timed_out"):
        text += "\n\nnot every shard flushed its windows in time: rows checked up to what was flushed"
    if r.get("error"):
        text += f"\n\nrun failed: {r['error']} (phases above are what was measured before)"
    text += f"\n\nresult: {'ok' if r.get('ok') else 'FAIL'}"
    return text
