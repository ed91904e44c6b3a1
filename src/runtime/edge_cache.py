"""The Workers Cache API (`caches.default`) for final history pages.

Thin glue: what may be cached and its validators are decided in
tracker/history_cache.py. Entries are keyed by the request's full URL (path and
query string) and stored with every header the answer carries (CORS included),
so a hit is answered as the miss was. `x-cache: hit|miss` says which it was.
Never called for a request on *.workers.dev, where Cloudflare's Cache API does
nothing (`history_cache.edge_cache_off`; the answer says `x-cache: off`).
"""

from __future__ import annotations

import js
from pyodide.ffi import to_js
from workers import Response

from tracker import history_cache


def _headers(headers: dict[str, str]):
    return js.Headers.new(to_js(headers, dict_converter=js.Object.fromEntries))


async def lookup(url: str):
    """The cached JS Response for `url`, or None."""
    hit = await js.caches.default.match(url)
    return hit if hit else None


def answer_hit(hit, if_none_match: str | None) -> Response:
    tag = str(hit.headers.get("etag") or "")
    if tag and history_cache.matches(if_none_match, tag):
        return not_modified(tag, str(hit.headers.get("cache-control")), _public(hit), "hit")
    fresh = js.Response.new(hit.body, hit)  # the cached headers are read-only: copy
    fresh.headers.set("x-cache", "hit")
    return Response(fresh)


async def store(url: str, body: str, headers: dict[str, str]) -> None:
    await js.caches.default.put(url, js.Response.new(body, status=200, headers=_headers(headers)))


def not_modified(tag: str, cache_control: str, extra: dict[str, str], how: str) -> Response:
    return Response(None, status=304, headers={"etag": tag, "cache-control": cache_control, "x-cache": how, **extra})


def _public(hit) -> dict[str, str]:
    origin = hit.headers.get("access-control-allow-origin")
    return {"access-control-allow-origin": str(origin)} if origin else {}
