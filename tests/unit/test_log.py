"""runtime/log.py: one console call per line, readable text first, then the fields
Workers Logs indexes ({component, shard, event}); and every log line the tracker
can print has a stable `event` (what DEPLOY.md tells operators to filter on)."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from tracker.exchange import LIGHTER
from tracker.paradex import EXCHANGE as PARADEX


SRC = Path(__file__).resolve().parents[2] / "src"
MAX_SHARD = 63  # SHARDS is at most 64 (tracker/config.py)


@pytest.fixture
def log(monkeypatch):
    """runtime.log imported against fake `js` and `pyodide.ffi`; console calls recorded."""
    calls: list[tuple[str, tuple]] = []

    def method(name):
        return lambda *args: calls.append((name, args))

    js = types.ModuleType("js")
    js.console = types.SimpleNamespace(**{m: method(m) for m in ("debug", "info", "warn", "error", "log")})
    js.Object = types.SimpleNamespace(fromEntries=dict)
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.to_js = lambda value, dict_converter=None: dict(value)
    pyodide.ffi = ffi
    for name, module in {"js": js, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "runtime.log", raising=False)
    import runtime.log as module

    module.calls = calls
    yield module
    sys.modules.pop("runtime.log", None)


def test_one_console_call_text_then_fields(log):
    activity = log.ActivityLog(shard=0)
    activity.info("Lighter", "connected", "connected; subscribing to 6 order books")
    assert log.calls == [(
        "info",
        ("[Lighter] connected; subscribing to 6 order books",
         {"component": "Lighter", "shard": 0, "event": "connected"}),
    )]


def test_shard_prefix_levels_and_unknown_levels(log):
    activity = log.ActivityLog(shard=2)
    activity.warn("Lighter", "connection_lost", "connection lost: socket error; reconnecting in 0.4s")
    activity.error("Aggregator", "flush_failed", "flush of 1 window(s) failed, will retry: D1_ERROR")
    activity("debug", "Lighter", "debug", "something new")
    activity("verbose", "Lighter", "odd", "an unknown level")
    assert [(name, args[0]) for name, args in log.calls] == [
        ("warn", "[Lighter:2] connection lost: socket error; reconnecting in 0.4s"),
        ("error", "[Aggregator:2] flush of 1 window(s) failed, will retry: D1_ERROR"),
        ("debug", "[Lighter:2] something new"),
        ("log", "[Lighter:2] an unknown level"),
    ]
    assert log.calls[1][1][1] == {"component": "Aggregator", "shard": 2, "event": "flush_failed"}


def test_ring_buffer_and_listeners_keep_their_shape(log):
    activity = log.ActivityLog(shard=1, keep=2)
    seen = []
    activity.listeners.append(seen.append)
    for n in range(3):
        activity.info("Aggregator", "flush", f"flushed {n} rows in 1 window(s), 5 ms")
    assert len(activity.recent) == 2 and seen[-1] is activity.recent[-1]
    entry = activity.recent[-1]
    assert set(entry) == {"ts", "level", "component", "shard", "exchange", "message", "event"}
    assert entry["message"] == "flushed 2 rows in 1 window(s), 5 ms" and entry["event"] == "flush"
    assert entry["exchange"] == "lighter"  # a Paradex tracker's log says paradex


def test_a_paradex_trackers_shared_parts_say_so_in_the_prefix(log):
    activity = log.ActivityLog(shard=2, exchange="paradex")
    activity.info("Aggregator", "flush", "flushing 3 symbols")
    activity.info("Paradex", "connected", "connected")
    assert [args[0] for _, args in log.calls[-2:]] == ["[Aggregator@paradex:2] flushing 3 symbols",
                                                       "[Paradex:2] connected"]
    assert log.calls[-1][1][1] == {"component": "Paradex", "shard": 2, "event": "connected"}
    assert activity.recent[-1]["exchange"] == "paradex"


def test_emit_without_a_shard(log):
    log.emit("error", "API", "GET /api/stats failed: boom")
    assert log.calls == [("error", ("[API] GET /api/stats failed: boom", {"component": "API"}))]


def _node_inspect_fits_one_line(fields: dict) -> bool:
    """Node's util.inspect (what wrangler dev and wrangler tail print a logged object
    with) keeps `{ a: 'x', b: 0 }` on one line only while entries + overhead <= 80."""
    entries = [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in fields.items()]
    start = len(entries) + 1 + 10  # output.length + braces[0] + 10 (lib/internal/util/inspect.js)
    return len(entries) + start + sum(len(e) for e in entries) <= 80


def _log_calls():
    """(file, line, component, event) of every tracker log call: `log(level, component,
    event, message)` / `self.log(...)` / `self._log(...)` / `log.info(component, event, message)`."""
    for path in sorted(list((SRC / "tracker").glob("*.py")) + [SRC / "runtime" / "durable_object.py", SRC / "runtime" / "ports.py"]):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            target = func.value.attr if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) else \
                getattr(getattr(func, "value", None), "id", "")
            if name in ("log", "_log") and len(node.args) == 4 and isinstance(node.args[0], ast.Constant):
                component, event = node.args[1], node.args[2]
            elif name in ("info", "warn", "error") and target == "log" and len(node.args) == 3:
                component, event = node.args[0], node.args[1]
            else:
                continue
            yield path.name, node.lineno, component, event


def test_every_tracker_log_line_names_its_event_where_it_is_logged(log):
    """Events are literal names at the call site (a Workers Logs query on `event`
    survives any rewording), and each prints on one line in wrangler tail."""
    calls = list(_log_calls())
    assert len(calls) >= 30, f"found only {len(calls)} log calls: has the logging style changed?"
    # The component is a literal, or the exchange's label (`self.label`: "Lighter" or
    # "Paradex") in the parts shared by both exchanges.
    labels = [exchange.label for exchange in (LIGHTER, PARADEX)]
    bad = [f"{f}:{line}" for f, line, component, event in calls
           if not ((isinstance(component, ast.Constant) or ast.unparse(component) == "self.label")
                   and isinstance(event, ast.Constant) and isinstance(event.value, str) and event.value.isidentifier())]
    assert not bad, "log calls without a literal component and event name: " + ", ".join(bad)
    for _, _, component, event in calls:
        for value in [component.value] if isinstance(component, ast.Constant) else labels:
            fields = log.fields(value, MAX_SHARD, event.value)
            assert _node_inspect_fits_one_line(fields), f"{fields} would break over several lines"
