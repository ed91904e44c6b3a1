"""The benchmark runner: the project's own stack against the bench sender, measured.

    python -m bench run [--quick] [--messages 2000000] [--markets 200] ...

1. CPython floor (bench.core) on the same generated frames, before anything else runs.
2. The sender (python -m bench sender) in its own process: generates the stream, then
   serves it as Lighter (REST market list + WebSocket).
3. schema.sql into a temporary --persist-to folder, then devstack.WranglerDev with the
   sender's URLs as LIGHTER_API_URL / LIGHTER_WS_URL and an ADMIN_TOKEN (timed: start).
4. POST /api/start; the sender streams at --rate (5,000 msg/s): time to full
   subscription and to the first flushed window.
5. API latency: --clients concurrent clients on /api/stats, /api/minutes, /api/overview
   while ingesting at --rate.
6. Ingest: the sender goes flat out (drain-bound); msg/s from the tracker's own
   messagesReceived, workerd CPU from /proc.
7. Memory: flat out until --messages more messages arrived; workerd RSS sampled all along,
   plus the tracker's `memoryBytes`.
8. D1: every distinct `lastFlush` seen, and rows per window read from the local D1 file.

Prints a table, writes bench-results/latest.json. No assertion anywhere: targets are
shown next to the figures.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import devstack

from tracker import sql

from . import core, procstat
from .common import (ADMIN_TOKEN, ROOT, fmt, get_json, http, machine, results_dir, snapshot_tree, table,
                     write_results)

TARGETS = {
    "ingest_msgs_per_s": 10_000,
    "rss_growth_mb": 10.0,
    "api_p99_ms": 50.0,
}
API_ENDPOINTS = ("/api/stats", "/api/minutes", "/api/overview")


class Sampler(threading.Thread):
    """Samples workerd CPU/RSS every `period` s and the tracker's stats every `stats_every` s."""

    def __init__(self, pids: list[int], base_url: str, period: float = 1.0, group: int | None = None,
                 stats_path: str = "/api/stats") -> None:
        super().__init__(daemon=True)
        self.stats_path = stats_path  # e.g. /api/stats?exchange=paradex
        self.pids = pids
        self.group = group
        self.restarts: list[dict] = []
        self.base_url = base_url
        self.period = period
        self.samples: list[dict] = []
        self.flushes: dict[int, dict] = {}  # lastFlush.at -> lastFlush
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.errors = 0

    def take(self) -> dict:
        now = time.monotonic()
        if self.group is not None:
            pids = procstat.workerd_pids(self.group)
            if pids and pids != self.pids:
                self.restarts.append({"t": now, "old": self.pids, "new": pids})
                self.pids = pids
        s = procstat.sample(self.pids)
        row = {"t": now, "cpu": s["cpu"], "rss": s["rss"]}
        try:
            stats = get_json(self.base_url + self.stats_path, timeout=20)
            row["t_stats"] = time.monotonic()
            # workerd's CPU again, right after the answer: the count in it was read moments
            # before, whereas `cpu` above was read before the request was sent, and a request
            # that waited behind a burst (issue 18, defect 8) would pair a count read seconds
            # later with that older CPU reading: per-message CPU overstated, by up to 1.9x.
            row["cpu_stats"] = procstat.sample(self.pids)["cpu"]
            row["messages"] = stats.get("messagesReceived")
            row["subscribed"] = stats.get("subscribed")
            row["windowsFlushed"] = stats.get("windowsFlushed")
            row["memoryBytes"] = stats.get("memoryBytes")
            row["lateFrames"] = stats.get("lateFrames")
            row["gaps"] = stats.get("gaps")
            row["malformed"] = stats.get("malformed")
            row["reconnects"] = stats.get("reconnects")
            row["pendingWindows"] = stats.get("pendingWindows")
            flush = stats.get("lastFlush") or {}
            if flush.get("at") is not None:
                self.flushes.setdefault(flush["at"], {**flush, "seen_at_messages": row["messages"]})
            row["stats"] = stats
        except Exception:
            self.errors += 1
        with self.lock:
            self.samples.append(row)
        return row

    def run(self) -> None:
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            self.take()
            self.stop_event.wait(max(0.05, self.period - (time.monotonic() - t0)))

    def latest(self, key: str = "messages") -> dict | None:
        with self.lock:
            for row in reversed(self.samples):
                if row.get(key) is not None:
                    return row
        return None

    def between(self, t0: float, t1: float) -> list[dict]:
        with self.lock:
            return [r for r in self.samples if t0 <= r["t"] <= t1]


