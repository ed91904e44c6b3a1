"""Regenerate docs/api-examples.md: every endpoint's request and response, produced
by running the real Worker (wrangler dev + local D1 + the Durable Object) against
the local Lighter simulator.

    bash scripts/api-examples                 # setup, then this: about 2-3 minutes
    .venv/bin/python tools/api_examples.py [--out docs/api-examples.md] [--log FILE]

It starts the stack in a temporary folder (tools/devstack.py: simulator + wrangler
dev with a fresh --persist-to), starts tracking, waits for 15 s windows and a
complete minute, calls every route (and the usual mistakes: 400/401/404/405),
makes the feed fail to show a 503 from /api/health, stops tracking, and writes the
markdown with the real answers (long arrays cut to their first 2 items).

tests/integration/test_deploy_guide.py runs the same scenario (`collect`) against
the test session's worker, renders it into a temporary file and compares its
signature (each example's request, status, shown headers and JSON keys; never the
values) with the committed file: a route, status or field that changes without
regenerating the examples fails the test.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import devstack

ROOT = devstack.ROOT
DEFAULT_OUT = ROOT / "docs" / "api-examples.md"
EXAMPLE_TOKEN = "example-token"
SIM_MARKETS = 4
SIM_RATE = 5
SIM_SEED = 1
# Two shards, as the test session runs (so the staleness test compares like with like),
# which also shows the per-shard detail the answers carry.
SHARDS = 2
KEEP_ITEMS = 2  # long arrays are cut to this many items
# Response headers worth showing (the rest is the same everywhere or noise).
SHOWN_HEADERS = (
    "content-type", "content-disposition", "allow", "www-authenticate", "upgrade",
    "access-control-allow-origin", "access-control-allow-methods",
)

SimControl = Callable[..., Any]  # sim_control("close", code=1012, ...)


# -- one example -----------------------------------------------------------------------


@dataclass
class Example:
    id: str  # stable slug: what the staleness test matches on
    section: str
    title: str
    about: str
    command: str  # what a reader types ($WORKER, $ADMIN_TOKEN)
    status: int
    headers: dict[str, str]
    kind: str  # json | text | ws
    body: Any
    notes: list[str] = field(default_factory=list)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Client:
    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, auth: str | None = None, timeout: float = 60,
             extra: dict[str, str] | None = None) -> Answer:
        headers = dict(extra or {})
        if auth == "admin":
            headers["Authorization"] = f"Bearer {self.token}"
        elif auth is not None:
            headers["Authorization"] = auth
        request = urllib.request.Request(self.base + path, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode())
        except urllib.error.HTTPError as e:
            return Answer(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode())

    def json(self, path: str) -> Any:
        answer = self.call("GET", path)
        if answer.status != 200:
            raise RuntimeError(f"GET {path} -> {answer.status}: {answer.text[:300]}")
        return answer.json()

    def wait(self, path: str, predicate: Callable[[Any], Any], timeout: float, what: str,
             statuses: tuple[int, ...] = (200,)) -> Any:
        """Poll GET `path` until it answers one of `statuses` with a body `predicate` accepts."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                answer = self.call("GET", path)
                last = f"{answer.status}: {answer.text[:300]}"
                if answer.status in statuses and predicate(answer.json()):
                    return answer.json()
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                last = repr(exc)
            time.sleep(0.5)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}; last: {str(last)[:500]}")


def cut(value: Any, notes: list[str], where: str = "") -> Any:
    """Lists longer than KEEP_ITEMS keep their first items; each cut is noted."""
    if isinstance(value, list):
        if len(value) > KEEP_ITEMS:
            notes.append(f"`{where or '.'}` had {len(value)} items")
        return [cut(v, notes, f"{where}[]") for v in value[:KEEP_ITEMS]]
    if isinstance(value, dict):
        return {k: cut(v, notes, f"{where}.{k}") for k, v in value.items()}
    return value


