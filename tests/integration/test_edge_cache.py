"""Final history from the Workers Cache API under wrangler dev (issue 12).

A page of windows whose explicit `to` ends before the sealed point is answered
with Cache-Control + ETag and stored in `caches.default`; the repeat request is a
hit (`x-cache: hit`) that needs no D1 at all (shown with the D1 file locked), and
If-None-Match gets 304. Live data is never cached. On *.workers.dev, where the
Cache API does nothing, it is not called at all (`x-cache: off`) and the
validators still work (issue 19, item 4).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import wait_until


@pytest.fixture(scope="module")
def tracking(worker):
    r = worker.admin_post("/api/start")
    assert r.status_code == 200, r.text[:300]
    worker.wait_json("/api/snapshots", lambda b: b["count"] > 0, timeout=90)
    return worker


def oldest_window(worker) -> int:
    rows = worker.get_json("/api/snapshots?limit=1000")["snapshots"]
    return min(r["timestamp"] for r in rows)


def test_final_windows_are_cached_validated_and_served_without_d1(tracking):
    worker = tracking
    path = f"/api/snapshots?to={oldest_window(worker)}&limit=50"
    # Final once every shard has flushed well past it: until then it is live data.
    first = wait_until(
        lambda: (r := worker.get(path)).headers.get("x-cache") == "miss" and r,
        timeout=150, interval=2, what=f"{path} to become final",
    )
    assert first.status_code == 200 and first.json()["count"] >= 1
    tag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert first.headers["access-control-allow-origin"] == "*"

    again = worker.get(path)
    assert again.status_code == 200 and again.headers["x-cache"] == "hit"
    assert again.headers["etag"] == tag and again.content == first.content
    assert again.headers["access-control-allow-origin"] == "*"

    not_modified = worker.get(path, headers={"If-None-Match": tag})
    assert not_modified.status_code == 304 and not_modified.headers["etag"] == tag
    assert not_modified.content == b""
    changed = worker.get(path, headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content

    # The hit reads no D1: change the page's rows in the D1 file underneath; the
    # hit still answers the stored bytes while the same page under another URL
    # (not cached yet) shows the change. Then put the rows back as they were.
    to = int(path.split("to=")[1].split("&")[0])
    files = [p for p in Path(worker.persist_dir).glob("v3/d1/miniflare-D1DatabaseObject/*.sqlite")
             if p.name != "metadata.sqlite"]
    con = sqlite3.connect(files[0], timeout=30, isolation_level=None)
    bump = "UPDATE lighter_snapshots SET tick_count = tick_count + ? WHERE timestamp <= ?"
    try:
        con.execute(bump, (1_000_000, to))
        hit = worker.get(path)
        assert hit.status_code == 200 and hit.headers["x-cache"] == "hit" and hit.content == first.content
        fresh = worker.get(path + "&offset=0").json()["snapshots"]
        assert fresh and all(r["tick_count"] >= 1_000_000 for r in fresh)
    finally:
        con.execute(bump, (-1_000_000, to))
        con.close()


def test_live_data_is_never_cached(tracking):
    worker = tracking
    for path in ("/api/stats", "/api/health", "/api/overview", "/api/snapshots", "/api/minutes?limit=5"):
        r = worker.get(path)
        assert r.headers["cache-control"] == "no-store", path
        assert "etag" not in r.headers and r.headers.get("x-cache") in (None, "bypass"), path
    # An explicit `to` in the future: the open window may still change.
    r = worker.get("/api/snapshots?to=253402300799998")
    assert r.headers["cache-control"] == "no-store" and r.headers["x-cache"] == "bypass"


def test_on_workers_dev_the_cache_is_off_and_the_validators_still_work(tracking):
    """Cloudflare's Cache API does nothing on *.workers.dev: a request arriving under such
    a name (wrangler dev takes the URL's host from the Host header) is never looked up
    or stored, says so in x-cache, and keeps ETag/304 for the browser's own cache."""
    worker = tracking
    path = f"/api/snapshots?to={oldest_window(worker)}&limit=7"
    own = wait_until(
        lambda: (r := worker.get(path)).headers.get("x-cache") in ("miss", "hit") and r,
        timeout=150, interval=2, what=f"{path} to become final",
    )
    workers_dev = {"Host": "lighter-orderbook-tracker.someone.workers.dev"}
    for _ in range(2):  # the second time too: nothing was stored for it
        r = worker.get(path, headers=workers_dev)
        assert r.status_code == 200 and r.content == own.content
        assert r.headers["x-cache"].startswith("off") and "workers.dev" in r.headers["x-cache"]
        assert r.headers["etag"] == own.headers["etag"]
        assert r.headers["cache-control"].startswith("public, max-age=")
    not_modified = worker.get(path, headers={**workers_dev, "If-None-Match": own.headers["etag"]})
    assert not_modified.status_code == 304 and not_modified.headers["x-cache"].startswith("off")
