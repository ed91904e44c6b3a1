"""Micro-benchmark of tracker.sbe.decode (Paradex SBE) against tracker.protocol.parse_frame
(Lighter JSON) on comparable frames, in this interpreter (CPython on the host).

    .venv/bin/python tools/bench/sbe_decode.py [--rounds 7] [--min-time 0.2] [--pyodide]

Paradex frames are the captured production ones (tests/fixtures/paradex): an empty
DELTA (118 B), the two-level DELTA of the reference's example (150 B), a one-level
DELTA (134 B) and the 115+60-level SNAPSHOT (2918 B). The Lighter frames are the
captured update (tests/fixtures/lighter/ws_order_book_update.json, compact JSON as
Lighter sends it) with its level lists replaced to hold the same levels. Also timed:
the bytes(memoryview) copy a runtime may make of a 134-byte frame, and decoding the
memoryview directly. Prints figures only (best of the rounds, and the median); no
assertion, no file written. `--pyodide` runs the same in Pyodide (node_modules/pyodide,
the runtime the Worker uses) under node.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from tracker.protocol import parse_frame  # noqa: E402
from tracker.sbe import BookEvent, decode  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def paradex_frames() -> dict[str, bytes]:
    frames = []
    for line in (FIXTURES / "paradex" / "btc-deltas-head.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["opcode"] == "binary":
            frames.append(base64.b64decode(rec["b64"]))
    events = [decode(f) for f in frames]
    assert all(type(e) is BookEvent for e in events)

    def first(pred):
        return next(f for f, e in zip(frames, events) if pred(e))

    return {
        "empty delta": first(lambda e: not e.snapshot and not e.bids and not e.asks),
        "1-level delta": first(lambda e: not e.snapshot and len(e.bids) + len(e.asks) == 1),
        "2-level delta": first(lambda e: not e.snapshot and len(e.bids) == 1 and len(e.asks) == 1),
        "175-level snapshot": frames[0],
    }


def lighter_frame(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> str:
    msg = json.loads((FIXTURES / "lighter" / "ws_order_book_update.json").read_text())

    def levels(side):
        return [{"price": repr(p), "size": repr(s)} for p, s in side]

    msg["order_book"]["bids"] = levels(bids)
    msg["order_book"]["asks"] = levels(asks)
    return json.dumps(msg, separators=(",", ":"))


def measure(fns: dict[str, object], rounds: int, min_time: float) -> dict[str, tuple[float, float]]:
    """Best and median seconds per call of each function over `rounds` rounds of
    >= min_time each; the functions take turns within a round, so a load change on a
    shared machine hits them alike and their ratios stay fair."""
    timers = {}
    for name, fn in fns.items():
        timer = timeit.Timer(fn)
        number = 1
        while timer.timeit(number) < min_time:
            number *= 2
        timers[name] = (timer, number)
    per_call: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (timer, number) in timers.items():
            per_call[name].append(timer.timeit(number) / number)
    return {name: (min(t), statistics.median(t)) for name, t in per_call.items()}


def row(label: str, size: int, best: float, median: float, note: str = "") -> str:
    return f"  {label:<34} {size:>6} B {best * 1e6:9.3f} µs {median * 1e6:9.3f} µs {1 / best:>12,.0f}/s  {note}"


def load_average() -> str:
    if sys.platform == "emscripten":  # Pyodide answers a made-up 0.10
        return "host load average not visible"
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per round and function")
    ap.add_argument("--pyodide", action="store_true",
                    help="run this benchmark under Pyodide (node_modules/pyodide, in node) instead")
    a = ap.parse_args(argv)
    if a.pyodide:
        return run_in_pyodide([f"--rounds={a.rounds}", f"--min-time={a.min_time}"])

    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}, "
          f"{load_average()}, {os.cpu_count()} CPUs; best and median of {a.rounds} rounds")
    print(f"  {'frame':<34} {'size':>8} {'best':>12} {'median':>12} {'frames/s (best)':>16}")
    for name, frame in paradex_frames().items():
        event = decode(frame)
        text = lighter_frame(event.bids, event.asks)
        assert parse_frame(text).bids == event.bids and parse_frame(text).asks == event.asks
        r = measure({"sbe": lambda: decode(frame), "json": lambda: parse_frame(text)}, a.rounds, a.min_time)
        print(row(f"SBE decode, {name}", len(frame), *r["sbe"]))
        print(row(f"JSON parse_frame, {name}", len(text.encode()), *r["json"],
                  f"{r['json'][0] / r['sbe'][0]:.2f}x the SBE time"))

    frame = paradex_frames()["1-level delta"]
    view = memoryview(frame)
    assert len(frame) == 134
    r = measure({
        "bytes(memoryview) copy": lambda: bytes(view),
        "decode(bytes)": lambda: decode(frame),
        "decode(memoryview), no copy": lambda: decode(view),
        "decode(bytes(memoryview))": lambda: decode(bytes(view)),
    }, a.rounds, a.min_time)
    print("The runtime's copy, separately (134-byte 1-level delta):")
    for label, (best, median) in r.items():
        print(row(label, len(frame), best, median))
    if sys.platform == "emscripten":
        print("Crossing from JS into Python, as runtime/feed_socket.py does per frame:")
        for label, (size, best, median) in js_crossing(frame, a.rounds, a.min_time).items():
            print(row(label, size, best, median))
    print("Ingest: BookFeed.on_frame, the whole per-message path (parse, book, continuity, window sums):")
    for label, (size, best, median) in ingest(a.rounds, a.min_time).items():
        print(row(label, size, best, median))
    return 0


def js_crossing(frame: bytes, rounds: int, min_time: float) -> dict[str, tuple[int, float, float]]:
    """The message event's `evt.data` read from Python: a JS string becomes a Python
    str (Lighter), an ArrayBuffer is copied into bytes with `to_bytes()` (Paradex)."""
    import js
    from pyodide.ffi import to_js

    event = paradex_frames()["1-level delta"]
    text = lighter_frame(decode(event).bids, decode(event).asks)
    binary = js.Object.fromEntries(to_js([["data", to_js(frame).buffer]]))
    textual = js.Object.fromEntries(to_js([["data", text]]))
    r = measure({"text": lambda: textual.data, "binary": lambda: binary.data.to_bytes()}, rounds, min_time)
    return {"evt.data -> str (Lighter JSON frame)": (len(text.encode()), *r["text"]),
            "evt.data.to_bytes() (Paradex SBE frame)": (len(frame), *r["binary"])}


def ingest(rounds: int, min_time: float, n: int = 20_000) -> dict[str, tuple[int, float, float]]:
    """The same book changes as Lighter JSON frames and as Paradex SBE frames, through the
    real feed with each exchange's wire: one level replaced per delta, alternately on
    each side, so the book keeps its size."""
    sys.path.insert(0, str(ROOT / "tests"))
    import paradex_frames as pf
    import reference_model as ref

    from tracker.aggregator import WindowAggregator
    from tracker.feed import BookFeed
    from tracker.paradex import ParadexWire
    from tracker.paradex_markets import market_index_of
    from tracker.pacing import SubscriptionPacer

    symbol, market = "BTC-USD-PERP", market_index_of("BTC-USD-PERP")
    ts = 1_791_421_535_000
    bids = [(f"{100 - i * 0.5:.1f}", "1") for i in range(20)]
    asks = [(f"{101 + i * 0.5:.1f}", "1") for i in range(20)]
    changes = []
    for i in range(n):
        side, price = ("bid", bids[i % 20][0]) if i % 2 else ("ask", asks[i % 20][0])
        changes.append((side, price, str(1 + i % 7)))
    lighter = [ref.book_frame(market, ts_ms=ts, nonce=1, bids=bids, asks=asks, snapshot=True)]
    paradex = [pf.encode_book(ts_us=ts * 1000, seq=1, snapshot=True, market=symbol, bids=bids, asks=asks)]
    for i, (side, price, size) in enumerate(changes):
        t = ts + i // 10  # ten frames a millisecond
        levels = {"bids": [(price, size)]} if side == "bid" else {"asks": [(price, size)]}
        lighter.append(ref.book_frame(market, ts_ms=t, nonce=i + 2, begin_nonce=i + 1, **levels))
        paradex.append(pf.encode_book(ts_us=t * 1000, seq=i + 2, market=symbol, **levels))

    def run(frames, wire, connected):
        feed = BookFeed([market], WindowAggregator(15_000, ts - ts % 15_000), SubscriptionPacer(wire=wire), wire=wire)
        if connected:
            feed.on_frame(connected)
        else:
            feed.on_open()
        on_frame = feed.on_frame
        for frame in frames:
            on_frame(frame)
        assert feed.counters.gaps == 0 and feed.counters.malformed == 0

    from tracker.protocol import LighterWire
    connected = '{"session_id":"bench","type":"connected"}'
    timing = measure({
        "lighter": lambda: run(lighter, LighterWire(), connected),
        "paradex": lambda: run(paradex, ParadexWire({market: symbol}), None),
    }, max(3, rounds // 2), min_time)
    per = len(lighter)
    return {
        "Lighter JSON frames, per message": (len(lighter[1].encode()), timing["lighter"][0] / per, timing["lighter"][1] / per),
        "Paradex SBE frames, per message": (len(paradex[1]), timing["paradex"][0] / per, timing["paradex"][1] / per),
    }


def run_in_pyodide(args: list[str]) -> int:
    """Run this file's main() inside Pyodide under node, the repository mounted at /repo."""
    pyodide = ROOT / "node_modules" / "pyodide"
    if not (pyodide / "pyodide.mjs").exists() or shutil.which("node") is None:
        print(f"no Pyodide at {pyodide} or no node on PATH (scripts/setup installs both)", file=sys.stderr)
        return 1
    code = (f"import runpy; runpy.run_path('/repo/tools/bench/sbe_decode.py')['main']({args!r})")
    js = f"""
import {{ loadPyodide }} from {json.dumps((pyodide / "pyodide.mjs").as_uri())};
const py = await loadPyodide({{ indexURL: {json.dumps(str(pyodide) + "/")} }});
py.setStdout({{ batched: (s) => console.log(s) }});
py.setStderr({{ batched: (s) => console.error(s) }});
py.FS.mkdir("/repo");
py.FS.mount(py.FS.filesystems.NODEFS, {{ root: {json.dumps(str(ROOT))} }}, "/repo");
console.log("Pyodide " + py.version + " in node " + process.version);
py.runPython({json.dumps(code)});
"""
    return subprocess.run(["node", "--input-type=module", "-e", js]).returncode


if __name__ == "__main__":
    sys.exit(main())
