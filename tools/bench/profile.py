"""Where workerd's time per message goes: the real stack with the hot path cut down.

    python -m bench profile [--quick] [--markets 50] [--seconds 20] [--variants ...]

Each variant runs in its own `wrangler dev`, from a patched COPY of the tree (src/ is
never touched), against the bench sender going flat out. The tracker subscribes
normally; once every market is subscribed, the patched `_on_text` switches to the
variant's body for every further frame:

  dispatch   the handler does nothing (workerd event + entering Python only)
  data       reads `evt.data` (the JS string becomes a Python str)
  json       json.loads(evt.data)
  parse      protocol.parse_frame(evt.data) (JSON, validation, floats)
  full       the unpatched tracker (everything it does per message)
  cprofile   full, under cProfile for --profile-messages frames; pstats (by tottime) are
             printed to the wrangler log and parsed back here

Throughput is the sender's count of frames written (flat out and drain-bound, so it is
what workerd consumed); CPU is the workerd process's from /proc. Differences between
consecutive variants give the cost of each step inside workerd.
"""
from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

import devstack

from . import procstat
from .common import ADMIN_TOKEN, ROOT, fmt, http, machine, results_dir, snapshot_tree, table, write_results
from .runner import SenderProcess

# Prototype fixes for tracker/protocol.py, appended to a COPY of it (the current
# `parse_frame` is renamed `_parse_slow` and stays the reference for every unusual frame,
# so results and errors are exactly the same; tests/unit/test_protocol.py passes on both).
FASTPARSE = r'''

# -- bench prototype: fast paths for book frames ------------------------------------------
import re as _re

# (1) the C JSON scanner directly: json.loads = loads() -> decode() -> 2 whitespace regex
# matches -> raw_decode() -> scanner; four Python-level calls that cost more than decoding.
_scan_once = json.JSONDecoder().scan_once


def parse_frame_scan(text):
    if type(text) is not str or not text or text[0] != "{":
        return _parse_slow(text)
    try:
        msg, end = _scan_once(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return _parse_slow(text)
    if end != len(text) or type(msg) is not dict:
        return _parse_slow(text)
    kind = msg.get("type")
    if kind != UPDATE_ORDER_BOOK and kind != SUBSCRIBED_ORDER_BOOK:
        return _parse_slow(text)
    channel = msg.get("channel")
    body = msg.get("order_book")
    ts = msg.get("timestamp")
    if type(channel) is not str or not channel.startswith("order_book:") or type(body) is not dict:
        return _parse_slow(text)
    tail = channel[11:]
    nonce = body.get("nonce")
    begin_nonce = body.get("begin_nonce")
    bids = body.get("bids")
    asks = body.get("asks")
    if (not (tail.isascii() and tail.isdigit()) or len(tail) > 20 or type(ts) is not int
            or type(nonce) is not int or type(begin_nonce) is not int
            or type(bids) is not list or type(asks) is not list):
        return _parse_slow(text)
    return BookFrame(int(tail), kind == SUBSCRIBED_ORDER_BOOK, ts, nonce, begin_nonce,
                     _levels(bids, "bids") if bids else [], _levels(asks, "asks") if asks else [])


# (2) no JSON at all for a book frame in Lighter's exact compact shape: one full-match
# regex, one findall per non-empty side. Anything else goes to _parse_slow.
_INT = r"(?:0|[1-9][0-9]*)"
_LEVEL = r'\{"price":"[^"\\]*","size":"[^"\\]*"\}'
_LEVELS = rf"((?:{_LEVEL}(?:,{_LEVEL})*)?)"
_BOOK_RE = _re.compile(
    r'\{"channel":"order_book:([0-9]{1,20})",(?:"last_updated_at":-?' + _INT + r',)?"offset":-?' + _INT
    + r',"order_book":\{"code":0,"asks":\[' + _LEVELS + r'\],"bids":\[' + _LEVELS
    + r'\],"offset":-?' + _INT + r',"nonce":(-?' + _INT + r'),"last_updated_at":-?' + _INT
    + r',"begin_nonce":(-?' + _INT + r')\},"timestamp":(-?' + _INT + r'),"type":"(update|subscribed)/order_book"\}'
)
_PAIR_RE = _re.compile(r'"price":"([^"\\]*)","size":"([^"\\]*)"')


def _levels_re(raw):
    out = []
    for p, s in _PAIR_RE.findall(raw):
        try:
            price = float(p)
            size = float(s)
        except ValueError:
            return None
        if not (0.0 < price < INF and 0.0 <= size < INF):
            return None
        out.append((price, size))
    return out


def parse_frame_re(text):
    m = _BOOK_RE.fullmatch(text) if type(text) is str else None
    if m is None:
        return _parse_slow(text)
    market, asks, bids, nonce, begin, ts, kind = m.groups()
    a = _levels_re(asks) if asks else []
    b = _levels_re(bids) if bids else []
    if a is None or b is None:
        return _parse_slow(text)
    return BookFrame(int(market), kind == "subscribed", int(ts), int(nonce), int(begin), b, a)
'''