def _shown(headers: dict[str, str]) -> dict[str, str]:
    return {h: headers[h] for h in SHOWN_HEADERS if h in headers}


def _curl(method: str, path: str, auth: str | None = None, extra: str = "") -> str:
    parts = ["curl -s"]
    if method not in ("GET",):
        parts.append(f"-X {method}")
    if auth == "admin":
        parts.append('-H "Authorization: Bearer $ADMIN_TOKEN"')
    elif auth is not None:
        parts.append(f'-H "Authorization: {auth}"')
    if extra:
        parts.append(extra)
    parts.append(f'"$WORKER{path}"')
    return " ".join(parts)


class Recorder:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.examples: list[Example] = []

    def http(self, id: str, section: str, about: str, method: str, path: str, *, auth: str | None = None,
             expect: int | None = None, shape: Callable[[Any], Any] | None = None, jq: str = "",
             text_lines: int | None = None, head_only: bool = False, own_origin: bool = False) -> Answer:
        """`own_origin`: send `Origin: $WORKER`, as a browser on the dashboard would."""
        answer = self.client.call(method, path, auth, extra={"Origin": self.client.base} if own_origin else None)
        if expect is not None and answer.status != expect:
            raise RuntimeError(f"{method} {path}: expected {expect}, got {answer.status}: {answer.text[:300]}")
        notes: list[str] = []
        if head_only:
            kind, body = "text", None
            command = _curl(method, path, auth, "-o /dev/null -w '%{http_code} %{content_type}\\n'")
        elif text_lines is not None:
            lines = answer.text.splitlines()
            kind, body = "text", "\n".join(lines[:text_lines + 1])
            if len(lines) > text_lines + 1:
                notes.append(f"the body had {len(lines)} lines: the header and the first {text_lines} are shown")
            command = _curl(method, path, auth)
        elif answer.text:
            value = answer.json()
            if shape is not None:
                value = shape(value)
            kind, body = "json", cut(value, notes)
            command = _curl(method, path, auth, '-H "Origin: $WORKER"' if own_origin else "") + (f" | jq '{jq}'" if jq else "")
        else:
            kind, body = "text", None
            command = _curl(method, path, auth, "-i")
        title = f"{method} {path}"
        self.examples.append(Example(id, section, title, about, command, answer.status, _shown(answer.headers),
                                     kind, body, notes))
        return answer


# -- the scenario ------------------------------------------------------------------------


