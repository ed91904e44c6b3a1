"""Fault state set through POST /_sim/<action> and read by the engine and REST."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RefuseRule:
    remaining: Optional[int]  # subscribes still to refuse (None: until `until`)
    until: Optional[float]  # monotonic deadline (None: by count only)
    conn: Optional[int]  # only this connection (None: all)

    def active(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


@dataclass
class Faults:
    refuse: list[RefuseRule] = field(default_factory=list)
    rest_fail_status: int = 0
    rest_fail_remaining: int = 0
    rest_delay_seconds: float = 0.0
    rest_delay_remaining: int = 0
    counts: Counter = field(default_factory=Counter)  # fault kind -> times injected

    def take_refusal(self, conn_id: int) -> bool:
        """True if this subscribe must be answered with 30012 (consumes a count)."""
        now = time.monotonic()
        self.refuse = [r for r in self.refuse if r.active(now)]
        for r in self.refuse:
            if r.conn is None or r.conn == conn_id:
                if r.remaining is not None:
                    r.remaining -= 1
                self.counts["refuse_subscriptions"] += 1
                return True
        return False

    def take_rest(self) -> tuple[int, float]:
        """(status to fail with or 0, seconds to delay) for the next REST answer."""
        status, delay = 0, 0.0
        if self.rest_delay_remaining > 0:
            self.rest_delay_remaining -= 1
            delay = self.rest_delay_seconds
            self.counts["rest_delay"] += 1
        if self.rest_fail_remaining > 0:
            self.rest_fail_remaining -= 1
            status = self.rest_fail_status
            self.counts["rest_fail"] += 1
        return status, delay

    def reset(self) -> None:
        self.refuse.clear()
        self.rest_fail_status = self.rest_fail_remaining = 0
        self.rest_delay_seconds, self.rest_delay_remaining = 0.0, 0
