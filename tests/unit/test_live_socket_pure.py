"""The live socket's pure parts: the Origin check and the shards' batching log relay."""

from __future__ import annotations

import asyncio
import json
import sys
import types

import pytest

from tracker.validation import ValidationError, check_origin

URL = "https://tracker.example.com/ws"


def test_the_dashboards_own_origin_is_allowed():
    check_origin("https://tracker.example.com", URL, ())
    check_origin("HTTPS://Tracker.Example.com/", URL, ())
    check_origin("http://127.0.0.1:8787", "http://127.0.0.1:8787/ws", ())


@pytest.mark.parametrize("origin", [
    "https://evil.example", "http://tracker.example.com", "https://tracker.example.com:444",
    "https://tracker.example.com.evil.example", "null", "", None,
])
def test_any_other_origin_is_403(origin):
    with pytest.raises(ValidationError) as refused:
        check_origin(origin, URL, ())
    assert refused.value.status == 403


def test_allowed_origins_are_accepted():
    check_origin("https://ops.example.org", URL, ("https://ops.example.org",))
    with pytest.raises(ValidationError):
        check_origin("https://other.example.org", URL, ("https://ops.example.org",))


@pytest.fixture
def relay_module(monkeypatch):
    """runtime.hub_client against a fake `js` (its warnings go to `logged`)."""
    logged: list[str] = []
    js = types.ModuleType("js")
    js.console = types.SimpleNamespace(**{lvl: (lambda text, *_: logged.append(text)) for lvl in
                                          ("debug", "info", "warn", "error", "log")})
    js.Object = types.SimpleNamespace(fromEntries=dict)
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.to_js = lambda x, **_: x
    pyodide.ffi = ffi
    for name, module in {"js": js, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        monkeypatch.delitem(sys.modules, name)
    import runtime.hub_client as module

    module.logged = logged
    yield module
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        del sys.modules[name]


def entry(i: int) -> dict:
    return {"ts": i, "level": "info", "component": "Lighter", "shard": 1, "message": f"line {i}"}


def test_lines_logged_together_travel_as_one_batch(relay_module):
    sent: list[list[dict]] = []

    async def send(text):
        sent.append(json.loads(text))

    async def scenario():
        relay = relay_module.LogRelay(send, shard=1)
        for i in range(5):
            relay(entry(i))
        await relay._flushing
        relay(entry(5))
        await relay._flushing

    asyncio.run(scenario())
    assert [[e["ts"] for e in batch] for batch in sent] == [[0, 1, 2, 3, 4], [5]]


def test_a_failed_flush_is_logged_and_its_lines_are_sent_with_the_next(relay_module):
    sent: list[list[dict]] = []
    fail = [True]

    async def send(text):
        if fail[0]:
            raise RuntimeError("hub unreachable")
        sent.append(json.loads(text))

    async def scenario():
        relay = relay_module.LogRelay(send, shard=1)
        relay(entry(0))
        relay(entry(1))
        await relay._flushing
        assert relay.failures == 1 and len(relay.buffer) == 2
        fail[0] = False
        relay(entry(2))
        await relay._flushing

    asyncio.run(scenario())
    assert [[e["ts"] for e in batch] for batch in sent] == [[0, 1, 2]]
    assert any("log relay to the dashboard hub failed (2 lines kept" in line for line in relay_module.logged)


def test_the_buffer_is_bounded_and_drops_are_reported(relay_module):
    sent: list[list[dict]] = []
    fail = [True]

    async def send(text):
        if fail[0]:
            raise RuntimeError("hub unreachable")
        sent.append(json.loads(text))

    async def scenario():
        relay = relay_module.LogRelay(send, shard=1)
        relay(entry(0))
        await relay._flushing
        for i in range(1, relay_module.MAX_BUFFERED + 10):
            relay(entry(i))  # the failed flush ended: each line starts a new one, which fails too
            await relay._flushing
        assert len(relay.buffer) == relay_module.MAX_BUFFERED and relay.dropped == 10
        fail[0] = False
        relay(entry(10_000))
        await relay._flushing

    asyncio.run(scenario())
    (batch,) = sent  # the newest MAX_BUFFERED lines, after a note counting the 11 dropped
    assert batch[0]["relayNote"] and "11 log lines were not relayed" in batch[0]["message"]
    assert len(batch) == 1 + relay_module.MAX_BUFFERED
