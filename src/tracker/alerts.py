"""Feed-down alerts: one notification when an incident opens, one when it ends.

The alarm reports every 15 s whether the feed is healthy. An incident opens once
the feed has been down for `after_ms` without a break, and resolves on the first
healthy report after that. Each incident is posted once (retried until the
webhook accepts it), never once per alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SERVICE_NAME


@dataclass
class Alert:
    event: str  # "feed_down" | "feed_recovered"
    since: int  # ms: when the feed went down
    at: int  # ms: when this alert was raised
    reason: str

    def payload(self, shard: int, service: str = SERVICE_NAME, exchange: str = "Lighter") -> dict:
        # `service` is Config.alert_service_name (ALERT_SERVICE_NAME): staging says staging.
        minutes = (self.at - self.since) / 60_000
        if self.event == "feed_down":
            text = f"{service} shard {shard}: {exchange} feed down for {minutes:.1f} min ({self.reason})"
        else:
            text = f"{service} shard {shard}: {exchange} feed recovered after {minutes:.1f} min"
        # `text` is what Slack/Discord-style webhooks show; the rest is for machines.
        return {"text": text, "content": text, "event": self.event, "shard": shard, "exchange": exchange.lower(),
                "since": self.since, "at": self.at, "reason": self.reason}


class IncidentWatch:
    def __init__(self, after_ms: int) -> None:
        self.after_ms = after_ms
        self.down_since: int | None = None
        self.open = False  # an alert for the current incident has been raised
        self.unsent: list[Alert] = []  # raised but not yet accepted by the webhook

    def observe(self, healthy: bool, now_ms: int, reason: str = "") -> Alert | None:
        if healthy:
            alert = None
            if self.open:
                alert = Alert("feed_recovered", self.down_since or now_ms, now_ms, "")
                self.unsent.append(alert)
            self.down_since = None
            self.open = False
            return alert
        if self.down_since is None:
            self.down_since = now_ms
        if not self.open and now_ms - self.down_since >= self.after_ms:
            self.open = True
            alert = Alert("feed_down", self.down_since, now_ms, reason)
            self.unsent.append(alert)
            return alert
        return None

    def sent(self, alert: Alert) -> None:
        if alert in self.unsent:
            self.unsent.remove(alert)
