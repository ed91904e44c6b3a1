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
    # Every subscription is refused for a while after the connection drops: the
    # tracker reconnects at once but carries no book, so the feed stays down.
    outage = ALERT_AFTER_MINUTES * 60 + 30
    simulator.control("refuse_subscriptions", seconds=outage)
    simulator.control("close", code=1012, reason="service restart")

    down = wait_until(
        lambda: [a for a in webhook.since(began) if a["event"] == "feed_down"],
        timeout=outage + 30, interval=1, what="a feed_down alert",
    )
    assert "feed down" in down[0]["text"]
    recovered = wait_until(
        lambda: [a for a in webhook.since(began) if a["event"] == "feed_recovered"],
        timeout=120, interval=1, what="a feed_recovered alert",
    )
    # One alert per shard per incident, never one per alarm.
    worker.wait_json("/api/stats", lambda s: s["validBooks"] == s["markets"], timeout=60)
    time.sleep(16)
    events = webhook.since(began)
    assert {a["shard"] for a in events} == set(range(len(worker.get_json("/api/stats")["shards"])))
    for shard in {a["shard"] for a in events}:
        mine = [a for a in events if a["shard"] == shard]
        assert [a["event"] for a in mine] == ["feed_down", "feed_recovered"], events
        # Both alerts describe the same incident.
        assert mine[0]["since"] == mine[1]["since"]
    assert recovered and down
