"""The Worker's routes on the Workers runtime: tracker/routes.py (pure) with the real
D1, tracker shard objects, edge cache, clock and console log plugged in, and its
answers turned into the runtime's Responses.
"""

from __future__ import annotations

import js
from workers import Response

from tracker import routes
from tracker.config import Config
from tracker.routes import Answer, ApiPorts, CachedPage, Request

from . import d1_bulk, edge_cache, shards
from .hub_client import stub as hub_stub
from .log import emit
from .streams import text_stream

DB = "DB"


async def handle(request, env) -> Response:
    ports = ApiPorts(
        config=lambda: _config(env),
        clock=_Clock(),
        db=_Reads(),
        cache=_EdgeCache(),
        shards=lambda exchange, shard, path, method, body=None: shards.call(env, shard, path, method, exchange, body),
        log=_log,
        dashboard=lambda req, config: _dashboard(req, env, config),
        live_socket=lambda req, config: _live_socket(req, env),
    )
    answer = await routes.handle(Request(_method(request), str(request.url), request.headers, request.text,
                                         native=request), ports)
    return _response(answer)


def _response(answer: Answer) -> Response:
    if answer.native is not None:
        return answer.native
    if answer.stream is not None:
        return Response(text_stream(answer.stream, _label(answer)), status=answer.status, headers=answer.headers)
    return Response(answer.body, status=answer.status, headers=answer.headers)


def _label(answer: Answer) -> str:
    return f"export {answer.headers.get('content-disposition', '')}"


def _method(request) -> str:
    # The SDK's `request.method` is an HTTPMethod enum, which raises KeyError on a
    # method it does not list (PROPFIND...): read the JS string instead.
    js_request = getattr(request, "js_object", request)
    return str(js_request.method).upper()


# Vars and secrets cannot change within an isolate (a deploy or `wrangler secret
# put` starts new ones), and reading them through the SDK's env wrapper costs a
# JS round trip each: read once. A ConfigError is never kept, so it is raised
# (and logged) on every request until the configuration is fixed.
_CONFIG: list[Config] = []


def _config(env) -> Config:
    if not _CONFIG:
        _CONFIG.append(Config.from_env(lambda name: getattr(env, name, None)))
    return _CONFIG[0]


class _Clock:
    def now_ms(self) -> int:
        return int(js.Date.now())


class _Reads:
    async def query(self, sql: str, *params) -> list[dict]:
        return await d1_bulk.query(DB, sql, *params)

    async def query_json(self, sql: str, *params) -> tuple[str, int]:
        return await d1_bulk.query_json(DB, sql, *params)

    async def query_lists(self, sql: str, *params) -> list[list]:
        return await d1_bulk.query_lists(DB, sql, *params)


class _EdgeCache:
    async def lookup(self, url: str) -> CachedPage | None:
        return await edge_cache.lookup(url)

    async def store(self, url: str, body: str, headers: dict[str, str]) -> None:
        await edge_cache.store(url, body, headers)


def _log(level: str, component: str, event: str, message: str) -> None:
    emit(level, component, message, event=event)


async def _dashboard(request: Request, env, config: Config) -> Answer:
    # Imported here, not at the top: the page's module (and Jinja2 behind it)
    # costs the API nothing until someone opens the page.
    from .dashboard import render_dashboard

    return Answer(200, native=await render_dashboard(request.native, env, config))


async def _live_socket(request: Request, env) -> Answer:
    # The DashboardHub object serves every dashboard socket; the Upgrade passes through.
    return Answer(101, native=await hub_stub(env).fetch(request.native))