def patch_protocol(protocol_py: Path, which: str) -> None:
    """Rename parse_frame to _parse_slow, append FASTPARSE, bind parse_frame to `which`."""
    text = protocol_py.read_text()
    head = "def parse_frame(text: str | bytes) -> BookFrame | ControlFrame:"
    if head not in text:
        raise RuntimeError(f"profile patch: {head!r} not found in protocol.py (source changed)")
    text = text.replace(head, head.replace("def parse_frame(", "def _parse_slow("))
    protocol_py.write_text(text + FASTPARSE + f"\n\nparse_frame = {which}\n")


VARIANT_BODIES = {
    "dispatch": "pass",
    "data": "evt.data",
    "json": "_bench_json.loads(evt.data)",
    "parse": "_bench_protocol.parse_frame(evt.data)",
    "full": None,  # unpatched
    "cprofile": "self._bench_profiled(evt)",
    "proto-scan": None,  # full, with tracker/protocol.py patched: parse_frame_scan
    "proto-regex": None,  # full, with tracker/protocol.py patched: parse_frame_re
    "api": None,  # the Worker's fetch under cProfile, per path; sequential requests, no ingest
}
ORDER = ("dispatch", "data", "json", "parse", "full", "cprofile", "proto-scan", "proto-regex", "api")
PROTO = {"proto-scan": "parse_frame_scan", "proto-regex": "parse_frame_re"}

WRAPPER = '''
    _bench_on = False
    _bench_prof = None
    _bench_count = 0

    def _on_text(self, evt) -> None:
        if self._bench_on:
            {body}
            return
        self._on_text_orig(evt.data)
        if self.feed is not None and len(self.feed.pacer.subscribed) >= len(self.markets):
            self._bench_on = True
            print("[bench] all subscribed: variant {name} from now on")

    def _bench_profiled(self, evt) -> None:
        if self._bench_prof is None:
            import cProfile
            self._bench_prof = cProfile.Profile()
            self._bench_prof.enable()
        self._on_text_orig(evt.data)
        self._bench_count += 1
        if self._bench_count == {profile_messages}:
            import io
            import pstats
            self._bench_prof.disable()
            out = io.StringIO()
            pstats.Stats(self._bench_prof, stream=out).sort_stats("tottime").print_stats(30)
            print("[bench-pstats-begin]\\n" + out.getvalue() + "\\n[bench-pstats-end]")

    def _on_text_orig'''


API_PROFILE_WARMUP = 20
API_PATHS = ("/api/stats", "/api/minutes", "/api/overview", "/api/no-such-route")
ENTRY_OLD = """        return await handle(request, self.env)"""
ENTRY_NEW = """        import cProfile
        from urllib.parse import urlparse

        bench = globals().setdefault("_BENCH", {})
        path = urlparse(str(request.url)).path
        entry = bench.setdefault(path, [cProfile.Profile(), 0])
        entry[1] += 1
        if not %(warmup)d < entry[1] <= %(warmup)d + %(n)d:
            return await handle(request, self.env)
        entry[0].enable()
        try:
            return await handle(request, self.env)
        finally:
            entry[0].disable()
            if entry[1] == %(warmup)d + %(n)d:
                import io
                import pstats

                out = io.StringIO()
                pstats.Stats(entry[0], stream=out).sort_stats("tottime").print_stats(25)
                print("[bench-pstats-begin " + path + "]\\n" + out.getvalue() + "\\n[bench-pstats-end]")"""


