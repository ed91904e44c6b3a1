"""What a Free-plan deployment with the dashboard open asks of Cloudflare, measured
under wrangler dev (issue 19 item 2; DEPLOY.md, "The Free plan").

    python -m bench freeplan [--minutes 6] [--warmup 100] [--markets 6] [--json PATH]

DEPLOY.md's Free-plan settings (one shard, LIGHTER_MARKETS naming --markets of the
simulator's 12, WINDOW_SECONDS and LIVE_PUSH_SECONDS at their defaults), with windows
kept one minute instead of an hour so that the steady state's pruning, and its log lines,
come within the run. After --warmup, for --minutes, with the dashboard open in headless
Chromium (/usr/bin/chromium, as the browser tests):

- the dashboard hub's pushes and relayed log batches, counted on a socket of our own
  (each push is an alarm of the hub and a stats request to the shard, each batch a
  request of the shard to the hub: Durable Object requests, per day);
- every request the page made to the Worker, by route (Workers requests, per day; the
  page's socket is held open, so /ws is a request per (re)connection);
- GET /api/health's latency: the Worker's stats round trip to the shard, which is what
  each push of the hub waits on (how long the hub is awake a push, and billed for).

What the simulation counts instead (alarm invocations of the shard, Durable Object
storage, D1) comes from `python -m bench d1cost`. Writes bench-results/freeplan.json.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import devstack

from .common import ADMIN_TOKEN, get_json, http, machine, results_dir, snapshot_tree, write_results

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SIM_MARKETS = 12
DAY_S = 86_400
HUB_COUNTERS = ("alarms", "statsFetches", "pushes", "logBatches")


def route_of(url: str) -> str:
    path = re.sub(r"^\w+://[^/]+", "", url).split("?", 1)[0]
    if path.startswith("/api/") or path == "/ws":
        return path
    return "/ (page and static files)"


class HubWatch:
    """A live socket of our own, read all the time by a thread (an unread socket fills
    its queue and stops answering pings): the hub's counters as each push carries them,
    with when they came."""

    def __init__(self, base: str) -> None:
        import threading

        from websockets.sync.client import connect

        self.ws = connect(base.replace("http://", "ws://") + "/ws", origin=base, open_timeout=60, max_queue=None)
        self.pushes: list[tuple[float, dict]] = []  # (monotonic arrival, the hub's counters)
        self.log_batches: list[float] = []  # arrivals of relayed log batches
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "stats" and isinstance(message.get("hub"), dict):
                    self.pushes.append((time.monotonic(), dict(message["hub"])))
                elif message.get("type") == "logs":
                    self.log_batches.append(time.monotonic())
        except Exception as exc:  # the socket closed under us: measure() says so
            self.error = exc

    def wait_push(self, after: float, timeout: float = 60) -> tuple[float, dict]:
        """The first push that arrives after `after` (monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, hub in self.pushes:
                if at > after:
                    return at, hub
            if self.error is not None:
                raise RuntimeError(f"the hub's socket failed: {self.error}")
            time.sleep(0.2)
        raise TimeoutError("no push from the hub")

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=10)