class SenderProcess:
    def __init__(self, log_path: Path, markets: int, deltas: int, seed: int, exchange: str = "lighter",
                 extra: list[str] | None = None) -> None:
        self.log_path = log_path
        self.exchange = exchange
        argv = [sys.executable, "-m", "bench", "sender", "--markets", str(markets),
                "--deltas", str(deltas), "--seed", str(seed), "--exchange", exchange, *(extra or [])]
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, cwd=str(ROOT), env=devstack.python_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.url = None
        self.line = ""

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"sender exited: see {self.log_path}")
            self.log.write(line)
            self.log.flush()
            m = re.search(r"listening on (http://[\d.]+:\d+)", line)
            if m:
                self.url = m.group(1)
                self.line = line.strip()
                threading.Thread(target=self._pump, daemon=True).start()
                return
        raise RuntimeError("sender not ready in time")

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()

    @property
    def ws_url(self) -> str:
        if self.exchange == "paradex":
            return self.url.replace("http://", "ws://") + "/v1?sbeSchemaId=1&sbeSchemaVersion=1"
        return self.url.replace("http://", "ws://") + "/stream"

    def worker_vars(self) -> dict[str, str]:
        """wrangler dev --var's pointing the Worker at this sender (and only its exchange)."""
        if self.exchange == "paradex":
            return {"ENABLED_EXCHANGES": "paradex", "PARADEX_API_URL": self.url + "/v1",
                    "PARADEX_WS_URL": self.ws_url}
        return {"LIGHTER_API_URL": self.url, "LIGHTER_WS_URL": self.ws_url}

    def stats(self) -> dict:
        return get_json(self.url + "/_bench/stats", timeout=10)

    def mode(self, rate: float | str) -> None:
        status, body = http("POST", f"{self.url}/_bench/mode?rate={rate}", timeout=10)
        if status != 200:
            raise RuntimeError(f"sender mode {rate}: {status} {body}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[k]


def _wait(cond, timeout: float, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _sample_or_none(cond, timeout: float, what: str, missing: list[str], interval: float = 0.25):
    """_wait for a sample, but a timeout is recorded in `missing` (and logged), not raised:
    under a burst the tracker may not answer its stats for a while (issue 18, defect 8)."""
    try:
        return _wait(cond, timeout, interval, what)
    except TimeoutError as exc:
        missing.append(str(exc))
        _log(f"NO SAMPLE: {exc}")
        return None


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}  (load {procstat.loadavg()[0]})", flush=True)


# -- API latency -------------------------------------------------------------------------

async def _api_sequential(base: str, per_endpoint: int) -> dict:
    """One client, one request at a time: the service time of each endpoint."""
    import aiohttp

    out = {}
    async with aiohttp.ClientSession() as s:
        for e in API_ENDPOINTS:
            lat = []
            for _ in range(per_endpoint + 1):
                t0 = time.perf_counter()
                async with s.get(base + e) as r:
                    await r.read()
                lat.append((time.perf_counter() - t0) * 1000)
            lat = lat[1:]
            out[e] = {"n": len(lat), "p50_ms": round(_pct(lat, 50), 1), "p99_ms": round(_pct(lat, 99), 1)}
    return out


async def _api_load(base: str, clients: int, max_requests: int, max_seconds: float,
                    interval: float | None = None) -> dict:
    """`clients` concurrent clients. interval None: closed loop (each sends its next request
    as soon as the last is answered: the server's saturation). Otherwise each client sends
    one request every `interval` s (staggered), like dashboards polling."""
    import aiohttp

    results: dict[str, list[float]] = {e: [] for e in API_ENDPOINTS}
    errors: dict[str, int] = {e: 0 for e in API_ENDPOINTS}
    issued = 0
    stamps: list[tuple[float, float]] = []  # (sent at, wall ms; latency ms)
    deadline = time.monotonic() + max_seconds
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as s:
        # one warm-up request per endpoint (not counted)
        for e in API_ENDPOINTS:
            async with s.get(base + e) as r:
                await r.read()

        async def client(i: int) -> None:
            nonlocal issued
            j = i
            next_at = time.monotonic() + (interval or 0) * i / clients
            while issued < max_requests and time.monotonic() < deadline:
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                issued += 1
                endpoint = API_ENDPOINTS[j % len(API_ENDPOINTS)]
                j += 1
                t0 = time.perf_counter()
                try:
                    async with s.get(base + endpoint) as r:
                        await r.read()
                        ok = r.status == 200
                except Exception:
                    ok = False
                dt = (time.perf_counter() - t0) * 1000
                stamps.append((time.time() * 1000 - dt, dt))
                if ok:
                    results[endpoint].append(dt)
                else:
                    errors[endpoint] += 1

        t0 = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(clients)))
        elapsed = time.monotonic() - t0
    out = {"clients": clients, "interval_s": interval, "seconds": round(elapsed, 2), "requests": issued,
           "requests_per_s": round(issued / elapsed, 1), "endpoints": {}}
    every = []
    for e, lat in results.items():
        every += lat
        out["endpoints"][e] = {
            "n": len(lat), "errors": errors[e],
            "p50_ms": round(_pct(lat, 50), 1) if lat else None,
            "p90_ms": round(_pct(lat, 90), 1) if lat else None,
            "p99_ms": round(_pct(lat, 99), 1) if lat else None,
            "max_ms": round(max(lat), 1) if lat else None,
        }
    out["all"] = {"n": len(every), "p50_ms": round(_pct(every, 50), 1) if every else None,
                  "p99_ms": round(_pct(every, 99), 1) if every else None}
    # When do the slowest requests happen? Their send time within the 15 s window (the
    # alarm flushes 1.5 s after each boundary).
    if stamps:
        cut = _pct([d for _, d in stamps], 98)
        slow = [(at % 15_000) / 1000 for at, d in stamps if d >= cut]
        buckets = [0] * 15
        for x in slow:
            buckets[min(14, int(x))] += 1
        out["slowest_2pct_by_second_of_window"] = buckets
    return out