def collect(base_url: str, token: str, sim_control: SimControl, log: Callable[[str], None] = print,
            minute_timeout: float = 150) -> list[Example]:
    """Run every example against a running worker (tracking on or off) and the simulator
    it reads from. Leaves tracking stopped and the simulator's faults reset."""
    client = Client(base_url, token)
    rec = Recorder(client)
    ws_base = "ws" + base_url[len("http"):] if base_url.startswith("http") else base_url

    log("stopping any previous run, resetting the simulator's faults")
    client.call("POST", "/api/stop", "admin")
    sim_control("reset")

    # -- control -------------------------------------------------------------------
    rec.http("health-idle", "Health", "Tracking is off: healthy (`idle`), 200.", "GET", "/api/health", expect=200)
    rec.http("start-no-token", "Control", "Control without the token: 401, with a `WWW-Authenticate` challenge.",
             "POST", "/api/start", expect=401)
    rec.http("start-wrong-token", "Control", "A wrong token: 401.", "POST", "/api/start",
             auth="Bearer not-the-token", expect=401)
    rec.http("start", "Control",
             "Start tracking on every shard. Idempotent (a second call answers `alreadyTracking: true`). "
             "The body is the shards' stats right after the start: the market list is read, the "
             "connection is still opening.", "POST", "/api/start", auth="admin", expect=200)

    log("waiting for every book to be live")
    client.wait("/api/stats", lambda s: s["markets"] > 0 and s["connected"] and s["validBooks"] == s["markets"],
                90, "every shard connected with every book live")
    log("waiting for a flushed window on every shard")
    client.wait("/api/stats", lambda s: all(x["windowsFlushed"] > 0 for x in s["shards"]), 60,
                "a flushed window on every shard")
    log("waiting for a complete minute (up to ~62 s)")
    client.wait("/api/minutes", lambda b: b["count"] > 0, minute_timeout, "a minute row")
    client.wait("/api/health", lambda h: h["status"] == "ok" and "detail" not in h, 60, "health ok")
    markets = client.json("/api/markets")["markets"]
    symbol = next(m["symbol"] for m in markets if m["active"])
    # That market's own minute: the first minute row found above may be another market's
    # (a minute is written per market, as each shard's windows complete it).
    minute = client.wait(f"/api/minutes?symbol={symbol}&limit=1", lambda b: b["count"] > 0, minute_timeout,
                         f"a minute row of {symbol}")["minutes"][0]["timestamp"]

    # -- data ------------------------------------------------------------------------
    rec.http("stats", "Data",
             "Tracker and database counters, summed over the shards; `shards` has each shard's own. "
             "`database` counts rows in D1; `aggregator` is the window being filled now.",
             "GET", "/api/stats", expect=200)
    rec.http("markets", "Data", "Every market Lighter listed (inactive ones too), from D1.",
             "GET", "/api/markets", expect=200)
    rec.http("snapshots-symbol", "Data",
             "15 s windows of one market, newest first (`timestamp` = the window's start, ms). "
             "Same parameters as /api/minutes.",
             "GET", f"/api/snapshots?symbol={symbol}&limit=2", expect=200)
    rec.http("minutes", "Data",
             "Minute rows of every market, newest first. Parameters: `symbol`, `limit` (1-1000, default 60), "
             "`offset`, `from`/`to` (ms, inclusive).", "GET", "/api/minutes?limit=2", expect=200)
    rec.http("minutes-range", "Data", "One market over a time range (inclusive bounds, ms).",
             "GET", f"/api/minutes?symbol={symbol}&from={minute}&to={minute + 59_999}", expect=200)
    rec.http("overview", "Data",
             "Each active market's latest window and minute; `age_ms` is how long ago its latest window "
             "ended (1.5-16.5 s when healthy).", "GET", "/api/overview", expect=200)
    log("waiting for a Paradex minute")
    client.wait("/api/minutes?exchange=paradex", lambda b: b["count"] > 0, minute_timeout, "a Paradex minute row")
    rec.http("paradex-markets", "Paradex",
             "Every route takes `exchange=paradex` (`lighter`, the default, is the tables named "
             "`lighter_*`): Paradex's markets, ids being a hash of the symbol.",
             "GET", "/api/markets?exchange=paradex", expect=200)
    rec.http("paradex-minutes", "Paradex", "Paradex's minute rows, the same columns as Lighter's.",
             "GET", "/api/minutes?exchange=paradex&symbol=BTC-USD-PERP&limit=1", expect=200)
    rec.http("paradex-stats", "Paradex", "Paradex's shards alone (without `exchange`, /api/stats answers every "
             "enabled exchange: Lighter's fields at the top, each exchange's under `exchanges`).",
             "GET", "/api/stats?exchange=paradex", expect=200)
    rec.http("error-exchange", "Paradex", "An unknown exchange: 400.", "GET", "/api/minutes?exchange=kraken",
             expect=400)
    rec.http("assets", "Compare", "The assets tracked on both exchanges (Lighter's perp `BTC` and Paradex's "
             "`BTC-USD-PERP` are `BTC`), derived from the market lists or set by `ASSET_PAIRS`.",
             "GET", "/api/assets", expect=200)
    log("waiting for BTC's windows on both exchanges")
    client.wait("/api/compare?asset=BTC&resolution=windows&limit=2",
                lambda b: all(v is not None for v in b["basis_bps"] or [None]), 90, "two windows of BTC on both")
    rec.http("compare", "Compare", "One asset on both exchanges, newest first, aligned on the row timestamps "
             "(`null` where an exchange has no row): one list per column and exchange, and `basis_bps` = "
             "(Paradex twap_mid - Lighter twap_mid) / Lighter twap_mid * 1e4. `resolution` windows (here), "
             "minutes (the default) or hours; `limit`, `offset`, `from`/`to` as /api/minutes.",
             "GET", "/api/compare?asset=BTC&resolution=windows&limit=2", expect=200)
    rec.http("error-asset", "Compare", "An asset no exchange pair has: 404 (names are case-sensitive).",
             "GET", "/api/compare?asset=btc", expect=404)
    rec.http("export-csv", "Data",
             "Minute rows oldest first as a CSV download (streamed; a day of every market is fine).",
             "GET", f"/api/export?symbol={symbol}&format=csv", expect=200, text_lines=2)
    rec.http("export-json", "Data", "The same as JSON.", "GET", f"/api/export?symbol={symbol}&format=json",
             expect=200)
    rec.http("health-ok", "Health",
             "Tracking on and the feed fresh: 200. `ageMs` is how old the newest frame is.",
             "GET", "/api/health", expect=200)
    rec.http("openapi", "Data", "The OpenAPI 3.1 document of every route (shown here: its routes and methods).",
             "GET", "/api/openapi.json", expect=200, jq="{openapi, version: .info.version, paths: (.paths | map_values(keys))}",
             shape=lambda d: {"openapi": d["openapi"], "version": d["info"]["version"],
                              "paths": {p: sorted(v) for p, v in d["paths"].items()}})
    rec.http("dashboard", "Dashboard", "The dashboard page (HTML).", "GET", "/", expect=200, head_only=True)
    rec.http("ws-no-upgrade", "Dashboard", "`/ws` is a WebSocket: a plain GET from the dashboard's origin gets 426.",
             "GET", "/ws", expect=426, own_origin=True)
    rec.http("ws-no-origin", "Dashboard", "Without the dashboard's `Origin` (or one in ALLOWED_ORIGINS): 403, "
             "whatever else the request carries.", "GET", "/ws", expect=403)
    rec.examples.append(_websocket_example(ws_base))

    # -- mistakes ----------------------------------------------------------------------
    for id, about, method, path, status in (
        ("error-limit", "A limit that is not a number.", "GET", "/api/minutes?limit=abc", 400),
        ("error-negative", "A negative limit.", "GET", "/api/minutes?limit=-5", 400),
        ("error-symbol", "A symbol no market has (symbols are case-sensitive): not found.", "GET",
         "/api/minutes?symbol=NOPE", 404),
        ("error-param", "An unknown parameter (a typo is an error, not ignored).", "GET",
         "/api/minutes?symbl=ETH", 400),
        ("error-route", "An unknown route.", "GET", "/api/nope", 404),
        ("error-method", "A wrong method on a data route: 405 with `Allow`.", "PUT", "/api/minutes", 405),
        ("error-control-get", "A GET on a control route: 405.", "GET", "/api/start", 405),
        ("preflight", "CORS preflight of a data route: 204.", "OPTIONS", "/api/minutes", 204),
        ("preflight-control", "CORS preflight of a control route: refused (405).", "OPTIONS", "/api/start", 405),
    ):
        rec.http(id, "Errors", about, method, path, expect=status)

    # -- an outage ---------------------------------------------------------------------
    log("breaking the feed for a 503 from /api/health")
    sim_control("refuse_subscriptions", seconds=120)
    sim_control("close", code=1012, reason="service restart")
    client.wait("/api/health", lambda h: h["status"] not in ("ok", "idle"), 60, "an unhealthy /api/health",
                statuses=(503,))
    rec.http("health-down", "Health",
             "Tracking on but the feed `down` (disconnected) or `stale` (no frame for STALE_FEED_SECONDS, "
             "or none since a reconnect): 503 with the reason. Here Lighter had just closed the connection.",
             "GET", "/api/health", expect=503)
    sim_control("reset")

    rec.http("stop", "Control", "Stop tracking: closes the socket, flushes the open window and rolls its minute "
             "and its (partial) hour.", "POST", "/api/stop", auth="admin", expect=200)

    # -- hours (written when an hour completes, and for the partial hour on stop) ----------
    rec.http("hours", "Data",
             "Hour rows, newest first (kept HOUR_RETENTION_DAYS, default 90): the minute columns, rolled up "
             "from the hour's minutes (`windows` counts all their windows). Same parameters as /api/minutes. "
             "Depth columns (in every row type): quote notional within 10/50/100 bps of the mid per side, "
             "the mean of `depth_samples` (one per market and exchange second); `imbalance_50` = "
             "(bid - ask) / (bid + ask) at 50 bps.", "GET", f"/api/hours?symbol={symbol}&limit=1", expect=200)
    rec.http("export-hours", "Data", "Hour rows oldest first as a download: `resolution=hours` (default `minutes`).",
             "GET", f"/api/export?symbol={symbol}&format=csv&resolution=hours", expect=200, text_lines=2)
    return rec.examples


