"""The Workers Cache API (`caches.default`) for final history pages.

Thin glue: what may be cached, its validators and how a hit is answered are decided
in tracker/history_cache.py and tracker/routes.py. Entries are keyed by the request's
full URL (path and query string) and stored with every header the answer carries
(CORS included), so a hit is answered as the miss was. Never called for a request on
*.workers.dev, where Cloudflare's Cache API does nothing
(`history_cache.edge_cache_off`; the answer says `x-cache: off`).
"""

from __future__ import annotations

import js
from pyodide.ffi import to_js

from tracker.routes import CachedPage


def _headers(headers: dict[str, str]):
    return js.Headers.new(to_js(headers, dict_converter=js.Object.fromEntries))


async def lookup(url: str) -> CachedPage | None:
    """The cached page for `url`: its headers, and its body as the runtime's stream
    (passed on without being read into Python)."""
    hit = await js.caches.default.match(url)
    if not hit:
        return None
    headers = {str(entry[0]).lower(): str(entry[1]) for entry in hit.headers.entries()}
    return CachedPage(headers, hit.body)


async def store(url: str, body: str, headers: dict[str, str]) -> None:
    await js.caches.default.put(url, js.Response.new(body, status=200, headers=_headers(headers)))
