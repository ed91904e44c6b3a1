"""Private reads (READ_TOKEN, issue 19 item 6), the parts that run without wrangler:
the page's token carrier for the live socket (token.js under node), read back by the
Worker (tracker/validation.py), and the hub naming the page's protocol back in the
handshake (a browser fails a handshake that names none of the protocols it offered).
The routes themselves: tests/unit/test_api_dispatch.py; the real thing, browser
included: tests/integration/test_private_reads.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import devstack
from tracker.validation import LIVE_PROTOCOL, token_from_protocols

ROOT = Path(__file__).resolve().parents[2]
TOKEN_JS = ROOT / "frontend" / "static" / "js" / "token.js"


def run_js(body: str):
    script = (
        f"import * as T from {json.dumps(TOKEN_JS.as_uri())};\n"
        f"const out = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    done = subprocess.run([devstack.node_executable(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


TOKENS = ["read-me", "a/b+c=d?e&f", "ünïcødé tøkén", "0" * 300]


def test_the_page_carries_any_token_in_a_valid_subprotocol_that_the_worker_reads_back():
    offered = run_js(f"return {json.dumps(TOKENS)}.map((t) => T.liveProtocols(t));")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~")
    for token, protocols in zip(TOKENS, offered):
        assert protocols[0] == LIVE_PROTOCOL
        # RFC 6455: each subprotocol is an HTTP token, or the browser refuses to open the socket.
        assert all(set(p) <= allowed for p in protocols), protocols
        assert token_from_protocols(", ".join(protocols)) == token
    assert run_js("return [T.liveProtocols(''), T.liveProtocols(null)];") == [[], []]


class FakePair:
    def __init__(self):
        self.client, self.server = object(), types.SimpleNamespace(sent=[], send=lambda text: None,
                                                                   accept=lambda: None, close=lambda *a: None)

    def object_values(self):
        return self.client, self.server


@pytest.fixture
def hub(monkeypatch):
    from test_dashboard_exchange import FakeCtx

    js = types.ModuleType("js")
    js.console = types.SimpleNamespace(**{lvl: (lambda *_: None) for lvl in ("debug", "info", "warn", "error", "log")})
    js.Object = types.SimpleNamespace(fromEntries=dict)
    js.WebSocketPair = types.SimpleNamespace(new=FakePair)
    workers = types.ModuleType("workers")

    class DurableObject:
        def __init__(self, ctx, env):
            self.ctx, self.env = ctx, env

    workers.DurableObject = DurableObject
    workers.Response = lambda body=None, status=200, headers=None, web_socket=None: types.SimpleNamespace(
        status=status, headers=headers or {}, web_socket=web_socket)
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.to_js = lambda x, **_: x
    pyodide.ffi = ffi
    for name, module in {"js": js, "workers": workers, "pyodide": pyodide, "pyodide.ffi": ffi}.items():
        monkeypatch.setitem(sys.modules, name, module)
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        monkeypatch.delitem(sys.modules, name)
    import runtime.dashboard_hub as module

    ctx = FakeCtx([])
    ctx.acceptWebSocket = lambda ws: None
    instance = module.DashboardHub(ctx, types.SimpleNamespace())

    async def no_stats():
        return {}

    instance._latest_stats = no_stats
    yield instance
    for name in [m for m in sys.modules if m == "runtime" or m.startswith("runtime.")]:
        del sys.modules[name]


def test_the_hub_names_the_pages_protocol_back_and_never_the_token(hub):
    answer = asyncio.run(hub._accept(f"{LIVE_PROTOCOL}, bearer.cmVhZC1tZQ"))
    assert answer.status == 101 and answer.headers == {"sec-websocket-protocol": LIVE_PROTOCOL}
    # A page of a public deployment offers nothing: nothing is named back (as before).
    plain = asyncio.run(hub._accept(None))
    assert plain.status == 101 and plain.headers == {}
