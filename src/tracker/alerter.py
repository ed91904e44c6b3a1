"""Posting feed-down alerts to ALERT_WEBHOOK_URL: one post per incident, one on
recovery, retried at the next alarm until the webhook accepts it.

The decision (is an incident open?) is `alerts.IncidentWatch`; this part only
delivers. Never raises: a failed post is logged and kept for the next alarm.
"""

from __future__ import annotations

from .alerts import IncidentWatch
from .ports import Http, Log


class Alerter:
    def __init__(self, after_ms: int, url: str | None, http: Http, log: Log, shard: int, service: str,
                 exchange: str = "Lighter") -> None:
        self.exchange = exchange  # the exchange's label: "Paradex feed down ..."
        self.watch = IncidentWatch(after_ms)
        self.service = service  # ALERT_SERVICE_NAME: staging's alerts say staging
        self.url = url
        self.http = http
        self.log = log
        self.shard = shard

    async def observe(self, healthy: bool, now: int, reason: str) -> None:
        raised = self.watch.observe(healthy, now, reason)
        if raised is not None:
            text = raised.payload(self.shard, self.service, self.exchange)["text"]
            if raised.event == "feed_down":
                self.log("warn", "Alert", "feed_down", text)
            else:
                self.log("info", "Alert", "feed_recovered", text)
        if not self.url:
            self.watch.unsent.clear()
            return
        for alert in list(self.watch.unsent):
            try:
                status = await self.http.post_json(self.url, alert.payload(self.shard, self.service, self.exchange))
                if not 200 <= status < 300:
                    raise RuntimeError(f"HTTP {status}")
            except Exception as exc:
                self.log("warn", "Alert", "alert_post_failed", f"webhook post failed, will retry: {exc}")
                return
            self.watch.sent(alert)
            self.log("info", "Alert", "alert_posted", f"{alert.event} posted to the webhook")
