"""The d1 lane's work (Flusher): a backlog drains a few batches an alarm, the counters and
the newest flush are kept, the stats row goes only when it moved; a batch D1 refuses stays
in the outbox, is counted and said, the rollup waits; a failed rollup is counted too.
The outbox is the real one over a small storage; D1 and the rollup are small fakes that
record what they were asked."""

from __future__ import annotations

import asyncio

from tracker.aggregator import ClosedWindow
from tracker.flush import BATCHES_PER_ALARM, Flusher
from tracker.frontier import StatsFrontier
from tracker.outbox import FLUSH_WINDOWS, Outbox
from tracker.sql import STATS_COLUMNS
from tracker.state import TrackerState

from memory_storage import MemoryStorage

W = 15_000


class Row:
    def values(self) -> tuple:
        return ("ETH", 1, 0)


class D1:
    def __init__(self) -> None:
        self.down = False
        self.batches: list[list[str]] = []  # each batch's statements

    async def batch(self, statements):
        if self.down:
            raise OSError("D1_ERROR: overloaded")
        self.batches.append([s for s, _ in statements])
        return [{"rows_written": 2} for _ in statements]


class Rollup:
    def __init__(self) -> None:
        self.runs: list[bool] = []
        self.fails = False

    async def run(self, final: bool) -> None:
        self.runs.append(final)
        if self.fails:
            raise OSError("D1_ERROR: rollup query timed out")


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000_000

    def now_ms(self) -> int:
        self.now += 7  # each reading a little later: a batch takes time
        return self.now


class Shard:
    def __init__(self, windows: int) -> None:
        self.storage, self.db, self.rollup, self.clock = MemoryStorage(), D1(), Rollup(), Clock()
        self.outbox = Outbox(self.storage, max_windows=1_000)
        self.state = TrackerState(tracking=True)
        self.logged: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.saves = 0
        self.frontier = StatsFrontier()
        self.flusher = Flusher(self.outbox, self.db, self.clock, self.log, self.frontier, self.stats_rows,
                               self.save, self.errors.append)
        asyncio.run(self.outbox.add([ClosedWindow(i * W, [Row(), Row()]) for i in range(windows)],
                                    lambda dropped: {}))

    def log(self, level, component, event, message) -> None:
        self.logged.append((event, message))

    def stats_rows(self, now: int, remaining) -> list[tuple]:
        row = {c: 0 for c in STATS_COLUMNS}
        row.update(outbox_windows=len(remaining), is_tracking=int(self.state.tracking))
        return self.frontier.rows(("UPSERT_STATS", tuple(row[c] for c in STATS_COLUMNS)), alone=True)

    async def save(self) -> None:
        self.saves += 1

    def flush(self, final: bool = False) -> None:
        asyncio.run(self.flusher.run(self.state, self.rollup, final))


def test_a_backlog_drains_a_few_batches_an_alarm_then_rolls_up():
    shard = Shard(windows=FLUSH_WINDOWS * BATCHES_PER_ALARM + 3)
    shard.flush()
    assert len(shard.db.batches) == BATCHES_PER_ALARM and shard.outbox.windows == 3
    assert shard.state.totals.windows_flushed == FLUSH_WINDOWS * BATCHES_PER_ALARM
    assert shard.state.totals.rows_written == 2 * FLUSH_WINDOWS * BATCHES_PER_ALARM  # D1's count, windows only
    assert shard.rollup.runs == [False] and shard.saves == 1
    assert shard.flusher.last_flush["windows"] == FLUSH_WINDOWS and shard.flusher.last_flush["rows"] == 2 * FLUSH_WINDOWS
    # the stats row went with the batches whose outbox count moved (every one here)
    assert all(batch[-1] == "UPSERT_STATS" for batch in shard.db.batches)
    shard.flush(final=True)
    assert shard.outbox.windows == 0 and shard.rollup.runs == [False, True]
    assert [e for e, _ in shard.logged] == ["flush"] * (BATCHES_PER_ALARM + 1)


def test_a_refused_batch_stays_is_counted_and_said_and_the_rollup_waits():
    shard = Shard(windows=2)
    shard.flush()  # the stats row went with it
    asyncio.run(shard.outbox.add([ClosedWindow(10 * W, [Row()])], lambda dropped: {}))
    shard.db.down = True
    shard.flush()
    assert shard.outbox.windows == 1 and shard.state.totals.flush_failures == 1
    assert shard.errors == ["D1 flush: OSError: D1_ERROR: overloaded"]
    assert shard.logged[-1] == ("flush_failed", "flush of 1 window(s) failed, will retry: OSError: D1_ERROR: overloaded")
    assert shard.rollup.runs == [False] and shard.saves == 2  # the counters saved, no rollup
    assert shard.frontier.sent is None  # the row that batch carried is not in D1: it goes again
    shard.db.down = False
    shard.flush()
    assert shard.outbox.windows == 0 and shard.db.batches[-1][-1] == "UPSERT_STATS"
    assert shard.rollup.runs == [False, False]


def test_a_stopped_shards_stats_row_counts_as_published_once_a_batch_lands():
    shard = Shard(windows=0)
    shard.state.tracking, shard.state.stats_unpublished = False, True
    shard.db.down = True
    shard.flush(final=True)
    assert shard.state.stats_unpublished
    shard.db.down = False
    shard.flush(final=True)
    assert not shard.state.stats_unpublished and shard.db.batches == [["UPSERT_STATS"]]


def test_a_failed_rollup_is_counted_and_said_and_the_state_still_saved():
    shard = Shard(windows=1)
    shard.rollup.fails = True
    shard.flush()
    assert shard.outbox.windows == 0 and shard.state.totals.flush_failures == 1
    assert shard.errors == ["D1 rollup: D1_ERROR: rollup query timed out"]
    assert shard.logged[-1][0] == "rollup_failed" and shard.saves == 1
    assert shard.frontier.sent is None