# -- D1 ------------------------------------------------------------------------------------

def _d1_file(persist: Path) -> Path | None:
    folder = persist / "v3" / "d1" / "miniflare-D1DatabaseObject"
    files = [p for p in folder.glob("*.sqlite") if p.name != "metadata.sqlite"]
    return max(files, key=lambda p: p.stat().st_size) if files else None


def d1_query(persist: Path, sql: str, *args) -> list[tuple]:
    path = _d1_file(persist)
    if path is None:
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# -- the run -------------------------------------------------------------------------------

def _rate(rows: list[dict]) -> dict | None:
    rows = [r for r in rows if r.get("messages") is not None]
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    dt = b["t_stats"] - a["t_stats"]
    dm = b["messages"] - a["messages"]
    # CPU and messages over the same span: both read when the stats answer came back.
    dcpu = b.get("cpu_stats", b["cpu"]) - a.get("cpu_stats", a["cpu"])
    dtc = dt if "cpu_stats" in a and "cpu_stats" in b else b["t"] - a["t"]
    return {
        "seconds": round(dt, 2),
        "messages": dm,
        "msgs_per_s": round(dm / dt) if dt > 0 else None,
        "us_per_msg": round(dt / dm * 1e6, 1) if dm > 0 else None,
        "workerd_cpu_us_per_msg": round(dcpu / dm * 1e6, 1) if dm > 0 else None,
        "workerd_cpu_percent": round(dcpu / dtc * 100, 1) if dtc > 0 else None,
        "late_frames": (b.get("lateFrames") or 0) - (a.get("lateFrames") or 0),
        "gaps": (b.get("gaps") or 0) - (a.get("gaps") or 0),
    }


def flat_out(sampler: Sampler, sender: "SenderProcess", seconds: float, ramp_seconds: float) -> dict:
    """THE ingest figure (`run` and `ingest-compare` both measure it here, tools/bench/README.md
    says why): the sender goes flat out (drain-bound: a frame is written as soon as the
    socket takes it), --ramp-seconds pass, then `seconds` are measured (at least one 15 s
    window, so a window close and its D1 flush fall inside it as they do in production).

    msg/s and workerd CPU µs/msg come from the tracker's own messagesReceived over the
    first and last stats samples of the span; the sender's count of frames written is
    beside it. A span with fewer than two stats samples is reported as missing (with the
    sender's figure), never raised."""
    sender.mode(0)
    time.sleep(ramp_seconds)
    load_before = procstat.loadavg()
    s0 = sender.stats()
    t0 = time.monotonic()
    time.sleep(seconds)
    t1 = time.monotonic()
    s1 = sender.stats()
    rows = [r for r in sampler.between(t0, t1) if r.get("messages") is not None]
    if s1["exhausted"]:
        while len(rows) > 2 and rows[-1]["messages"] == rows[-2]["messages"]:
            rows.pop()  # the stream ran out: not the tracker's rate any more
    ingest = _rate(rows) or {"missing": f"{len(rows)} stats sample(s) in the {seconds:g} s measured: no rate"}
    sent = s1["frames_sent"] - s0["frames_sent"]
    wall = s1["time"] - s0["time"]
    ingest.update({
        "stats_samples": len(rows),
        "sender_frames_per_s": round(sent / wall) if wall > 0 else None,
        "sender_bytes_per_frame": round((s1["bytes_sent"] - s0["bytes_sent"]) / max(1, sent), 1),
        "sender_cpu_percent": round((s1["cpu_seconds"] - s0["cpu_seconds"]) / wall * 100, 1) if wall > 0 else None,
        "sender_exhausted": s1["exhausted"],
        "load_before": load_before,
        "load_after": procstat.loadavg(),
    })
    if "missing" in ingest:
        _log(f"NO SAMPLE: ingest: {ingest['missing']} (the sender wrote {ingest['sender_frames_per_s']} frames/s)")
    return ingest