def measure(base: str, warmup_s: float, minutes: float) -> dict:
    from playwright.sync_api import sync_playwright

    requests: list[tuple[float, str]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda r: requests.append((time.monotonic(), route_of(r.url))))
            page.goto(base + "/")
            time.sleep(warmup_s)  # the page's first load and the run's first minutes are not steady
            hub = HubWatch(base)
            try:
                t0, first = hub.wait_push(time.monotonic())
                health: list[float] = []
                while time.monotonic() - t0 < minutes * 60:
                    h0 = time.monotonic()
                    status, _ = http("GET", base + "/api/health")
                    health.append((time.monotonic() - h0) * 1000)
                    if status not in (200, 503):
                        raise RuntimeError(f"/api/health -> {status}")
                    page.wait_for_timeout(10_000)  # the page runs meanwhile (its timers, its socket)
                t1, last = hub.wait_push(time.monotonic())
                if hub.error is not None:
                    raise RuntimeError(f"the hub's socket failed during the run: {hub.error}")
            finally:
                hub.close()
            assert not page.evaluate("document.hidden"), "a hidden page asks for less: measure a visible one"
        finally:
            browser.close()
    span = t1 - t0
    counted = [route for at, route in requests if t0 <= at < t1]
    by_route = {route: counted.count(route) for route in sorted(set(counted))}
    # Counted on our socket, not from the hub's counters: those live in the hub's memory,
    # which hibernation drops between pushes (they start again from 0 at each wake-up).
    # Each push is one alarm of the hub and one stats request to every shard (one shard
    # here); each relayed batch is one request of the shard to the hub.
    pushes = sum(1 for at, _ in hub.pushes if t0 < at <= t1)
    batches = sum(1 for at in hub.log_batches if t0 < at <= t1)
    counts = {"alarms": pushes, "statsFetches": pushes, "pushes": pushes, "logBatches": batches}
    return {
        "seconds": round(span, 1),
        "hub": counts,
        "hub_per_day": {name: round(n * DAY_S / span) for name, n in counts.items()},
        "hub_counters_first_last": [first, last],
        "push_every_ms": last["pushEveryMs"],
        "page_requests": by_route,
        "page_requests_per_day": {route: round(n * DAY_S / span) for route, n in by_route.items()},
        "page_requests_per_day_total": round(len(counted) * DAY_S / span),
        "health_ms": {"p50": round(statistics.median(health), 1), "max": round(max(health), 1),
                      "samples": len(health)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench freeplan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=6.0, help="measured, after the warm-up")
    ap.add_argument("--warmup", type=float, default=100.0, help="seconds tracking with the page open first")
    ap.add_argument("--markets", type=int, default=6, help="symbols in LIGHTER_MARKETS (of the simulator's 12)")
    ap.add_argument("--rate", type=float, default=20, help="the simulator's messages a second per market")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    logs = results_dir() / "logs"
    logs.mkdir(exist_ok=True)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-freeplan-") as tmp:
        tree = snapshot_tree(Path(tmp) / "app")
        persist = Path(tmp) / "state"
        devstack.apply_migrations(persist)  # migrations/ is not in the snapshot: the same database id
        sim = devstack.Simulator(logs / "freeplan-sim.log", markets=SIM_MARKETS, rate=args.rate, seed=7)
        sim.start()
        try:
            listed = get_json(sim.url + "/api/v1/orderBooks")["order_books"]
            symbols = [m["symbol"] for m in listed][: args.markets]
            settings = {"LIGHTER_MARKETS": ",".join(symbols), "SNAPSHOT_RETENTION_MINUTES": "1"}
            worker = devstack.WranglerDev(
                logs / "freeplan-wrangler.log", persist_dir=persist, cwd=tree["path"],
                vars={"LIGHTER_API_URL": sim.url, "LIGHTER_WS_URL": sim.ws_url, "ADMIN_TOKEN": ADMIN_TOKEN,
                      **settings},
            )
            worker.start()
            try:
                status, body = http("POST", worker.url + "/api/start", token=ADMIN_TOKEN)
                if status != 200:
                    raise RuntimeError(f"/api/start -> {status}: {body}")
                print(f"[bench freeplan] tracking {symbols}; page open, {args.warmup:g} s warm-up, "
                      f"{args.minutes:g} min measured; load {open('/proc/loadavg').read().split()[:3]}", flush=True)
                figures = measure(worker.url, args.warmup, args.minutes)
                stats = get_json(worker.url + "/api/stats")
            finally:
                worker.stop()
        finally:
            sim.stop()
    out = {
        "kind": "bench-freeplan", "command": "python -m bench freeplan", "args": vars(args) | {"json": None},
        "settings": settings, "markets": stats["markets"], "shards": len(stats["shards"]),
        **figures, "machine": machine(), "tree": tree, "took_s": round(time.monotonic() - t_start),
    }
    print(json.dumps({k: out[k] for k in ("markets", "seconds", "hub_per_day", "page_requests_per_day",
                                          "page_requests_per_day_total", "health_ms")}, indent=1))
    path = write_results("freeplan", out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"[bench freeplan] wrote {path}")
    return 0
