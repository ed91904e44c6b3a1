"""API throughput against the Python Workers floor, measured in the same run (issue 12).

    python -m bench api [--rounds 5] [--seconds 3] [--clients 50] [--routes ...]

1. The simulator and ONE wrangler dev from a copy of the tree (bench.common.snapshot_tree),
   with BENCH_FLOOR=1: the Worker then also answers GET /_bench/floor with {"ok": true}
   straight from src/entry.py, before any of the app's code runs. That is the floor: what
   entering Python and answering costs in this runtime, on this machine, right now.
2. Tracking runs until D1 holds windows and minutes, then stops (an idle tracker, so the
   feed does not compete with the API for the CPU).
3. Rounds: in each round every route (the floor included) gets --clients concurrent
   clients in a closed loop for --seconds; the order rotates every round. Interleaving
   matters: the machine is shared, and load from others moves all figures at once.
4. Per route: the median requests/s over the rounds, p50/p99 latency, and `floor/route`,
   the floor's throughput divided by the route's in the SAME rounds (1.0 = as cheap as a
   bare Worker). Targets: every GET route <= 1.3, /api/stats <= 2.0. Printed, never asserted.

Writes bench-results/api.json.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

import devstack

from .common import ADMIN_TOKEN, fmt, get_json, http, machine, results_dir, snapshot_tree, table, write_results

FLOOR = "/_bench/floor"
ROUTES = (
    FLOOR,
    "/nope",
    "/api/markets",
    "/api/health",
    "/api/minutes?symbol=ETH",
    "/api/overview",
    "/api/stats",
)
TARGETS = {"/api/stats": 2.0}
DEFAULT_TARGET = 1.3


async def closed_loop(url: str, clients: int, seconds: float) -> dict:
    """`clients` tasks each sending the next request as soon as the last answered."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                async with session.get(url) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append(time.monotonic() - t0)

        t0 = time.monotonic()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.monotonic() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        "statuses": statuses,
    }


def prepare_data(base: str) -> None:
    """Tracking on until D1 has windows and minutes, then off (an idle tracker)."""
    status, body = http("POST", base + "/api/start", token=ADMIN_TOKEN)
    if status != 200:
        raise RuntimeError(f"/api/start -> {status}: {body}")
    deadline = time.monotonic() + 120
    while get_json(base + "/api/snapshots")["count"] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("no windows in D1 after 120 s")
        time.sleep(0.5)
    # Stopping rolls up the partial minute at once: minutes without waiting a minute.
    http("POST", base + "/api/stop", token=ADMIN_TOKEN)
    if get_json(base + "/api/minutes")["count"] == 0:
        raise RuntimeError("no minutes in D1 after stop")


def measure(base: str, routes: tuple[str, ...], rounds: int, seconds: float, clients: int) -> dict:
    per_route: dict[str, list[dict]] = {r: [] for r in routes}
    ratios: dict[str, list[float]] = {r: [] for r in routes}
    # Warm every route once (first Jinja/Pyodide paths, D1 page cache).
    for route in routes:
        for _ in range(5):
            http("GET", base + route)
    for i in range(rounds):
        order = list(routes[i % len(routes):] + routes[: i % len(routes)])
        results = {}
        for route in order:
            results[route] = asyncio.run(closed_loop(base + route, clients, seconds))
            per_route[route].append(results[route])
        for route in routes:
            ratios[route].append(results[FLOOR]["rps"] / results[route]["rps"] if results[route]["rps"] else float("inf"))
        print(f"[bench api] round {i + 1}/{rounds}: "
              + ", ".join(f"{r} {results[r]['rps']:.0f}/s" for r in routes), flush=True)
    out = {}
    for route in routes:
        runs = per_route[route]
        out[route] = {
            "rps_median": statistics.median(r["rps"] for r in runs),
            "p50_ms_median": statistics.median(r["p50_ms"] for r in runs if r["p50_ms"] is not None),
            "p99_ms_median": statistics.median(r["p99_ms"] for r in runs if r["p99_ms"] is not None),
            "floor_ratio_median": statistics.median(ratios[route]),
            "floor_ratio_per_round": [round(x, 2) for x in ratios[route]],
            "statuses": {str(k): sum(r["statuses"].get(k, 0) for r in runs) for k in {s for r in runs for s in r["statuses"]}},
            "target": TARGETS.get(route.split("?")[0], DEFAULT_TARGET) if route != FLOOR else None,
        }
    return out


def report(results: dict) -> str:
    rows = []
    for route, r in results.items():
        target = r["target"]
        verdict = "-" if target is None else ("ok" if r["floor_ratio_median"] <= target else "OVER")
        rows.append((route, fmt(r["rps_median"], 0), fmt(r["p50_ms_median"]), fmt(r["p99_ms_median"]),
                     f"{r['floor_ratio_median']:.2f}", " ".join(f"{x:.2f}" for x in r["floor_ratio_per_round"]),
                     "-" if target is None else f"<= {target}", verdict,
                     ",".join(f"{k}x{v}" for k, v in sorted(r["statuses"].items()))))
    return table(rows, ("route", "req/s", "p50 ms", "p99 ms", "floor/route", "per round", "target", "", "statuses"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench api", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0, help="per route per round")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--routes", nargs="*", default=None, help="routes besides the floor (default: the issue's list)")
    args = ap.parse_args(argv)
    routes = (FLOOR, *args.routes) if args.routes else ROUTES
    logs = results_dir() / "logs"
    logs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        tree = snapshot_tree(Path(tmp) / "app")
        persist = Path(tmp) / "state"
        devstack.apply_schema(persist, cwd=Path(tree["path"]))
        sim = devstack.Simulator(logs / "api-sim.log", markets=6, rate=20, seed=7)
        sim.start()
        worker = devstack.WranglerDev(
            logs / "api-wrangler.log", persist_dir=persist, cwd=tree["path"],
            vars={"LIGHTER_API_URL": sim.url, "LIGHTER_WS_URL": sim.ws_url, "ADMIN_TOKEN": ADMIN_TOKEN,
                  "BENCH_FLOOR": "1"},
        )
        try:
            worker.start()
            prepare_data(worker.url)
            print(f"[bench api] {args.clients} clients, {args.seconds:g} s per route, {args.rounds} rounds, "
                  f"load {open('/proc/loadavg').read().split()[:3]}", flush=True)
            results = measure(worker.url, routes, args.rounds, args.seconds, args.clients)
        finally:
            worker.stop()
            sim.stop()
    print()
    print(report(results))
    path = write_results("api", {"machine": machine(), "tree": tree, "args": vars(args), "routes": results})
    print(f"\n[bench api] wrote {path}")
    return 0