def _websocket_example(ws_base: str) -> Example:
    from websockets.sync.client import connect

    # A browser on the dashboard's page sends its own origin; /ws refuses any other.
    origin = ws_base.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    with connect(ws_base + "/ws", open_timeout=30, origin=origin) as ws:
        hello = json.loads(ws.recv(timeout=30))
        ws.send('{"type":"ping"}')
        pong = json.loads(ws.recv(timeout=30))
    notes: list[str] = []
    body = {"hello": cut(hello, notes, ".hello"), "after sending {\"type\":\"ping\"}": pong}
    return Example(
        "ws", "Dashboard", "GET /ws",
        "The dashboard's live socket. On connect: `hello` with the recent activity log and the stats; then "
        "`{\"type\":\"logs\",\"entries\":[...]}` as the shards relay their log lines and "
        "`{\"type\":\"stats\",...}` every LIVE_PUSH_SECONDS (`hub.pushEveryMs`). Send `{\"type\":\"stats\"}` "
        "for the last stats, `{\"type\":\"ping\"}` for a pong. Only the dashboard's own origin (and "
        "ALLOWED_ORIGINS) may open it; with READ_TOKEN set, the token too (a browser offers it as the "
        "subprotocol `bearer.<base64url>` next to `lighter-tracker`).",
        'python -m websockets --origin "$WORKER" "wss://${WORKER#https://}/ws"', 101, {}, "ws", body, notes,
    )


