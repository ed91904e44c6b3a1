"""The dashboard's exchange switch, its pure parts: the hub's stats push for every
enabled exchange (tracker.shardstats.combine_exchanges, DashboardHub._refresh against
fake runtime modules) and the page's choice of exchange and reading of the stats
(frontend/static/js/exchange.js, run under node)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import devstack
from tracker.config import Config
from tracker.shardstats import combine, combine_exchanges, merge_exchanges

ROOT = Path(__file__).resolve().parents[2]
EXCHANGE_JS = ROOT / "frontend" / "static" / "js" / "exchange.js"


def shard(n: int, messages: int, tracking: bool = True) -> dict:
    return {"shard": n, "isTracking": tracking, "connected": tracking, "messagesReceived": messages, "markets": 3}


# -- the hub's push ------------------------------------------------------------------


def test_merge_puts_the_default_exchange_at_the_top():
    lighter, paradex = {"isTracking": True, "a": 1}, {"isTracking": False, "a": 2}
    merged = merge_exchanges({"paradex": paradex, "lighter": lighter})
    assert merged["exchange"] == "lighter" and merged["a"] == 1 and merged["isTracking"] is True
    assert merged["exchanges"] == {"paradex": paradex, "lighter": lighter}
    only = merge_exchanges({"paradex": paradex})
    assert only["exchange"] == "paradex" and only["a"] == 2 and only["exchanges"] == {"paradex": paradex}
    with pytest.raises(ValueError):
        merge_exchanges({})


def test_combine_exchanges_is_the_api_stats_shape_per_exchange():
    pushed = combine_exchanges({"lighter": [shard(0, 10), shard(1, 5)], "paradex": [shard(0, 7)]})
    assert set(pushed["exchanges"]) == {"lighter", "paradex"}
    assert pushed["exchanges"]["lighter"] == {**combine([shard(0, 10), shard(1, 5)]), "enabled": True}
    assert pushed["exchanges"]["paradex"]["messagesReceived"] == 7
    assert pushed["exchanges"]["paradex"]["enabled"] is True
    # The top level is Lighter's, as before Paradex (old pages keep reading it).
    assert pushed["messagesReceived"] == 15 and len(pushed["shards"]) == 2 and pushed["exchange"] == "lighter"
    json.dumps(pushed)  # goes over the socket as is


class FakeStorage:
    def __init__(self):
        self.alarm = None

    async def getAlarm(self):
        return self.alarm

    async def setAlarm(self, at):
        self.alarm = at


class FakeSocket:
    def __init__(self):
        self.sent: list[dict] = []

    def send(self, text):
        self.sent.append(json.loads(text))


class FakeCtx:
    def __init__(self, sockets):
        self.sockets = sockets
        self.storage = FakeStorage()

    def getWebSockets(self):
        return self.sockets


@pytest.fixture
def hub_module(monkeypatch):
    """runtime.dashboard_hub against fake `js`, `workers` and `pyodide`, forgotten afterwards."""
    js = types.ModuleType("js")
    js.console = types.SimpleNamespace(**{lvl: (lambda *_: None) for lvl in ("debug", "info", "warn", "error", "log")})
    js.Object = types.SimpleNamespace(fromEntries=dict)
    js.WebSocketPair = object
    workers = types.ModuleType("workers")

    class DurableObject:
        def __init__(self, ctx, env):
            self.ctx, self.env = ctx, env

    workers.DurableObject = DurableObject
    workers.Response = object
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.to_js = lambda x, **_: x
    pyodide.ffi = ffi
    for name, module in {"js": js, "workers": workers, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        monkeypatch.delitem(sys.modules, name)
    import runtime.dashboard_hub as module

    yield module
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        del sys.modules[name]


@pytest.mark.parametrize("enabled", ["lighter", "lighter,paradex", "paradex"])
def test_each_push_fetches_each_enabled_exchange_once(hub_module, monkeypatch, enabled):
    calls: list[tuple[str, str]] = []

    async def call_all(env, config, path, method="GET", skip=None, exchange="lighter"):
        calls.append((exchange, path))
        return [shard(0, 100 if exchange == "lighter" else 7)]

    monkeypatch.setattr(hub_module.shards, "call_all", call_all)
    socket = FakeSocket()
    env = types.SimpleNamespace(ENABLED_EXCHANGES=enabled)
    hub = hub_module.DashboardHub(FakeCtx([socket]), env)
    names = enabled.split(",")
    for push in range(1, 3):
        asyncio.run(hub.alarm())
        # ONE stats fetch from each enabled exchange's shards per push, and only those.
        assert sorted(calls) == sorted([(name, "/stats") for name in names] * push)
    message = socket.sent[-1]
    assert message["type"] == "stats" and message["hub"]["statsFetches"] == 2
    stats = message["stats"]
    assert sorted(stats["exchanges"]) == sorted(names)
    assert stats["exchange"] == ("lighter" if "lighter" in names else "paradex")
    assert all(one["enabled"] for one in stats["exchanges"].values())
    if "paradex" in names:
        assert stats["exchanges"]["paradex"]["messagesReceived"] == 7


def test_the_hubs_config_reads_enabled_exchanges():
    assert Config.from_env(lambda name: {"ENABLED_EXCHANGES": "lighter,paradex"}.get(name)).enabled_exchanges == \
        ("lighter", "paradex")


# -- the page's pure logic (exchange.js under node) -------------------------------------


def run_js(body: str):
    """Run `body` (an async function body that returns a JSON-able value) with
    exchange.js imported as `X`; its value, parsed."""
    script = (
        f"import * as X from {json.dumps(EXCHANGE_JS.as_uri())};\n"
        f"const out = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    done = subprocess.run([devstack.node_executable(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_exchange_js_pure_functions():
    out = run_js("""
      const both = ["lighter", "paradex"];
      return {
        parsed: [X.parseExchanges("lighter,paradex"), X.parseExchanges(""), X.parseExchanges(" Paradex , paradex,")],
        choose: [
          X.chooseExchange(both, {}),
          X.chooseExchange(both, { url: "paradex" }),
          X.chooseExchange(both, { url: "PARADEX" }),
          X.chooseExchange(both, { stored: "paradex" }),
          X.chooseExchange(both, { url: "lighter", stored: "paradex" }),
          X.chooseExchange(both, { url: "<img src=x>", stored: "nope", server: "paradex" }),
          X.chooseExchange(["lighter"], { url: "paradex", stored: "paradex" }),
          X.chooseExchange(["paradex"], {}),
        ],
        labels: [X.exchangeLabel("lighter"), X.exchangeLabel("paradex"), X.exchangeLabel("toString"),
                 X.exchangeLabel("<b>")],
        params: [X.exchangeParams("lighter"), X.exchangeParams("paradex"), X.exchangeParams("")],
        url: X.urlForExchange("https://h.example/?symbol=ETH&x=1#top", "paradex"),
        keys: [X.symbolKey("k", "lighter"), X.symbolKey("k", "paradex"), X.symbolKey("k", "")],
        entries: [X.entryExchange({}), X.entryExchange({ exchange: "paradex" }), X.entryExchange({ exchange: 5 }),
                  X.entryExchange(null), X.entryExchange({ exchange: " Paradex " })],
      };
    """)
    assert out["parsed"] == [["lighter", "paradex"], ["lighter"], ["paradex"]]
    assert out["choose"] == ["lighter", "paradex", "paradex", "paradex", "lighter", "paradex", "lighter", "paradex"]
    assert out["labels"] == ["Lighter", "Paradex", "toString", "<b>"]
    assert out["params"] == [{}, {"exchange": "paradex"}, {}]
    assert out["url"] == "https://h.example/?x=1&exchange=paradex#top"
    assert out["keys"] == ["k", "k.paradex", "k"]
    assert out["entries"] == ["lighter", "paradex", "lighter", "lighter", "paradex"]


def test_exchange_js_reads_one_exchanges_stats():
    pushed = combine_exchanges({"lighter": [shard(0, 10)], "paradex": [shard(0, 7, tracking=False)]})
    old_hub = combine([shard(0, 10)])  # a push from before Paradex: one exchange, no `exchanges`
    control_answer = merge_exchanges({"paradex": {"ok": True, "isTracking": True}})  # POST /api/start?exchange=paradex
    out = run_js(f"""
      const pushed = {json.dumps(pushed)};
      const old = {json.dumps(old_hub)};
      const answer = {json.dumps(control_answer)};
      const pick = (s, x) => {{ const one = X.statsFor(s, x); return one === null ? null : one.messagesReceived ?? one.isTracking; }};
      return [
        pick(pushed, "lighter"), pick(pushed, "paradex"), pick(pushed, "kraken"), pick(pushed, "__proto__"),
        pick(old, "lighter"), pick(old, "paradex"),
        pick(answer, "paradex"), pick(answer, "lighter"),
        X.statsFor(null, "lighter"), X.statsFor({{ exchanges: {{ lighter: 5 }} }}, "lighter"),
      ];
    """)
    assert out == [10, 7, None, None, 10, None, True, None, None, None]


def test_the_markets_panel_says_which_markets_are_tracked():
    out = run_js("""
      const lists = { lighter: ["ETH", "BTC"], paradex: [] };
      return [
        X.scopeText("lighter", lists, []),
        X.scopeText("lighter", lists, ["NOPE", "btc"]),
        X.scopeText("paradex", lists, ["X"]),
        X.scopeText("lighter", {}, []),
        X.scopeText("lighter", null, null),
      ];
    """)
    assert out == [
        "Tracking only LIGHTER_MARKETS: ETH, BTC",
        "Tracking only LIGHTER_MARKETS: ETH, BTC · not listed by Lighter, skipped: NOPE, btc",
        "", "", "",
    ]
