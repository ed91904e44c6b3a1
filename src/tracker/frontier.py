"""A shard's tracking_stats row goes to D1 only when what others read from it moved.

Other shards read a shard's frontier from its stats row before rolling minutes and
pruning windows, and the API reads how far its history is final; D1 bills every
rewrite of the row, and an alarm between windows moves nothing. So a batch (a
flush's, the prune's) carries the row only when its frontier (`frontier_of`)
differs from the last one sent. A batch that fails, or a row whose fate is not
known, is forgotten (`forget`): the next batch carries the row again.
"""

from __future__ import annotations

from .sql import STATS_COLUMNS


def frontier_of(statement: tuple, alone: bool = False) -> tuple:
    """What other shards and the API read from a stats row (an upsert statement and
    its values): (is_tracking, outbox_windows, flushed_until, sealed_until,
    written_until). `alone` (the run's SHARDS is 1): no other shard of the run waits
    on this one's windows, so the flush frontier (`flushed_until`, `written_until`,
    which move at every flush) is left out and the row goes when tracking starts or
    stops, the outbox fills or empties, or a minute is rolled (`sealed_until`, what
    the API's final history reads): about once a minute instead of every window. A
    shard of an earlier, larger split still draining reads a frontier up to a minute
    old: it only rolls later, never wrong (the frontiers are lower bounds). Issue 19:
    the stats row cost a one-market deployment 1.25 rows written a window, more than
    half its market's."""
    row = dict(zip(STATS_COLUMNS, statement[1]))
    names = ("is_tracking", "outbox_windows", "sealed_until") if alone else (
        "is_tracking", "outbox_windows", "flushed_until", "sealed_until", "written_until")
    return tuple(row[c] for c in names)


class StatsFrontier:
    def __init__(self) -> None:
        self.sent: tuple | None = None  # what the last row sent reported (None: unknown)

    def rows(self, statement: tuple, alone: bool) -> list[tuple]:
        """The row for a batch, if its frontier moved since the last one sent (then it
        counts as sent from here on)."""
        frontier = frontier_of(statement, alone)
        if frontier == self.sent:
            return []
        self.sent = frontier
        return [statement]

    def forget(self) -> None:
        """What D1 holds is not known (a batch failed, or one not counted here went)."""
        self.sent = None

    def landed(self, statement: tuple) -> None:
        """D1 holds this row (sent on its own, not through `rows`)."""
        self.sent = frontier_of(statement)