def patch_entry(entry_py: Path, n: int) -> None:
    text = entry_py.read_text()
    if ENTRY_OLD not in text:
        raise RuntimeError("profile patch: Default.fetch not found in entry.py (source changed)")
    entry_py.write_text(text.replace(ENTRY_OLD, ENTRY_NEW % {"warmup": API_PROFILE_WARMUP, "n": n}))


def patch_tree(app: Path, variant: str, profile_messages: int, api_requests: int = 200) -> None:
    if variant == "api":
        patch_entry(app / "src" / "entry.py", api_requests)
        return
    if variant in PROTO:
        patch_protocol(app / "src" / "tracker" / "protocol.py", PROTO[variant])
        return
    if VARIANT_BODIES[variant] is None:
        return
    sock = app / "src" / "runtime" / "feed_socket.py"
    text = sock.read_text()
    old = 'self._listen("message", lambda evt: on_text(evt.data))'
    if old not in text:
        raise RuntimeError(f"profile patch: {old!r} not found in feed_socket.py (source changed)")
    sock.write_text(text.replace(old, 'self._listen("message", lambda evt: on_text(evt))'))
    sess = app / "src" / "runtime" / "session.py"
    text = sess.read_text()
    m = re.search(r"\n    def _on_text(?=\(self, text)", text)
    if not m:
        raise RuntimeError("profile patch: `def _on_text(self, text` not found in session.py (source changed)")
    wrapper = WRAPPER.format(body=VARIANT_BODIES[variant], name=variant, profile_messages=profile_messages)
    text = text[:m.start()] + "\n" + wrapper + text[m.end():]
    text = text.replace("\nimport js\n", "\nimport js\nimport json as _bench_json\n"
                        "from tracker import protocol as _bench_protocol\n", 1)
    sess.write_text(text)


def parse_pstats(log: str, label: str = "") -> list[dict]:
    m = re.search(r"\[bench-pstats-begin" + re.escape(label) + r"\](.*?)\[bench-pstats-end\]", log, re.S)
    if not m:
        return []
    total = re.search(r"function calls.*? in ([0-9.]+) seconds", m.group(1))
    rows = [{"function": "(total)", "ncalls": 0, "tottime_s": float(total.group(1)) if total else 0.0,
             "cumtime_s": float(total.group(1)) if total else 0.0}]
    for line in m.group(1).splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[0].replace("/", "").isdigit() and parts[1].replace(".", "").isdigit():
            ncalls = int(parts[0].split("/")[0])
            rows.append({"function": parts[5].strip(), "ncalls": ncalls, "tottime_s": float(parts[1]),
                         "cumtime_s": float(parts[3])})
    return rows


