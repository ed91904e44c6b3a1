"""Does a burst starve the control and stats paths? (issue 18, defect 8)

    python -m bench saturation [--markets 50] [--seconds 20] [--seed 1]

One `wrangler dev` from a copy of the tree, against the bench sender (bench.sender):

1. POST /api/start with the sender paused; wait until every market is subscribed;
2. phase `idle`: the tracker connected, no frames; ONE client sends, one after the
   other and round robin, the probes below for --seconds: the floor of this run;
3. phase `flat out`: the sender goes flat out with a deep queue (--sndbuf in the
   kernel, --high-water in its own process), so the tracker's socket never runs dry
   even when the sender seldom gets a CPU; --ramp-seconds, then the same probes for
   --seconds;
4. at the end, still flat out, POST /api/stop (timed), then the sender pauses.

The probes:

  GET  /api/openapi.json   the Worker alone (no Durable Object, no D1): what the isolate's
                           queue costs any request
  GET  /api/health         every tracker shard's /stats (a Durable Object round trip)
  GET  /api/stats          the same, plus D1's row counts
  POST /api/start          control: every shard's /start (tracking already: answered at once)

Prints, per phase and probe: requests, p50 / p90 / max ms, statuses, and how many
answers were the shard's own (`shards[].source`, when the API says where a shard's
figures came from); the ingest rate of the flat-out phase by the sender's count of
frames written (what workerd read) and by the tracker's messagesReceived; workerd's
CPU; the load average. Two variants, one after the other against one sender: "no
breath" (the copy's tracker/config.py patched to BREATHE_EVERY_FRAMES = 0: every frame
handled back to back, as before issue 18's fix) and "as is". Writes
bench-results/saturation.json. No assertion.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import devstack

from . import procstat
from .common import ADMIN_TOKEN, ROOT, fmt, http, machine, results_dir, snapshot_tree, table, write_results
from .runner import SenderProcess, _log, _pct, _wait

PROBES = (
    ("GET", "/api/openapi.json"),
    ("GET", "/api/health"),
    ("GET", "/api/stats"),
    ("POST", "/api/start"),
)


def probe(base: str, method: str, path: str, timeout: float) -> dict:
    """One request: latency, status and (for stats/health) what the shards answered."""
    headers = {"authorization": f"Bearer {ADMIN_TOKEN}"} if method == "POST" else {}
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=b"" if method == "POST" else None)
    t0 = time.perf_counter()
    status, body = None, b""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # a timeout or a refused connection: reported, not raised
        status = type(e).__name__
    ms = (time.perf_counter() - t0) * 1000
    out = {"at": time.monotonic(), "ms": ms, "status": status}
    if path in ("/api/stats", "/api/health") and status == 200:
        try:
            data = json.loads(body)
            out["messages"] = data.get("messagesReceived")
            shards = data.get("shards") or []
            out["sources"] = [s.get("source", "shard") if "failed" not in s else "failed" for s in shards]
        except ValueError:
            pass
    return out


def run_probes(base: str, seconds: float, timeout: float) -> list[dict]:
    """One client, one request at a time, round robin over PROBES, for `seconds`."""
    results = []
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        method, path = PROBES[i % len(PROBES)]
        results.append({"method": method, "path": path, **probe(base, method, path, timeout)})
        i += 1
    return results


def summary(results: list[dict]) -> dict:
    out = {}
    for method, path in PROBES:
        rows = [r for r in results if r["path"] == path]
        lat = [r["ms"] for r in rows]
        statuses: dict[str, int] = {}
        for r in rows:
            statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
        sources: dict[str, int] = {}
        for r in rows:
            for s in r.get("sources") or []:
                sources[s] = sources.get(s, 0) + 1
        out[f"{method} {path}"] = {
            "n": len(rows),
            "p50_ms": round(_pct(lat, 50), 1) if lat else None,
            "p90_ms": round(_pct(lat, 90), 1) if lat else None,
            "max_ms": round(max(lat), 1) if lat else None,
            "statuses": statuses,
            "shard_sources": sources,
        }
    return out


# The variants measured, one after the other against one sender: the tree as it is, and
# the same tree with the feed socket's breaths cut out (runtime/breath.py), i.e.
# what every frame handled back to back does to the rest of the process.
VARIANTS = ("no breath", "as is")
BREATH_SETTING = "BREATHE_EVERY_FRAMES = "


def without_breath(app: Path) -> None:
    """Patch the copy: the feed socket never breathes (tracker/config.py)."""
    path = app / "src" / "tracker" / "config.py"
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(BREATH_SETTING)]
    if len(hits) != 1:
        raise RuntimeError(f"{path}: no single `{BREATH_SETTING}...` line to patch")
    lines[hits[0]] = BREATH_SETTING + "0\n"
    path.write_text("".join(lines))


def measure_variant(args: argparse.Namespace, variant: str, sender: SenderProcess, tmp: Path, logs: Path) -> dict:
    out: dict = {"variant": variant, "load_at_start": procstat.loadavg()}
    app = tmp / f"app-{variant.replace(' ', '-')}"
    out["code"] = snapshot_tree(app)
    if variant == "no breath":
        without_breath(app)
    persist = tmp / f"state-{variant.replace(' ', '-')}"
    devstack.apply_schema(persist, cwd=app, config=app / "wrangler.toml")
    worker = devstack.WranglerDev(
        logs / f"saturation-{variant.replace(' ', '-')}-wrangler.log", persist_dir=persist, cwd=app,
        config=app / "wrangler.toml", vars={**sender.worker_vars(), "ADMIN_TOKEN": ADMIN_TOKEN},
    )
    try:
        worker.start()
        base = worker.url
        pids = procstat.workerd_pids(worker.pid)
        status, body = http("POST", base + "/api/start", token=ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"/api/start -> {status}: {body}")

        def subscribed() -> bool:
            try:
                stats = json.loads(urllib.request.urlopen(base + "/api/stats", timeout=20).read())
            except Exception:
                return False
            return (stats.get("subscribed") or 0) >= args.markets

        _wait(subscribed, args.subscribe_timeout, 0.5, f"{args.markets} subscriptions")
        _log(f"{variant}: {args.markets} markets subscribed")
        for name in ("idle", "flat out"):
            if name == "flat out":
                sender.mode(0)
                time.sleep(args.ramp_seconds)
            load_before = procstat.loadavg()
            s0, c0 = sender.stats(), procstat.sample(pids)
            probes = run_probes(base, args.seconds, args.probe_timeout)
            s1, c1 = sender.stats(), procstat.sample(pids)
            elapsed = s1["time"] - s0["time"]
            counted = [r for r in probes if r.get("messages") is not None]
            tracker_rate = None
            if len(counted) >= 2 and counted[-1]["at"] > counted[0]["at"]:
                tracker_rate = round((counted[-1]["messages"] - counted[0]["messages"])
                                     / (counted[-1]["at"] - counted[0]["at"]))
            frames = s1["frames_sent"] - s0["frames_sent"]
            out[name] = {
                "probes": summary(probes),
                "seconds": round(elapsed, 1),
                "sender_frames_per_s": round(frames / elapsed) if elapsed > 0 else None,
                "tracker_msgs_per_s": tracker_rate,
                "workerd_cpu_percent": round((c1["cpu"] - c0["cpu"]) / elapsed * 100, 1) if elapsed > 0 else None,
                "workerd_cpu_us_per_frame": round((c1["cpu"] - c0["cpu"]) / frames * 1e6, 1) if frames else None,
                # The stream ran out: the socket went dry, which lets requests in by itself.
                "sender_exhausted": s1["exhausted"],
                "load_before": load_before,
                "load_after": procstat.loadavg(),
                "raw": [{k: v for k, v in r.items() if k != "sources"} for r in probes],
            }
            _log(f"{variant}, {name}: " + ", ".join(
                f"{k.split()[1]} p50 {v['p50_ms']} max {v['max_ms']} ms" for k, v in out[name]["probes"].items()))
        # Control under the burst: stop every shard while the sender is still flat out.
        t0 = time.perf_counter()
        try:
            status, _ = http("POST", base + "/api/stop", token=ADMIN_TOKEN, timeout=args.probe_timeout)
        except Exception as exc:  # a timeout: reported, not raised
            status = type(exc).__name__
        out["stop_under_burst"] = {"ms": round((time.perf_counter() - t0) * 1000, 1), "status": status,
                                   "sender_exhausted": sender.stats()["exhausted"]}
        _log(f"{variant}: POST /api/stop under the burst: {out['stop_under_burst']}")
        out["workerd_restarts"] = procstat.workerd_pids(worker.pid) != pids
    finally:
        sender.mode("pause")
        worker.stop()
    return out


def run(args: argparse.Namespace) -> dict:
    logs = results_dir() / "logs"
    logs.mkdir(exist_ok=True)
    results: dict = {"kind": "bench-saturation", "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                     "args": vars(args), "machine": machine(), "load_at": {"start": procstat.loadavg()}}
    tmp = Path(tempfile.mkdtemp(prefix="lot-bench-saturation-"))
    # Every connection walks the stream from its start: enough for one variant's burst.
    burst_s = args.ramp_seconds + args.seconds + 2 * args.probe_timeout
    deltas = int(args.flat_guess * burst_s)
    _log(f"sender: generating {deltas:,} deltas over {args.markets} markets (seed {args.seed})")
    sender = SenderProcess(logs / "saturation-sender.log", args.markets, deltas, args.seed,
                           extra=["--sndbuf", str(args.sndbuf), "--high-water", str(args.high_water)])
    try:
        sender.wait_ready()
        _log(sender.line)
        results["variants"] = {}
        for variant in args.variants:
            try:
                results["variants"][variant] = measure_variant(args, variant, sender, tmp, logs)
            except Exception as exc:  # reported with the other variant's figures, not raised
                _log(f"{variant}: FAILED: {exc!r}")
                results["variants"][variant] = {"variant": variant, "error": repr(exc)}
            results["load_at"][f"after {variant}"] = procstat.loadavg()
    finally:
        sender.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


def report(r: dict) -> str:
    rows = []
    for variant, v in r["variants"].items():
        for phase in ("idle", "flat out"):
            if phase not in v:
                rows.append((variant, phase, "NO SAMPLE", 0, "-", "-", "-", v.get("error", "not measured"), ""))
                continue
            for probe_name, p in v[phase]["probes"].items():
                rows.append((variant, phase, probe_name, p["n"], fmt(p["p50_ms"]), fmt(p["p90_ms"]),
                             fmt(p["max_ms"]), " ".join(f"{k}x{n}" for k, n in p["statuses"].items()),
                             " ".join(f"{k}x{n}" for k, n in p["shard_sources"].items())))
        stop = v.get("stop_under_burst") or {}
        rows.append((variant, "flat out", "POST /api/stop (once)", 1, fmt(stop.get("ms")), "", "",
                     str(stop.get("status")), ""))
    text = table(rows, ("variant", "phase", "probe (one client)", "n", "p50 ms", "p90 ms", "max ms", "statuses",
                        "shard answers"))
    for variant, v in r["variants"].items():
        for phase in ("idle", "flat out"):
            p = v.get(phase)
            if p is None:
                text += f"\n{variant}, {phase}: not measured ({v.get('error', 'no sample')})"
                continue
            text += (f"\n{variant}, {phase}: sender {fmt(p['sender_frames_per_s'])} frames/s over {p['seconds']} s, "
                     f"tracker {fmt(p['tracker_msgs_per_s'])} msg/s (from the stats answers), workerd CPU "
                     f"{p['workerd_cpu_percent']} % ({p['workerd_cpu_us_per_frame']} us/frame); load "
                     f"{p['load_before']} -> {p['load_after']}")
            if p["sender_exhausted"]:
                text += "\n  NOTE: the stream ran out during this phase (the socket went dry): raise --flat-guess"
        if v.get("workerd_restarts"):
            text += f"\nWARNING: {variant}: workerd restarted during the run: figures are suspect"
    text += f"\nload average: {r['load_at']}"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench saturation", description=__doc__.split("\n\n")[0])
    ap.add_argument("--markets", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20, help="probing, per phase")
    ap.add_argument("--probe-timeout", type=float, default=20, help="a probe unanswered by then counts as a timeout")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--ramp-seconds", type=float, default=3, help="flat out before probing")
    ap.add_argument("--flat-guess", type=int, default=60_000,
                    help="msg/s, only to size the stream (an exhausted stream ends the burst early)")
    ap.add_argument("--subscribe-timeout", type=float, default=150)
    ap.add_argument("--sndbuf", type=int, default=4 * 2**20,
                    help="the sender's kernel send buffer, bytes: deep enough that the tracker's socket never "
                         "runs dry while the sender waits for a CPU (a busy machine), as with a faster sender")
    ap.add_argument("--high-water", type=int, default=16 * 2**20,
                    help="bytes the sender queues ahead of the socket when flat out (see bench.sender): with the "
                         "deep --sndbuf, the tracker's socket stays full even when the machine is busy (load > "
                         "cores) and the sender is rarely scheduled: the burst this bench is about")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="saturation", help="results name: bench-results/<name>.json")
    args = ap.parse_args(argv)
    results = run(args)
    path = write_results(args.output, results)
    print()
    print(report(results))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    return 0
