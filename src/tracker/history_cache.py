"""When an API answer may be cached at the edge, and its validators. Pure.

History that can no longer change (windows and minutes that end at or before the
sealed point, see `runtime.api.sealed_until`) is answered with `Cache-Control`,
an `ETag`, and kept in the Workers Cache API; a repeat request is served from
there without touching D1. A page is final only when the client bounded it with
an explicit `to` and the last row it could hold (timestamp <= to) ends by the
sealed point: rows ending later may still be written or rewritten. Everything
else (stats, health, the open window, open-ended pages) is `no-store`.

The Workers Cache API only acts on custom domains: on `*.workers.dev` its
operations succeed and do nothing (developers.cloudflare.com/workers/runtime-apis/cache/:
"any Cache API operations in the Cloudflare Workers dashboard editor, Playground
previews, and any *.workers.dev deployments will have no impact"). There the API
makes no cache call at all and says `x-cache: off` (`edge_cache_off`); the
validators still work, so browsers keep their own copy and revalidate with 304s.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from .validation import MAX_TIMESTAMP_MS

# x-cache on a final page where the edge cache cannot act: the word, then why.
EDGE_CACHE_OFF = "off (the Workers Cache API acts only on custom domains, not on *.workers.dev)"


def edge_cache_off(url: str) -> bool:
    """Whether a request to `url` is on a workers.dev address, where the Cache API is a
    no-op. Any other host (a custom domain or route, and wrangler dev's localhost, whose
    local cache works) gets the edge cache."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host == "workers.dev" or host.endswith(".workers.dev")


def may_be_cached(to_ms: int) -> bool:
    """Only a page with an explicit `to` can be final (no `to` means "up to now")."""
    return to_ms < MAX_TIMESTAMP_MS


def is_final(to_ms: int, row_ms: int, sealed_until: int | None) -> bool:
    """Every row with timestamp <= to_ms ends (timestamp + row_ms) by `sealed_until`."""
    return sealed_until is not None and may_be_cached(to_ms) and to_ms + row_ms <= sealed_until


def etag(body: str) -> str:
    """A strong validator of the exact body (the same page always has the same bytes)."""
    return '"' + hashlib.blake2b(body.encode(), digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): `*`, or any listed tag equal to `tag`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = tag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))


def cache_control(max_age_s: int) -> str:
    return f"public, max-age={max_age_s}, immutable"
