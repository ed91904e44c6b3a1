"""When to reconnect: exponential backoff with jitter, and a stale-feed watchdog."""

from __future__ import annotations

import random


class Backoff:
    """Delays of base * 2^n capped at `cap_ms`, each drawn uniformly from its upper
    half ("equal jitter"), so many trackers that lost the feed together do not
    all come back in the same millisecond."""

    def __init__(self, base_ms: int = 500, cap_ms: int = 60_000, rng: random.Random | None = None) -> None:
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay_ms(self) -> int:
        ceiling = min(self.cap_ms, self.base_ms * 2 ** min(self.attempts, 20))
        self.attempts += 1
        return int(ceiling / 2 + self._rng.random() * ceiling / 2)

    def reset(self) -> None:
        self.attempts = 0


class FeedWatchdog:
    """Declares the feed stale when the message count has not moved for `stale_ms`.

    It is checked from the alarm with the alarm's clock, so the hot path never
    reads the clock: it only bumps a counter.
    """

    def __init__(self, stale_ms: int) -> None:
        self.stale_ms = stale_ms
        self._count = -1
        self._since = 0

    def reset(self, message_count: int, now_ms: int) -> None:
        self._count = message_count
        self._since = now_ms

    def is_stale(self, message_count: int, now_ms: int) -> bool:
        if message_count != self._count:
            self._count = message_count
            self._since = now_ms
            return False
        return now_ms - self._since >= self.stale_ms

    def deadline(self) -> int:
        """When the feed turns stale if no message arrives before."""
        return self._since + self.stale_ms

    def silent_for_ms(self, now_ms: int) -> int:
        return max(0, now_ms - self._since)
