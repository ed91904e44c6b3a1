"""The stats row's frontier: a batch carries the row only when what others read from it
moved; alone (SHARDS=1) the flush frontier does not count; a forgotten frontier sends again."""

from __future__ import annotations

from tracker.frontier import StatsFrontier, frontier_of
from tracker.sql import STATS_COLUMNS


def statement(**values) -> tuple:
    row = {c: 0 for c in STATS_COLUMNS}
    row.update(is_tracking=1, flushed_until=15_000, written_until=15_000, sealed_until=0, updated_at=1)
    row.update(values)
    return ("UPSERT", tuple(row[c] for c in STATS_COLUMNS))


def test_the_frontier_is_what_others_read_and_nothing_else():
    s = statement(outbox_windows=2, sealed_until=60_000, messages_received=99)
    assert frontier_of(s) == (1, 2, 15_000, 60_000, 15_000)
    assert frontier_of(s, alone=True) == (1, 2, 60_000)


def test_a_row_goes_only_when_its_frontier_moved():
    frontier = StatsFrontier()
    first = statement()
    assert frontier.rows(first, alone=False) == [first]
    # counters and the write time moved, the frontier did not: no row
    assert frontier.rows(statement(messages_received=500, updated_at=2), alone=False) == []
    moved = statement(flushed_until=30_000, written_until=30_000)
    assert frontier.rows(moved, alone=False) == [moved]


def test_alone_a_flush_moves_nothing_but_a_rolled_minute_or_a_stop_does():
    frontier = StatsFrontier()
    assert frontier.rows(statement(), alone=True)
    assert frontier.rows(statement(flushed_until=30_000, written_until=30_000), alone=True) == []
    assert frontier.rows(statement(sealed_until=60_000), alone=True)
    assert frontier.rows(statement(sealed_until=60_000, is_tracking=0), alone=True)


def test_a_forgotten_frontier_sends_the_same_row_again():
    frontier = StatsFrontier()
    row = statement()
    frontier.rows(row, alone=False)
    frontier.forget()  # the batch that carried it failed
    assert frontier.rows(row, alone=False) == [row]


def test_a_row_sent_on_its_own_counts_once_it_landed():
    frontier = StatsFrontier()
    row = statement()
    frontier.landed(row)
    assert frontier.rows(row, alone=False) == []
    # landed is the full frontier: alone, the shorter one differs and the row goes once more
    assert frontier.rows(row, alone=True) == [row]