# -- markdown ----------------------------------------------------------------------------

SECTIONS = ("Control", "Data", "Paradex", "Compare", "Health", "Dashboard", "Errors")


def render(examples: list[Example], context: str) -> str:
    unknown = sorted({e.section for e in examples} - set(SECTIONS))
    if unknown:  # an example of a section not listed would be left out of the file, silently
        raise ValueError(f"examples in sections SECTIONS does not list: {unknown}")
    out = [
        "# API examples",
        "",
        "<!-- Generated by tools/api_examples.py (`bash scripts/api-examples`): do not edit by hand. -->",
        "",
        "Every request and response below comes from a real run of this Worker: `wrangler dev`",
        "(Worker + Durable Object + local D1) tracking the local Lighter simulator. `$WORKER` is the",
        "Worker's URL (`https://lighter-orderbook-tracker.<your-subdomain>.workers.dev`), `$ADMIN_TOKEN`",
        "the secret. Timestamps are milliseconds since the Unix epoch. Long arrays are cut to their first",
        f"{KEEP_ITEMS} items (noted under each example). Regenerate with `bash scripts/api-examples`.",
        "",
        f"Run: {context}",
        "",
        "| route | examples |",
        "| --- | --- |",
    ]
    by_route: dict[str, list[Example]] = {}
    for ex in examples:
        route = ex.title.split(" ", 1)[1].split("?", 1)[0]
        by_route.setdefault(route, []).append(ex)
    for route, exs in by_route.items():
        links = ", ".join(f"[{e.title.split(' ', 1)[0]} {e.status}](#{e.id})" for e in exs)
        out.append(f"| `{route}` | {links} |")
    out.append("")
    for section in SECTIONS:
        exs = [e for e in examples if e.section == section]
        if not exs:
            continue
        out += [f"## {section}", ""]
        for ex in exs:
            out += [f'<a id="{ex.id}"></a>', f"### `{ex.title}` → {ex.status}", "", ex.about, "",
                    "```sh", ex.command, "```", ""]
            head = [f"**{ex.status}**"] + [f"`{k}: {v}`" for k, v in ex.headers.items()]
            out += [" · ".join(head), ""]
            if ex.kind in ("json", "ws"):
                out += ["```json", json.dumps(ex.body, indent=2, ensure_ascii=False), "```", ""]
            elif ex.body is not None:
                out += ["```text", ex.body, "```", ""]
            elif "-w '%{http_code}" in ex.command:
                out += ["```text", f"{ex.status} {ex.headers.get('content-type', '')}", "```", ""]
            if ex.notes:
                out += ["Cut for length: " + "; ".join(ex.notes) + ".", ""]
    return "\n".join(out).rstrip() + "\n"


