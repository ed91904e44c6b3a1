"""Feed-down alerts: one per incident, raised after the threshold, resolved once."""

from tracker.alerts import IncidentWatch


def test_an_incident_is_raised_once_after_the_threshold_and_resolved_once():
    watch = IncidentWatch(after_ms=60_000)
    assert watch.observe(True, 0) is None
    assert watch.observe(False, 15_000, "socket closed") is None  # down, not long enough yet
    assert watch.observe(False, 60_000, "socket closed") is None
    alert = watch.observe(False, 75_000, "socket closed")
    assert alert is not None and alert.event == "feed_down" and alert.since == 15_000
    # Still down: no second alert for the same incident.
    assert watch.observe(False, 90_000, "socket closed") is None
    assert watch.observe(False, 600_000, "socket closed") is None
    recovered = watch.observe(True, 615_000)
    assert recovered is not None and recovered.event == "feed_recovered" and recovered.since == 15_000
    assert watch.observe(True, 630_000) is None
    assert [a.event for a in watch.unsent] == ["feed_down", "feed_recovered"]


def test_short_outages_raise_nothing():
    watch = IncidentWatch(after_ms=60_000)
    for t in range(0, 300_000, 15_000):
        # down for 45 s, up for 15 s, repeatedly
        assert watch.observe(t % 60_000 == 45_000, t, "flapping") is None
    assert watch.unsent == []


def test_unsent_alerts_stay_until_the_webhook_accepts_them():
    watch = IncidentWatch(after_ms=0)
    alert = watch.observe(False, 1_000, "stale")
    assert watch.unsent == [alert]
    watch.sent(alert)
    assert watch.unsent == []
    payload = alert.payload(shard=1)
    assert payload["event"] == "feed_down" and payload["shard"] == 1
    assert "feed down" in payload["text"] and "stale" in payload["text"]