def memory_phase(sampler: Sampler, sender: "SenderProcess", messages: int, rate: float | None,
                 since: float) -> dict:
    """Flat out until `messages` more messages arrived (or the stream or the time ran out),
    sampling workerd's RSS all along. Starts from the last stats sample since `since`, or
    the next one to come; without one, reports the phase as missing."""
    m0 = sampler.latest() if (sampler.latest() or {}).get("t", 0) >= since else None
    if m0 is None:
        m0 = _sample_or_none(lambda: (r := sampler.latest()) and r["t"] >= since and r, 30,
                             "a stats sample to start the memory phase from", [])
    if m0 is None:
        return {"missing": "no stats sample to start from (the tracker did not answer /api/stats)"}
    expected_s = messages / max(1000, rate or 1000)
    _log(f"memory: {messages:,} more messages (~{expected_s:.0f}s)")
    deadline = time.monotonic() + expected_s * 3 + 120
    exhausted = False
    while True:
        time.sleep(2.0)
        end = sampler.latest()
        if end["messages"] - m0["messages"] >= messages:
            break
        exhausted = sender.stats()["exhausted"]
        if exhausted or time.monotonic() > deadline:
            _log("memory: stream exhausted or time is up: ending the phase early")
            break
    rows = [r for r in sampler.between(m0["t"], end["t"]) if r.get("messages") is not None]
    mem = memory_figures(m0, rows, messages)
    mem["ended_early"] = exhausted or mem.get("messages", 0) < messages
    if "missing" in mem:
        _log(f"NO SAMPLE: memory: {mem['missing']}")
    else:
        _log(f"memory: RSS {mem['rss_start_mb']} -> {mem['rss_end_mb']} MiB over {mem['messages']:,} messages")
    return mem