# -- the signature the staleness test compares -------------------------------------------------

_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>$')
_TITLE = re.compile(r"^### `([A-Z]+) ([^`?]+)[^`]*` → (\d+)$")


def _paths(value: Any, where: str, keys: set[str], open_: set[str]) -> None:
    if isinstance(value, dict):
        if not value:
            open_.add(where)
        for k, v in value.items():
            keys.add(f"{where}.{k}")
            _paths(v, f"{where}.{k}", keys, open_)
    elif isinstance(value, list):
        if not value:
            open_.add(where + "[]")
        for v in value:
            _paths(v, where + "[]", keys, open_)
    elif value is None:
        open_.add(where)  # null here, maybe an object elsewhere


def parse(markdown: str) -> dict[str, dict]:
    """{example id: {"route", "status", "headers", "keys", "open"}} from a rendered file.

    `headers` are the shown header names (plus the content-type's media type); `keys`
    are the JSON key paths of the shown body (`.markets[].symbol`), or a CSV body's
    header columns; `open` the paths that are empty or null, whose insides may differ."""
    found: dict[str, dict] = {}
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        anchor = _ANCHOR.match(lines[i])
        if not anchor:
            i += 1
            continue
        ex_id = anchor.group(1)
        title = _TITLE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if not title:
            raise ValueError(f"example {ex_id}: no title line after its anchor")
        entry: dict = {"route": f"{title.group(1)} {title.group(2)}", "status": int(title.group(3)),
                       "headers": set(), "keys": set(), "open": set()}
        csv = False
        i += 2
        while i < len(lines) and not _ANCHOR.match(lines[i]) and not lines[i].startswith("## "):
            line = lines[i]
            if line.startswith(f"**{entry['status']}**"):
                entry["headers"] = set(re.findall(r"`([a-z-]+): ", line))
                media = re.search(r"`content-type: ([^;`]+)", line)
                if media:
                    entry["headers"].add("content-type=" + media.group(1))
                    csv = media.group(1) == "text/csv"
            elif line in ("```json", "```text"):
                end = lines.index("```", i + 1)
                block = lines[i + 1:end]
                if line == "```json":
                    _paths(json.loads("\n".join(block)), "", entry["keys"], entry["open"])
                elif csv and block:
                    entry["keys"] |= {f"csv:{c}" for c in block[0].split(",")}
                i = end
            i += 1
        found[ex_id] = entry
    return found