def run_variant(args, variant: str, sender: SenderProcess, logs: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"lot-prof-{variant}-"))
    app = tmp / "app"
    snapshot_tree(app)
    patch_tree(app, variant, args.profile_messages, args.api_requests)
    log = logs / f"profile-{variant}-wrangler.log"
    log.unlink(missing_ok=True)
    worker = devstack.WranglerDev(log, persist_dir=tmp / "state", cwd=app, config=app / "wrangler.toml",
                                  vars={"LIGHTER_API_URL": sender.url, "LIGHTER_WS_URL": sender.ws_url,
                                        "ADMIN_TOKEN": ADMIN_TOKEN})
    try:
        devstack.apply_schema(tmp / "state", cwd=app, config=app / "wrangler.toml")
        worker.start()
        pids = procstat.workerd_pids(worker.pid)
        before = {c["conn"] for c in sender.stats()["connections"]}
        status, body = http("POST", worker.url + "/api/start", token=ADMIN_TOKEN)
        if status != 200:
            raise RuntimeError(f"/api/start -> {status}: {body}")

        def conn() -> dict | None:
            for c in sender.stats()["connections"]:
                if c["conn"] not in before and c["open"]:
                    return c
            return None

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            c = conn()
            if c and c["subscribed"] >= args.markets:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{variant}: markets not all subscribed")
        if variant == "api":
            return api_profile(args, worker, sender)
        time.sleep(args.ramp_seconds)
        load = procstat.loadavg()
        s0 = sender.stats()
        c0, p0, t0 = conn(), procstat.sample(pids), time.monotonic()
        time.sleep(args.seconds)
        c1, p1, t1 = conn(), procstat.sample(pids), time.monotonic()
        s1 = sender.stats()
        frames = c1["frames_sent"] - c0["frames_sent"]
        out = {
            "variant": variant,
            "msgs_per_s": round(frames / (t1 - t0)),
            "us_per_msg": round((t1 - t0) / frames * 1e6, 1) if frames else None,
            "workerd_cpu_us_per_msg": round((p1["cpu"] - p0["cpu"]) / frames * 1e6, 1) if frames else None,
            "workerd_cpu_percent": round((p1["cpu"] - p0["cpu"]) / (t1 - t0) * 100, 1),
            "sender_cpu_percent": round((s1["cpu_seconds"] - s0["cpu_seconds"]) / (s1["time"] - s0["time"]) * 100, 1),
            "load_before": load,
            "exhausted": c1["exhausted"],
        }
        if variant == "cprofile":
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and "[bench-pstats-end]" not in worker.log_text():
                time.sleep(1)
            out["pstats"] = parse_pstats(worker.log_text())
        return out
    finally:
        worker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def api_profile(args, worker, sender) -> dict:
    """Sequential requests per path with the feed paused: wall latency, and the Worker's
    Python time per request from cProfile (the DO's /stats runs in the same isolate, so it
    is inside the profile too)."""
    import urllib.request

    sender.mode("pause")
    time.sleep(3)
    out = {"variant": "api", "requests": args.api_requests, "load_before": procstat.loadavg(), "paths": {}}
    try:
        for path in API_PATHS:
            lat = []
            for i in range(API_PROFILE_WARMUP + args.api_requests):
                t0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(worker.url + path, timeout=30) as r:
                        r.read()
                except urllib.error.HTTPError as e:
                    e.read()
                if i >= API_PROFILE_WARMUP:
                    lat.append((time.perf_counter() - t0) * 1000)
            lat.sort()
            out["paths"][path] = {"p50_ms": round(lat[len(lat) // 2], 1), "p99_ms": round(lat[int(len(lat) * 0.99)], 1)}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and worker.log_text().count("[bench-pstats-end]") < len(API_PATHS):
            time.sleep(0.5)
        log = worker.log_text()
        for path in API_PATHS:
            out["paths"][path]["pstats"] = parse_pstats(log, " " + path)
    finally:
        sender.mode(0)
    return out


def run(args) -> dict:
    logs = results_dir() / "logs"
    logs.mkdir(exist_ok=True)
    deltas = int(args.max_rate * (args.seconds + args.ramp_seconds + 15))
    sender = SenderProcess(logs / "profile-sender.log", args.markets, deltas, args.seed)
    result = {"kind": "bench-profile", "started": time.strftime("%Y-%m-%d %H:%M:%S"), "args": vars(args),
              "machine": machine(), "variants": {}}
    try:
        sender.wait_ready()
        sender.mode(0)
        for variant in args.variants:
            print(f"[profile {time.strftime('%H:%M:%S')}] variant {variant} (load {procstat.loadavg()[0]})", flush=True)
            r = run_variant(args, variant, sender, logs)
            result["variants"][variant] = r
            if variant == "api":
                print(f"[profile] api: " + ", ".join(f"{p} p50 {v['p50_ms']} ms" for p, v in r["paths"].items()),
                      flush=True)
                continue
            print(f"[profile] {variant}: {r['msgs_per_s']:,} msg/s, {r['us_per_msg']} us/msg wall, "
                  f"{r['workerd_cpu_us_per_msg']} us/msg workerd CPU", flush=True)
    finally:
        sender.stop()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return result


def report(r: dict) -> str:
    v = r["variants"]
    rows = []
    prev = None
    labels = {"dispatch": "workerd event -> Python handler", "data": "+ evt.data to str",
              "json": "+ json.loads", "parse": "+ parse_frame beyond json (validation, floats)",
              "full": "+ book, continuity, aggregator, counters", "cprofile": "full under cProfile",
              "proto-scan": "full, parse_frame via the C JSON scanner", "proto-regex": "full, parse_frame via one regex"}
    for name in ORDER:
        if name not in v or name == "api":
            continue
        x = v[name]
        step = ""
        if prev is not None and name in VARIANT_BODIES and VARIANT_BODIES[name] != "self._bench_profiled(evt)" \
                and name not in PROTO and x["workerd_cpu_us_per_msg"] and prev["workerd_cpu_us_per_msg"]:
            step = fmt(x["workerd_cpu_us_per_msg"] - prev["workerd_cpu_us_per_msg"])
        elif name == "dispatch":
            step = fmt(x["workerd_cpu_us_per_msg"])
        rows.append((name, labels[name], fmt(x["msgs_per_s"]), fmt(x["us_per_msg"]), fmt(x["workerd_cpu_us_per_msg"]),
                     step, x.get("sender_cpu_percent"), x["load_before"][0]))
        if name not in ("cprofile",) and name not in PROTO:
            prev = x
    text = table(rows, ("variant", "what the handler does", "msgs/s", "wall us/msg", "CPU us/msg", "step CPU us",
                        "sender CPU %", "load"))
    api = v.get("api")
    if api:
        n = api["requests"]
        text += f"\n\nAPI, one client, feed paused, {n} requests per path: wall latency and Python time (cProfile):\n"
        arows = []
        for path, x in api["paths"].items():
            ps = x.get("pstats") or []
            total = ps[0]["tottime_s"] / n * 1000 if ps else None
            arows.append((path, x["p50_ms"], x["p99_ms"], fmt(total, 2)))
        text += table(arows, ("path", "p50 ms", "p99 ms", "Python ms/request (profiled)"))
        for path, x in api["paths"].items():
            ps = (x.get("pstats") or [])[1:9]
            if ps:
                text += f"\n  {path} top functions (own ms/request): " + "; ".join(
                    f"{p['function'].split('/')[-1][:48]} {p['tottime_s'] / n * 1000:.2f}" for p in ps)
    ps = (v.get("cprofile") or {}).get("pstats") or []
    ps = [p for p in ps if p["function"] != "(total)"]
    if ps:
        n = r["args"]["profile_messages"]
        prow = [(p["function"][:70], p["ncalls"], fmt(p["tottime_s"] / n * 1e6, 2), fmt(p["cumtime_s"] / n * 1e6, 2))
                for p in ps[:18]]
        text += f"\n\nPyodide cProfile, {n:,} frames (times inflated by the profiler; per frame):\n"
        text += table(prow, ("function", "calls", "own us/frame", "cum us/frame"))
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 s per variant")
    ap.add_argument("--markets", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per variant (default 20)")
    ap.add_argument("--ramp-seconds", type=float, default=4)
    ap.add_argument("--variants", nargs="+", default=list(ORDER), choices=ORDER)
    ap.add_argument("--profile-messages", type=int, default=50_000)
    ap.add_argument("--api-requests", type=int, default=200, help="api variant: profiled requests per path")
    ap.add_argument("--max-rate", type=int, default=30_000, help="msg/s, only to size the stream")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", default="profile")
    args = ap.parse_args(argv)
    args.seconds = args.seconds or (10 if args.quick else 20)
    result = run(args)
    path = write_results(args.output, result)
    print()
    print(report(result))
    print(f"\nfigures: {path.relative_to(ROOT)}")
    return 0
