"""Feed-down alerts reach a webhook once per incident, and once more on recovery."""

from __future__ import annotations

import time

import pytest

from conftest import ALERT_AFTER_MINUTES, wait_until

pytestmark = pytest.mark.timeout(300)


def test_a_long_outage_posts_one_alert_and_one_recovery(worker, simulator, webhook):
    assert worker.admin_post("/api/start").status_code == 200
    worker.wait_json("/api/stats", lambda s: s["connected"] and s["validBooks"] == s["markets"], timeout=90)
    began = time.time()
    # Every subscription is refused after the connection drops: the tracker reconnects
    # at once but carries no book, so the feed stays down until the refusals end, which
    # is when the feed_down alert has come (the outage lasts as long as the alert takes,
    # not a fixed time).
    simulator.control("refuse_subscriptions", seconds=ALERT_AFTER_MINUTES * 60 + 120)
    simulator.control("close", code=1012, reason="service restart")

    down = wait_until(
        lambda: [a for a in webhook.since(began) if a["event"] == "feed_down"],
        timeout=ALERT_AFTER_MINUTES * 60 + 60, interval=1, what="a feed_down alert",
    )
    assert "feed down" in down[0]["text"]
    shards = len(worker.get_json("/api/stats")["shards"])
    wait_until(lambda: {a["shard"] for a in webhook.since(began) if a["event"] == "feed_down"} == set(range(shards)),
               timeout=30, interval=1, what="a feed_down alert from every shard")
    simulator.control("reset")  # the refusals end: the next retry subscribes
    recovered = wait_until(
        lambda: {a["shard"] for a in webhook.since(began) if a["event"] == "feed_recovered"} == set(range(shards)),
        timeout=120, interval=1, what="a feed_recovered alert from every shard",
    )
    # One alert per shard per incident, never one per alarm: alarms go on (every shard
    # flushes one more window, at an alarm that also runs the alert check) and post
    # nothing more.
    live = worker.wait_json("/api/stats", lambda s: s["validBooks"] == s["markets"], timeout=60)
    flushed = {x["shard"]: x["windowsFlushed"] for x in live["shards"]}
    worker.wait_json("/api/stats", lambda s: all(x["windowsFlushed"] >= flushed[x["shard"]] + 1 for x in s["shards"]),
                     timeout=60)
    events = webhook.since(began)
    assert {a["shard"] for a in events} == set(range(shards))
    for shard in range(shards):
        mine = [a for a in events if a["shard"] == shard]
        assert [a["event"] for a in mine] == ["feed_down", "feed_recovered"], events
        # Both alerts describe the same incident.
        assert mine[0]["since"] == mine[1]["since"]
    assert recovered and down
