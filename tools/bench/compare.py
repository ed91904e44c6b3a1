"""Ingest inside workerd, Lighter beside Paradex: the same markets, the same book changes.

    python -m bench ingest-compare [--markets 50] [--seconds 15] [--seed 1]

For each exchange, one after the other (Lighter, then Paradex):

1. the sender (python -m bench sender --exchange X) generates the stream of `bench run`
   (bench.stream, same seed: same markets, same levels in the same order) and serves it
   as that exchange: Lighter's JSON text frames, or the same changes re-encoded before
   timing as Paradex SBE BookEvents (binary frames, JSON-RPC subscriptions);
2. wrangler dev from one copy of the tree (the same code for both), pointed at that
   sender only (Paradex: ENABLED_EXCHANGES=paradex, PARADEX_API_URL, PARADEX_WS_URL);
3. POST /api/start?exchange=X with the sender paused; every market subscribed (each
   got its snapshot);
4. the sender goes flat out (drain-bound), --ramp-seconds, then --seconds measured by
   the same code as `bench run`'s ingest phase (runner.flat_out): msg/s from the
   tracker's own messagesReceived (/api/stats?exchange=X), workerd CPU from /proc.

Prints a table (msg/s, workerd CPU µs per message, Paradex/Lighter ratios, load
average) and writes bench-results/ingest-compare.json. No assertion.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import devstack

from . import procstat
from .common import ADMIN_TOKEN, ROOT, fmt, http, machine, results_dir, snapshot_tree, table, write_results
from .runner import Sampler, SenderProcess, _log, _sample_or_none, flat_out

EXCHANGES = ("lighter", "paradex")


def measure_exchange(args: argparse.Namespace, exchange: str, app: Path, tmp: Path, logs: Path) -> dict:
    out: dict = {"exchange": exchange, "load_at_start": procstat.loadavg()}
    # Enough deltas for the ramp and the measured messages (sized on a generous rate).
    deltas = int(args.flat_guess * (args.ramp_seconds + args.seconds + 5))
    _log(f"{exchange}: sender generating {deltas:,} deltas over {args.markets} markets (seed {args.seed})")
    t0 = time.monotonic()
    sender = SenderProcess(logs / f"compare-{exchange}-sender.log", args.markets, deltas, args.seed, exchange)
    worker = sampler = None
    persist = tmp / f"state-{exchange}"
    try:
        sender.wait_ready()
        out["sender"] = {"line": sender.line, "ready_s": round(time.monotonic() - t0, 1), "deltas_generated": deltas}
        _log(sender.line)
        devstack.apply_schema(persist, cwd=app, config=app / "wrangler.toml")
        worker = devstack.WranglerDev(
            logs / f"compare-{exchange}-wrangler.log", persist_dir=persist, cwd=app, config=app / "wrangler.toml",
            vars={**sender.worker_vars(), "ADMIN_TOKEN": ADMIN_TOKEN},
        )
        worker.start()
        pids = procstat.workerd_pids(worker.pid)
        if not pids:
            raise RuntimeError(f"no workerd process in group {worker.pid}")
        base = worker.url
        _log(f"{exchange}: wrangler ready {worker.ready_seconds:.1f}s")

        sampler = Sampler(pids, base, period=args.sample_period, group=worker.pid,
                          stats_path=f"/api/stats?exchange={exchange}")
        t_start = time.monotonic()
        status, body = http("POST", f"{base}/api/start?exchange={exchange}", token=ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"/api/start?exchange={exchange} -> {status}: {body}")
        sampler.start()
        missing: list[str] = []
        subscribed = _sample_or_none(
            lambda: (r := sampler.latest("subscribed")) and r["subscribed"] >= args.markets and r,
            args.subscribe_timeout, f"{args.markets} {exchange} subscriptions", missing)
        out["start_to_all_subscribed_s"] = round(subscribed["t_stats"] - t_start, 2) if subscribed else None
        if missing:
            out["missing"] = missing
        _log(f"{exchange}: {args.markets} markets subscribed in {out['start_to_all_subscribed_s']}s")

        # Flat out, measured as `bench run`'s ingest phase (runner.flat_out: one definition).
        ingest = flat_out(sampler, sender, args.seconds, args.ramp_seconds)
        sender.mode("pause")
        out["ingest"] = ingest
        stats = (sampler.take().get("stats") or {})
        out["tracker_final"] = {k: stats.get(k) for k in (
            "messagesReceived", "subscribed", "validBooks", "gaps", "malformed", "lateFrames", "reconnects",
            "windowsFlushed", "lastError")}
        out["workerd_restarts"] = sampler.restarts
        out["sampler_errors"] = sampler.errors
        _log(f"{exchange}: {ingest.get('msgs_per_s')} msg/s, workerd CPU {ingest.get('workerd_cpu_us_per_msg')} us/msg "
             f"over {ingest.get('messages')} messages")
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        if worker is not None:
            worker.stop()
        sender.stop()
    return out


def run(args: argparse.Namespace) -> dict:
    logs = results_dir() / "logs"
    logs.mkdir(exist_ok=True)
    results: dict = {"kind": "bench-ingest-compare", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "args": vars(args), "machine": machine(), "load_at": {"start": procstat.loadavg()}}
    tmp = Path(tempfile.mkdtemp(prefix="lot-bench-compare-"))
    try:
        app = tmp / "app"
        results["code"] = snapshot_tree(app)  # one copy: both exchanges run the same code
        for exchange in EXCHANGES:
            results[exchange] = measure_exchange(args, exchange, app, tmp, logs)
            results["load_at"][f"after_{exchange}"] = procstat.loadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lighter, paradex = results["lighter"]["ingest"], results["paradex"]["ingest"]

    def ratio(key: str) -> float | None:
        a, b = lighter.get(key), paradex.get(key)
        return round(b / a, 3) if a and b else None

    results["paradex_over_lighter"] = {"msgs_per_s": ratio("msgs_per_s"),
                                      "workerd_cpu_us_per_msg": ratio("workerd_cpu_us_per_msg")}
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


def report(r: dict) -> str:
    L, P = r["lighter"], r["paradex"]
    li, pi = L["ingest"], P["ingest"]
    q = r["paradex_over_lighter"]
    rows = [
        ("msgs/s (workerd, flat out)", fmt(li.get("msgs_per_s")), fmt(pi.get("msgs_per_s")), fmt(q["msgs_per_s"], 3)),
        ("workerd CPU us/msg", fmt(li.get("workerd_cpu_us_per_msg")), fmt(pi.get("workerd_cpu_us_per_msg")),
         fmt(q["workerd_cpu_us_per_msg"], 3)),
        ("workerd CPU %", fmt(li.get("workerd_cpu_percent")), fmt(pi.get("workerd_cpu_percent")), ""),
        ("wall us/msg", fmt(li.get("us_per_msg")), fmt(pi.get("us_per_msg")), ""),
        ("messages measured", fmt(li.get("messages")), fmt(pi.get("messages")), ""),
        ("seconds", fmt(li.get("seconds")), fmt(pi.get("seconds")), ""),
        ("bytes / frame on the wire", fmt(li.get("sender_bytes_per_frame")), fmt(pi.get("sender_bytes_per_frame")), ""),
        ("sender frames/s (CPU %)", f"{fmt(li.get('sender_frames_per_s'))} ({li.get('sender_cpu_percent')})",
         f"{fmt(pi.get('sender_frames_per_s'))} ({pi.get('sender_cpu_percent')})", ""),
        ("gaps / late frames", f"{li.get('gaps')} / {li.get('late_frames')}", f"{pi.get('gaps')} / {pi.get('late_frames')}", ""),
        ("/api/start -> all subscribed s", fmt(L.get("start_to_all_subscribed_s"), 2),
         fmt(P.get("start_to_all_subscribed_s"), 2), ""),
        ("load avg before / after", f"{li.get('load_before')} / {li.get('load_after')}",
         f"{pi.get('load_before')} / {pi.get('load_after')}", ""),
    ]
    text = table(rows, ("ingest", "Lighter (JSON)", "Paradex (SBE)", "Paradex/Lighter"))
    for name, block in (("Lighter", L), ("Paradex", P)):
        tf = block.get("tracker_final", {})
        text += (f"\n{name} tracker at the end: messages {tf.get('messagesReceived')}, subscribed {tf.get('subscribed')}, "
                 f"valid books {tf.get('validBooks')}, gaps {tf.get('gaps')}, malformed {tf.get('malformed')}, "
                 f"reconnects {tf.get('reconnects')}, last error {tf.get('lastError')!r}")
        for why in [*(block.get("missing") or []), *([block["ingest"]["missing"]] if "missing" in block["ingest"] else [])]:
            text += f"\nNO SAMPLE: {name}: {why}"
        if block.get("workerd_restarts"):
            text += f"\nWARNING: {name}'s workerd restarted during the run: figures are suspect"
    text += f"\nload average: {r['load_at']}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench ingest-compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--markets", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15,
                    help="measured per exchange, flat out (as `run`'s ingest phase: one window close inside)")
    ap.add_argument("--ramp-seconds", type=float, default=5, help="flat out before measuring")
    ap.add_argument("--flat-guess", type=int, default=100_000,
                    help="msg/s, only to size the stream (ramp + measured seconds; an exhausted stream ends early)")
    ap.add_argument("--subscribe-timeout", type=float, default=150)
    ap.add_argument("--sample-period", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="ingest-compare", help="results name: bench-results/<name>.json")
    args = ap.parse_args(argv)
    results = run(args)
    path = write_results(args.output, results)
    print()
    print(report(results))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    return 0
