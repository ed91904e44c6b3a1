"""runtime/log.py: one console call per line, readable text first, then the fields
Workers Logs indexes ({component, shard, event}); and every log line the tracker
can print has a stable `event` (what DEPLOY.md tells operators to filter on)."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from tracker.alerts import Alert

SRC = Path(__file__).resolve().parents[2] / "src"
# Files whose log lines DEPLOY.md describes: the tracker object, its session, the feed.
LOGGING_FILES = ("runtime/durable_object.py", "runtime/session.py", "tracker/feed.py")
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
    activity.info("Lighter", "connected; subscribing to 6 order books")
    assert log.calls == [(
        "info",
        ("[Lighter] connected; subscribing to 6 order books",
         {"component": "Lighter", "shard": 0, "event": "connected"}),
    )]


def test_shard_prefix_levels_and_unknown_messages(log):
    activity = log.ActivityLog(shard=2)
    activity.warn("Lighter", "connection lost: socket error; reconnecting in 0.4s")
    activity.error("Aggregator", "flush of 1 window(s) failed, will retry: D1_ERROR")
    activity("debug", "Lighter", "something new")
    activity("verbose", "Lighter", "an unknown level")
    assert [(name, args[0]) for name, args in log.calls] == [
        ("warn", "[Lighter:2] connection lost: socket error; reconnecting in 0.4s"),
        ("error", "[Aggregator:2] flush of 1 window(s) failed, will retry: D1_ERROR"),
        ("debug", "[Lighter:2] something new"),
        ("log", "[Lighter:2] an unknown level"),
    ]
    assert log.calls[1][1][1] == {"component": "Aggregator", "shard": 2, "event": "flush_failed"}
    assert "event" not in log.calls[2][1][1]  # no pattern: no event, still a line


def test_ring_buffer_and_listeners_keep_their_shape(log):
    activity = log.ActivityLog(shard=1, keep=2)
    seen = []
    activity.listeners.append(seen.append)
    for n in range(3):
        activity.info("Aggregator", f"flushing {n} symbols: {n} rows in 1 window(s), 5 ms")
    assert len(activity.recent) == 2 and seen[-1] is activity.recent[-1]
    entry = activity.recent[-1]
    assert set(entry) == {"ts", "level", "component", "shard", "message", "event"}
    assert entry["message"] == "flushing 2 symbols: 2 rows in 1 window(s), 5 ms" and entry["event"] == "flush"


def test_emit_without_a_shard(log):
    log.emit("error", "API", "GET /api/stats failed: boom")
    assert log.calls == [("error", ("[API] GET /api/stats failed: boom", {"component": "API"}))]


def _node_inspect_fits_one_line(fields: dict) -> bool:
    """Node's util.inspect (what wrangler dev and wrangler tail print a logged object
    with) keeps `{ a: 'x', b: 0 }` on one line only while entries + overhead <= 80."""
    entries = [f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in fields.items()]
    start = len(entries) + 1 + 10  # output.length + braces[0] + 10 (lib/internal/util/inspect.js)
    return len(entries) + start + sum(len(e) for e in entries) <= 80


def test_every_event_prints_on_one_line(log):
    for component, _, event in log.EVENTS:
        fields = log.fields(component, MAX_SHARD, event)
        assert _node_inspect_fits_one_line(fields), f"{fields} would break over several lines"


def _log_calls(path: Path):
    """(component, message template) of every log call with literal arguments."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        args = node.args
        if name == "_log" and len(args) == 3:
            component, message = args[1], args[2]
        elif name in ("info", "warn", "error") and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "log" and len(args) == 2:
            component, message = args
        else:
            continue
        if not isinstance(component, ast.Constant):
            continue
        if isinstance(message, ast.Constant):
            yield component.value, message.value, node.lineno
        elif isinstance(message, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "0" for v in message.values)
            yield component.value, text, node.lineno


def test_every_tracker_log_line_has_an_event(log):
    """A new log line in the tracker needs an entry in runtime/log.py EVENTS (and,
    if an operator should act on it, a line in DEPLOY.md's troubleshooting)."""
    seen = 0
    missing = []
    for rel in LOGGING_FILES:
        for component, message, line in _log_calls(SRC / rel):
            seen += 1
            if log.event_of(component, message) is None:
                missing.append(f"{rel}:{line} [{component}] {message}")
    assert seen >= 25, f"found only {seen} log calls: has the logging style changed?"
    assert not missing, "log lines without an event in runtime/log.py EVENTS:\n" + "\n".join(missing)


def test_alert_lines_have_events(log):
    down = Alert("feed_down", 0, 60_000, "socket error").payload(0)["text"]
    up = Alert("feed_recovered", 0, 90_000, "").payload(0)["text"]
    assert log.event_of("Alert", down) == "feed_down"
    assert log.event_of("Alert", up) == "feed_recovered"
    assert log.event_of("Alert", "feed_down posted to the webhook") == "alert_posted"
    assert log.event_of("Alert", "webhook post failed, will retry: HTTP 500") == "alert_post_failed"