def compare(committed: dict[str, dict], fresh: dict[str, dict]) -> list[str]:
    """What differs between two parsed files, ignoring values and the insides of
    lists/objects that are empty or null on either side."""
    problems: list[str] = []
    for ex_id in sorted(committed.keys() - fresh.keys()):
        problems.append(f"{ex_id}: in the committed examples, no longer produced")
    for ex_id in sorted(fresh.keys() - committed.keys()):
        problems.append(f"{ex_id}: produced now, missing from the committed examples")
    for ex_id in sorted(committed.keys() & fresh.keys()):
        a, b = committed[ex_id], fresh[ex_id]
        for what in ("route", "status", "headers"):
            if a[what] != b[what]:
                problems.append(f"{ex_id}: {what} {a[what]!r} -> {b[what]!r}")
        opened = a["open"] | b["open"]

        def settled(path: str) -> bool:
            return not any(path.startswith(o + ".") or path.startswith(o + "[]") for o in opened)

        gone = sorted(p for p in a["keys"] - b["keys"] if settled(p))
        new = sorted(p for p in b["keys"] - a["keys"] if settled(p))
        if gone:
            problems.append(f"{ex_id}: keys no longer answered: {gone}")
        if new:
            problems.append(f"{ex_id}: new keys: {new}")
    return problems


# -- the stack ---------------------------------------------------------------------------


def generate(out: Path, log_copy: Path | None = None, keep: bool = False) -> Path:
    devstack.check_setup()
    work = Path(tempfile.mkdtemp(prefix="api-examples-"))
    persist = work / "state"
    print(f"[api-examples] working in {work}", flush=True)
    devstack.apply_migrations(persist)
    sim = devstack.Simulator(work / "simulator.log", markets=SIM_MARKETS, rate=SIM_RATE, seed=SIM_SEED)
    # Both exchanges, as the test session runs them (tests/conftest.py).
    paradex = devstack.Simulator(work / "simulator-paradex.log", markets=3, rate=SIM_RATE, seed=SIM_SEED,
                                 exchange="paradex")
    worker = devstack.WranglerDev(
        work / "wrangler.log", persist_dir=persist,
        vars={"LIGHTER_API_URL": sim.url, "LIGHTER_WS_URL": sim.ws_url, "ADMIN_TOKEN": EXAMPLE_TOKEN,
              "SHARDS": str(SHARDS), "ENABLED_EXCHANGES": "lighter,paradex",
              "PARADEX_API_URL": paradex.url, "PARADEX_WS_URL": paradex.ws_url},
    )

    def sim_control(action: str, **params: Any) -> Any:
        request = urllib.request.Request(sim.url + "/_sim/" + action, data=json.dumps(params).encode(),
                                         method="POST", headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read() or b"null")

    try:
        sim.start()
        paradex.start()
        worker.start()
        print(f"[api-examples] wrangler dev on {worker.url}, simulator on {sim.url}", flush=True)
        examples = collect(worker.url, EXAMPLE_TOKEN, sim_control,
                           log=lambda m: print(f"[api-examples] {m}", flush=True))
        time.sleep(1)  # let the stop's log lines reach the log file
    finally:
        worker.stop()
        sim.stop()
        paradex.stop()
    version = json.loads((ROOT / "node_modules" / "wrangler" / "package.json").read_text())["version"]
    context = (f"{time.strftime('%Y-%m-%d')}, wrangler {version} (`wrangler dev --local`), SHARDS={SHARDS}, "
               f"simulator with {SIM_MARKETS} markets at {SIM_RATE:g} updates/s each (seed {SIM_SEED}); "
               "ENABLED_EXCHANGES=lighter,paradex, Paradex's simulator with 3 perpetuals.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(examples, context))
    print(f"[api-examples] wrote {out} ({len(examples)} examples)", flush=True)
    if log_copy is not None:
        shutil.copy(work / "wrangler.log", log_copy)
        print(f"[api-examples] wrangler output copied to {log_copy}", flush=True)
    if keep:
        print(f"[api-examples] kept {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(ROOT)}")
    ap.add_argument("--log", type=Path, default=None, help="also copy wrangler dev's output here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (state, logs)")
    args = ap.parse_args(argv)
    try:
        generate(args.out.resolve(), args.log, args.keep)
    except (devstack.DevStackError, RuntimeError) as exc:
        print(f"[api-examples] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
