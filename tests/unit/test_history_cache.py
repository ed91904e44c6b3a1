"""tracker/history_cache.py: which pages are final, and their validators."""

from __future__ import annotations

from tracker import history_cache
from tracker.validation import MAX_TIMESTAMP_MS

MINUTE = 60_000


def test_a_page_without_to_is_never_final():
    assert not history_cache.may_be_cached(MAX_TIMESTAMP_MS)
    assert not history_cache.is_final(MAX_TIMESTAMP_MS, MINUTE, sealed_until=MAX_TIMESTAMP_MS)


def test_final_only_when_the_last_possible_row_ends_by_the_sealed_point():
    sealed = 10 * MINUTE
    assert history_cache.is_final(9 * MINUTE, MINUTE, sealed)  # the minute [9, 10) ends at 10: final
    assert not history_cache.is_final(9 * MINUTE + 1, MINUTE, sealed)  # a row stamped later may still come
    assert history_cache.is_final(sealed - 15_000, 15_000, sealed)


def test_nothing_is_final_before_any_shard_has_flushed():
    assert not history_cache.is_final(0, MINUTE, None)


def test_etag_is_strong_and_follows_the_bytes():
    a, b = history_cache.etag('{"minutes": []}'), history_cache.etag('{"minutes": [1]}')
    assert a.startswith('"') and a.endswith('"') and a != b
    assert a == history_cache.etag('{"minutes": []}')


def test_if_none_match():
    tag = history_cache.etag("x")
    assert history_cache.matches(tag, tag)
    assert history_cache.matches(f'"other", W/{tag}', tag)
    assert history_cache.matches("*", tag)
    assert not history_cache.matches('"other"', tag)
    assert not history_cache.matches(None, tag)
    assert not history_cache.matches("", tag)


def test_cache_control():
    assert history_cache.cache_control(3600) == "public, max-age=3600, immutable"


def test_the_edge_cache_is_off_on_workers_dev_only():
    """Cloudflare's Cache API does nothing on *.workers.dev (custom domains only)."""
    off = (
        "https://lighter-orderbook-tracker.someone.workers.dev/api/minutes?to=1",
        "https://3f2a9c1e-lighter-orderbook-tracker.someone.workers.dev/api/snapshots",  # a preview URL
        "https://LIGHTER.Someone.Workers.Dev./api/hours",  # case and a trailing dot change nothing
    )
    on = (
        "https://tracker.example.com/api/minutes?to=1",  # a custom domain
        "https://example.com/tracker/api/minutes",  # a route on a zone
        "https://evilworkers.dev/api/minutes",  # not a workers.dev subdomain
        "https://workers.dev.example.com/api/minutes",
        "http://127.0.0.1:8787/api/minutes?to=1",  # wrangler dev: its local cache works
        "http://localhost:8787/api/minutes",
    )
    assert all(history_cache.edge_cache_off(url) for url in off)
    assert not any(history_cache.edge_cache_off(url) for url in on)
    assert history_cache.EDGE_CACHE_OFF.startswith("off ") and "workers.dev" in history_cache.EDGE_CACHE_OFF