def memory_figures(m0: dict, rows: list[dict], messages: int) -> dict:
    """RSS growth over the stats samples `rows` (each with t, t_stats, cpu, rss, messages),
    measured from the sample `m0`. Fewer than two samples after m0: reported missing."""
    rows = [r for r in rows if r.get("messages") is not None and r["t"] >= m0["t"]]
    if len(rows) < 2 or rows[-1]["t_stats"] <= m0["t_stats"]:
        return {"missing": f"{len(rows)} stats sample(s) over the phase: no RSS trend", "messages": 0,
                "load_after": procstat.loadavg()}
    end = rows[-1]
    if end["messages"] <= m0["messages"]:
        return {"missing": "no message arrived over the phase (the stream ran out?): no RSS trend",
                "messages": 0, "load_after": procstat.loadavg()}
    rss0 = m0["rss"]
    rss = [r["rss"] for r in rows]
    msgs = [r["messages"] - m0["messages"] for r in rows]
    slope = None
    if len(rows) >= 3 and msgs[-1] > 0:
        mean_m, mean_r = statistics.mean(msgs), statistics.mean(rss)
        var = sum((m - mean_m) ** 2 for m in msgs)
        if var:
            slope = sum((m - mean_m) * (r - mean_r) for m, r in zip(msgs, rss)) / var  # bytes per message
    rss_end = statistics.median(rss[-3:])
    # RSS saw-tooths with V8's garbage collections (tens of MB): compare the troughs of
    # the first and the last quarter of the run as well (the post-GC floor).
    quarter = max(1, len(rss) // 4)
    floor_growth = min(rss[-quarter:]) - min(rss[:quarter])
    count = end["messages"] - m0["messages"]
    return {
        "messages": count,
        "seconds": round(end["t"] - m0["t"], 1),
        "msgs_per_s": round(count / (end["t_stats"] - m0["t_stats"])),
        "rss_start_mb": round(rss0 / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_max_mb": round(max(rss) / 2**20, 1),
        "rss_growth_mb": round((rss_end - rss0) / 2**20, 2),
        "rss_floor_growth_mb": round(floor_growth / 2**20, 2),
        "rss_min_mb": round(min(rss) / 2**20, 1),
        "rss_slope_mb_per_million_msgs": round(slope * 1e6 / 2**20, 2) if slope is not None else None,
        # the least-squares trend over the whole phase, times its messages: robust to the saw-tooth
        "rss_trend_growth_mb": round(slope * msgs[-1] / 2**20, 2) if slope is not None else None,
        "memoryBytes_start": m0.get("memoryBytes"),
        "memoryBytes_end": end.get("memoryBytes"),
        "workerd_cpu_us_per_msg": round((end["cpu"] - m0["cpu"]) / max(1, count) * 1e6, 1),
        "series": [{"s": round(r["t"] - m0["t"], 1), "messages": r["messages"] - m0["messages"],
                    "rss_mb": round(r["rss"] / 2**20, 1)} for r in rows[:: max(1, len(rows) // 60)]],
        "load_after": procstat.loadavg(),
    }


def run(args: argparse.Namespace) -> dict:
    out = results_dir()
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    results: dict = {
        "kind": "bench-run",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "args": vars(args),
        "machine": machine(),
        "targets": TARGETS,
        "load_at": {"start": procstat.loadavg()},
    }

    # 1. CPython floor first, while nothing else of ours runs.
    _log(f"CPython floor: {args.markets} markets, {args.floor_messages:,} frames")
    results["cpython_floor"] = core.measure(args.markets, args.floor_messages, args.seed, repeats=args.floor_repeats)
    results["load_at"]["after_floor"] = procstat.loadavg()
    _log(f"CPython floor: {results['cpython_floor']['msgs_per_s']:,} msg/s, "
         f"{results['cpython_floor']['us_per_msg']} us/msg")

    # 2. The sender: enough deltas for every phase (+ the skips while subscribing).
    api_msgs = int(args.rate * (args.api_seconds + 10))
    flat_guess = 15_000  # msg/s, only to size the stream (the memory phase stops early if it runs out)
    deltas = int(
        args.rate * (args.subscribe_timeout + 20) * 0.5  # warm-up at the fixed rate (rarely all of it)
        + api_msgs
        + flat_guess * (args.ingest_seconds + 5)
        + args.messages * 1.05
    )
    deltas = min(deltas, args.max_deltas)
    _log(f"sender: generating {deltas:,} deltas over {args.markets} markets (seed {args.seed})")
    t0 = time.monotonic()
    sender = SenderProcess(logs / "sender.log", args.markets, deltas, args.seed)
    worker = None
    sampler = None
    tmp = Path(tempfile.mkdtemp(prefix="lot-bench-"))
    persist = tmp / "state"
    try:
        sender.wait_ready()
        results["sender"] = {"line": sender.line, "ready_s": round(time.monotonic() - t0, 1),
                             "deltas_generated": deltas}
        _log(sender.line)

        # 3. The stack, timed like scripts/run does it: schema, then wrangler dev (from a
        # copy of the tree: wrangler reloads on every source edit in /work/main).
        app = tmp / "app"
        results["code"] = snapshot_tree(app)
        if args.proto:
            from . import protos

            protos.apply(app, args.proto)
            results["code"]["prototypes"] = args.proto
            _log(f"PROTOTYPES applied to the copy: {', '.join(args.proto)}")
        t0 = time.monotonic()
        devstack.apply_schema(persist, cwd=app, config=app / "wrangler.toml")
        schema_s = time.monotonic() - t0
        (logs / "wrangler.log").unlink(missing_ok=True)
        worker = devstack.WranglerDev(
            logs / "wrangler.log", persist_dir=persist, cwd=app, config=app / "wrangler.toml",
            vars={"LIGHTER_API_URL": sender.url, "LIGHTER_WS_URL": sender.ws_url, "ADMIN_TOKEN": ADMIN_TOKEN},
        )
        load_before_start = procstat.loadavg()
        worker.start()
        results["start"] = {
            "schema_apply_s": round(schema_s, 2),
            "wrangler_ready_s": round(worker.ready_seconds, 2),
            "ready_to_first_python_response_s": round(worker.first_response_seconds - worker.ready_seconds, 2),
            "run_command_to_first_python_response_s": round(schema_s + worker.first_response_seconds, 2),
            "load_before": load_before_start,
        }
        _log(f"wrangler ready {worker.ready_seconds:.1f}s, first Python answer {worker.first_response_seconds:.1f}s")
        pids = procstat.workerd_pids(worker.pid)
        if not pids:
            raise RuntimeError(f"no workerd process in group {worker.pid}")
        results["workerd_pids"] = pids
        base = worker.url

        # 4. Start tracking at the fixed rate; time to subscribed and to the first flush.
        sender.mode(args.rate)
        sampler = Sampler(pids, base, period=args.sample_period, group=worker.pid)
        t_start = time.monotonic()
        status, body = http("POST", base + "/api/start", token=ADMIN_TOKEN)
        t_started = time.monotonic()
        if status != 200:
            raise RuntimeError(f"/api/start -> {status}: {body}")
        sampler.start()
        missing: list[str] = []
        first_msg = _sample_or_none(lambda: (r := sampler.latest()) and r["messages"] > 0 and r, 60,
                                    "first message", missing)
        subscribed = _sample_or_none(
            lambda: (r := sampler.latest("subscribed")) and r["subscribed"] >= args.markets and r,
            args.subscribe_timeout, f"{args.markets} subscriptions", missing)
        flushed = _sample_or_none(lambda: (r := sampler.latest("windowsFlushed")) and r["windowsFlushed"] >= 1 and r,
                                  60, "first flushed window", missing)
        with sampler.lock:  # the first sample that showed each (the waits above run one after the other)
            if flushed is not None:
                flushed = next(r for r in sampler.samples if (r.get("windowsFlushed") or 0) >= 1)
            if subscribed is not None:
                subscribed = next(r for r in sampler.samples if (r.get("subscribed") or 0) >= args.markets)

        def since_start(row: dict | None) -> float | None:
            return round(row["t_stats"] - t_start, 2) if row is not None else None

        results["start"].update({
            "api_start_request_ms": round((t_started - t_start) * 1000, 1),
            "start_to_first_message_s": since_start(first_msg),
            "start_to_all_subscribed_s": since_start(subscribed),
            "start_to_first_flushed_window_s": since_start(flushed),
            "window_seconds": 15,
            "note": "the first window closes at the next 15 s boundary + 1.5 s grace after data arrives",
        })
        if missing:
            results["start"]["missing"] = missing
        _log(f"subscribed {args.markets} in {results['start']['start_to_all_subscribed_s']}s, first flush "
             f"{results['start']['start_to_first_flushed_window_s']}s after /api/start")

        # 5. API latency while ingesting at the fixed rate: first one client (service time),
        # then --clients at once.
        time.sleep(5)
        t0 = time.monotonic()
        sequential = asyncio.run(_api_sequential(base, args.api_sequential))
        sequential_ingest = _rate(sampler.between(t0, time.monotonic()))
        time.sleep(2)
        load = procstat.loadavg()
        t0 = time.monotonic()
        api = asyncio.run(_api_load(base, args.clients, args.api_requests, args.api_seconds))
        t1 = time.monotonic()
        api["ingest_during"] = _rate(sampler.between(t0, t1))
        api["sequential"] = sequential
        api["sequential_ingest_during"] = sequential_ingest
        # The same clients polling: each one request every --api-interval s.
        time.sleep(5)
        t0 = time.monotonic()
        paced = asyncio.run(_api_load(base, args.clients, args.api_requests, args.api_seconds, args.api_interval))
        paced["ingest_during"] = _rate(sampler.between(t0, time.monotonic()))
        api["paced"] = paced
        api["ingest_rate_asked"] = args.rate
        api["load_before"] = load
        results["api"] = api
        _log(f"API: p50 {api['all']['p50_ms']} ms, p99 {api['all']['p99_ms']} ms over {api['requests']} requests; "
             f"ingest {api['ingest_during'] and api['ingest_during']['msgs_per_s']} msg/s")

        # 6. Ingest flat out.
        ingest = flat_out(sampler, sender, args.ingest_seconds, args.ramp_seconds)
        results["ingest"] = ingest
        t1 = time.monotonic()
        # workerd CPU per API request: the phase's CPU minus what its messages cost at the
        # flat-out CPU per message (Worker and Durable Object share one isolate here).
        per_msg = (ingest.get("workerd_cpu_us_per_msg") or 0) / 1e6
        for block in (api, api.get("paced") or {}):
            ing_b = block.get("ingest_during") or {}
            if ing_b.get("seconds") and block.get("requests"):
                cpu = (ing_b["workerd_cpu_percent"] / 100) * ing_b["seconds"]
                block["workerd_cpu_ms_per_request"] = round((cpu - ing_b["messages"] * per_msg) / block["requests"] * 1000, 2)
        _log(f"ingest: {ingest.get('msgs_per_s')} msg/s, {ingest.get('us_per_msg')} us/msg, "
             f"workerd CPU {ingest.get('workerd_cpu_us_per_msg')} us/msg")

        # 7. Memory: keep going flat out for --messages more messages.
        mem = memory_phase(sampler, sender, args.messages, ingest.get("msgs_per_s"), since=t1 - 5)
        results["memory"] = mem
        sender.mode("pause")
        # API service time again, with no ingest (the tracker connected but idle).
        time.sleep(5)
        results["api"]["sequential_no_ingest"] = asyncio.run(_api_sequential(base, args.api_sequential))

        # 8. D1: flushes seen and rows per window in the local D1 file.
        time.sleep(1)
        last = sampler.take()
        flushes = sorted(sampler.flushes.values(), key=lambda f: f["at"])
        per_window = d1_query(persist, "SELECT timestamp, COUNT(*) FROM lighter_snapshots GROUP BY timestamp ORDER BY timestamp")
        full = [n for _, n in per_window]
        results["d1"] = {
            "flushes_seen": len(flushes),
            "flushes": flushes[-20:],
            "rows_per_flush_median": statistics.median([f["rows"] for f in flushes]) if flushes else None,
            "rows_per_flush_max": max((f["rows"] for f in flushes), default=None),
            "windows_per_flush_max": max((f["windows"] for f in flushes), default=None),
            "flush_ms_median": statistics.median([f["ms"] for f in flushes]) if flushes else None,
            "flush_ms_max": max((f["ms"] for f in flushes), default=None),
            # src/runtime/session.py _flush: one D1 batch = one upsert per row + 2 prunes + 1 stats
            # upsert; the minute rollup adds 1 query + 1 batch (a row per market) once a minute.
            # One bulk upsert per BULK_ROWS rows, plus two prunes and the stats row.
            "statements_per_flush_median": (
                -(-statistics.median([f["rows"] for f in flushes]) // sql.BULK_ROWS) + 3
            ) if flushes else None,
            "d1_rows_per_window": {"windows": len(full), "median": statistics.median(full) if full else None,
                                   "min": min(full, default=None), "max": max(full, default=None)},
            "d1_snapshot_rows": sum(full),
            "d1_minute_rows": (d1_query(persist, "SELECT COUNT(*) FROM lighter_minutes") or [(None,)])[0][0],
        }
        stats = last.get("stats") or {}
        results["tracker_final"] = {k: stats.get(k) for k in (
            "messagesReceived", "subscribed", "validBooks", "gaps", "malformed", "lateFrames", "reconnects",
            "windowsFlushed", "windowsLost", "flushFailures", "pendingWindows", "memoryBytes", "lastError")}
        results["sender_final"] = {k: v for k, v in sender.stats().items() if k != "connections"}
        results["sampler_errors"] = sampler.errors
        results["workerd_restarts"] = sampler.restarts
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        if worker is not None:
            worker.stop()
        sender.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_at"]["end"] = procstat.loadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


def report(r: dict) -> str:
    f = r["cpython_floor"]
    b = f["breakdown_us_per_msg"]
    ing = r.get("ingest", {})
    mem = r.get("memory", {})
    api = r.get("api", {})
    st = r.get("start", {})
    d1 = r.get("d1", {})
    T = r["targets"]
    rows = [
        ("ingest (workerd, flat out)", "msgs/s", fmt(ing.get("msgs_per_s")), f">= {T['ingest_msgs_per_s']:,}",
         "ok" if (ing.get("msgs_per_s") or 0) >= T["ingest_msgs_per_s"] else "MISS"),
        ("", "wall us/msg", fmt(ing.get("us_per_msg")), "", ""),
        ("", "workerd CPU us/msg", fmt(ing.get("workerd_cpu_us_per_msg")), "", ""),
        ("", "workerd CPU %", fmt(ing.get("workerd_cpu_percent")), "", ""),
        ("", "sender frames/s", fmt(ing.get("sender_frames_per_s")), "", ""),
        ("CPython floor (same frames)", "msgs/s", fmt(f["msgs_per_s"]), "", ""),
        ("", "us/msg", fmt(f["us_per_msg"], 2), "", ""),
        ("", "  json.loads", fmt(b["json_loads"], 2), "", ""),
        ("", "  parse_frame beyond json", fmt(b["parse_frame_beyond_json"], 2), "", ""),
        ("", "  book + continuity", fmt(b["book_and_continuity"], 2), "", ""),
        ("", "  aggregator", fmt(b["aggregator"], 2), "", ""),
        ("workerd / CPython", "ratio", fmt((ing.get("us_per_msg") or 0) / f["us_per_msg"], 2) if ing.get("us_per_msg") else "-", "", ""),
        ("memory (flat out)", "messages", fmt(mem.get("messages")), f"{r['args']['messages']:,}", ""),
        ("", "RSS start -> end MiB", f"{mem.get('rss_start_mb')} -> {mem.get('rss_end_mb')}", "", ""),
        ("", "RSS min / max MiB", f"{mem.get('rss_min_mb')} / {mem.get('rss_max_mb')}", "", ""),
        ("", "RSS growth end-start MiB", fmt(mem.get("rss_growth_mb"), 2), f"< {T['rss_growth_mb']}",
         "ok" if mem.get("rss_growth_mb") is not None and mem["rss_growth_mb"] < T["rss_growth_mb"] else "MISS"),
        ("", "RSS post-GC floor growth MiB", fmt(mem.get("rss_floor_growth_mb"), 2), f"< {T['rss_growth_mb']}",
         "ok" if mem.get("rss_floor_growth_mb") is not None and mem["rss_floor_growth_mb"] < T["rss_growth_mb"] else "MISS"),
        ("", "RSS trend growth MiB (fit)", fmt(mem.get("rss_trend_growth_mb"), 2), f"< {T['rss_growth_mb']}",
         "ok" if mem.get("rss_trend_growth_mb") is not None and mem["rss_trend_growth_mb"] < T["rss_growth_mb"] else "MISS"),
        ("", "RSS slope MiB / 1M msgs", fmt(mem.get("rss_slope_mb_per_million_msgs"), 2), "", ""),
        ("", "tracker memoryBytes", f"{(mem.get('memoryBytes_start') or {}).get('books')}+{(mem.get('memoryBytes_start') or {}).get('aggregator')} -> "
                                    f"{(mem.get('memoryBytes_end') or {}).get('books')}+{(mem.get('memoryBytes_end') or {}).get('aggregator')}",
         "books+aggregator", ""),
    ]
    def api_rows(block: dict, label: str) -> None:
        for e, v in (block.get("endpoints") or {}).items():
            rows.append((f"API {e} {label}", "p50 / p99 / max ms", f"{v['p50_ms']} / {v['p99_ms']} / {v['max_ms']}",
                         f"p99 < {T['api_p99_ms']:g}",
                         "ok" if v["p99_ms"] is not None and v["p99_ms"] < T["api_p99_ms"] and not v["errors"] else "MISS"))
        ing_b = block.get("ingest_during") or {}
        rows.append((f"API {label}", "workerd CPU ms / request", fmt(block.get("workerd_cpu_ms_per_request"), 2), "", ""))
        rows.append((f"API {label}", f"{block['clients']} clients", f"{block['requests']} req, {block['requests_per_s']} req/s",
                     f"ingest {fmt(ing_b.get('msgs_per_s'))} msg/s (asked {api['ingest_rate_asked']:,.0f})", ""))

    if api:
        api_rows(api, "closed loop")
        if api.get("paced"):
            api_rows(api["paced"], f"every {api['paced']['interval_s']:g}s")
        for e, v in (api.get("sequential") or {}).items():
            rows.append((f"API {e} 1 client", "p50 / p99 ms", f"{v['p50_ms']} / {v['p99_ms']}",
                         f"at {api['ingest_rate_asked']:,.0f} msg/s", ""))
        for e, v in (api.get("sequential_no_ingest") or {}).items():
            rows.append((f"API {e} 1 client", "p50 / p99 ms", f"{v['p50_ms']} / {v['p99_ms']}", "no ingest", ""))
    rows += [
        ("start", "schema apply s", fmt(st.get("schema_apply_s"), 2), "", ""),
        ("", "wrangler Ready s", fmt(st.get("wrangler_ready_s"), 2), "", ""),
        ("", "Ready -> 1st Python answer s", fmt(st.get("ready_to_first_python_response_s"), 2), "", ""),
        ("", "/api/start -> all subscribed s", fmt(st.get("start_to_all_subscribed_s"), 2), "", ""),
        ("", "/api/start -> 1st flushed window s", fmt(st.get("start_to_first_flushed_window_s"), 2), "", ""),
        ("D1 flush", "rows / flush (median)", fmt(d1.get("rows_per_flush_median")), "", ""),
        ("", "statements / flush", fmt(d1.get("statements_per_flush_median")), "1 batch", ""),
        ("", "flush ms median / max", f"{d1.get('flush_ms_median')} / {d1.get('flush_ms_max')}", "", ""),
        ("", "D1 rows per window", f"{(d1.get('d1_rows_per_window') or {}).get('median')}", "", ""),
    ]
    tf = r.get("tracker_final", {})
    text = table(rows, ("measure", "unit", "value", "target", ""))
    text += (f"\n\ntracker at the end: messages {tf.get('messagesReceived')}, gaps {tf.get('gaps')}, malformed "
             f"{tf.get('malformed')}, late {tf.get('lateFrames')}, reconnects {tf.get('reconnects')}, windows "
             f"flushed {tf.get('windowsFlushed')}, lost {tf.get('windowsLost')}, flush failures {tf.get('flushFailures')}")
    for phase, block in (("start", st), ("ingest", ing), ("memory", mem)):
        for why in ([block["missing"]] if isinstance(block.get("missing"), str) else block.get("missing") or []):
            text += f"\nNO SAMPLE in the {phase} phase: {why}"
    if ing.get("stats_samples") is not None:
        text += f"\ningest: {ing['stats_samples']} stats samples over the measured span"
    text += f"\nload average: {r['load_at']}"
    if r.get("code", {}).get("prototypes"):
        text += f"\nPROTOTYPES (not the project's code): {r['code']['prototypes']}"
    if r.get("workerd_restarts"):
        text += f"\nWARNING: workerd restarted during the run ({len(r['workerd_restarts'])}x): figures are suspect"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="50 markets, 300,000 messages, short phases (~2 min)")
    ap.add_argument("--markets", type=int, default=None, help="markets (default 200; quick 50)")
    ap.add_argument("--messages", type=int, default=None,
                    help="messages for the memory phase (default 2,000,000; quick 300,000)")
    ap.add_argument("--rate", type=float, default=5000, help="msg/s during start-up and the API phase")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--api-requests", type=int, default=None, help="default 5000; quick 1500")
    ap.add_argument("--api-seconds", type=float, default=None, help="default 40; quick 15")
    ap.add_argument("--api-interval", type=float, default=1.0,
                    help="paced phase: each client sends one request every this many seconds")
    ap.add_argument("--api-sequential", type=int, default=50,
                    help="requests per endpoint from ONE client after the concurrent phase (service time)")
    ap.add_argument("--ingest-seconds", type=float, default=None, help="default 30; quick 15")
    ap.add_argument("--ramp-seconds", type=float, default=5)
    ap.add_argument("--floor-messages", type=int, default=None, help="default 300,000; quick 100,000")
    ap.add_argument("--floor-repeats", type=int, default=3)
    ap.add_argument("--subscribe-timeout", type=float, default=150)
    ap.add_argument("--sample-period", type=float, default=1.0)
    ap.add_argument("--max-deltas", type=int, default=6_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="latest", help="results name: bench-results/<name>.json")
    ap.add_argument("--proto", action="append", default=[], choices=("regex", "scan", "api-cache", "no-breath"),
                    help="run a prototype fix (bench/protos.py) applied to the copied tree; repeatable")
    args = ap.parse_args(argv)
    q = args.quick
    args.markets = args.markets or (50 if q else 200)
    args.messages = args.messages or (300_000 if q else 2_000_000)
    args.api_requests = args.api_requests or (1500 if q else 5000)
    args.api_seconds = args.api_seconds or (15 if q else 40)
    args.ingest_seconds = args.ingest_seconds or (15 if q else 30)
    args.floor_messages = args.floor_messages or (100_000 if q else 300_000)
    results = run(args)
    path = write_results(args.output, results)
    print()
    print(report(results))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    return 0
