"""The feed socket's breaths under a flat-out burst (issue 18, defect 8): the connection
asks its socket to let the object in every N frames (tracker/connection.py), and while
frames may be queued behind a breath the alarm closes no window they may still fall in
(tracker/feedtime.py close_boundary). The seeded simulation's backlogs (tests/sim,
`with_backlogs`) check the same end to end."""
from __future__ import annotations

from tracker.aggregator import WindowAggregator
from tracker.config import BREATHE_EVERY_FRAMES, Config
from tracker.connection import FeedConnection
from tracker.exchange import LIGHTER
from tracker.feedtime import MAX_BACKLOG_WAIT_MS, close_boundary, queue_start

NOW = 1_780_000_000_000
GRACE = 1_500


class Socket:
    def __init__(self, on_frame) -> None:
        self.open = True
        self.on_frame = on_frame
        self.breaths: list[int] = []  # frames handled when each breath was asked for
        self.handled = 0

    def send(self, text: str) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        self.open = False

    def breathe(self) -> None:
        self.breaths.append(self.handled)


def connection(every: int) -> tuple[FeedConnection, Socket]:
    sockets: list[Socket] = []

    def factory(url, on_frame, on_open, on_down):
        sockets.append(Socket(on_frame))
        return sockets[-1]

    clock = type("Clock", (), {"now_ms": staticmethod(lambda: NOW)})()
    conn = FeedConnection(Config().ws_url, factory, clock, lambda *a: None, LIGHTER.budget(1), 30_000,
                          wake=lambda at: None, on_drop=lambda feed: None, breathe_every=every)
    conn.open([0], WindowAggregator(15_000))
    return conn, sockets[0]


def counting(conn: FeedConnection, socket: Socket, handle=None) -> None:
    """The feed's frame handler counts the frames it handled (on the socket)."""
    real = conn.feed.on_frame

    def on_frame(data):
        socket.handled += 1
        return (handle or real)(data)

    conn.feed.on_frame = on_frame


def burst(socket: Socket, frames: int) -> None:
    for _ in range(frames):
        socket.on_frame('{"type": "junk"}')


def test_a_breath_after_every_nth_frame_handled_and_noted_until_taken():
    conn, socket = connection(every=4)
    counting(conn, socket)
    burst(socket, 10)
    assert socket.breaths == [4, 8]  # after the frame that completes each 4, never before it is handled
    assert conn.take_breathed() is True
    assert conn.take_breathed() is False  # taken: the next close sees a breath only if one comes
    burst(socket, 2)
    assert socket.breaths == [4, 8, 12] and conn.take_breathed() is True


def test_no_breath_when_every_is_zero():
    conn, socket = connection(every=0)
    counting(conn, socket)
    burst(socket, 1_000)
    assert socket.breaths == [] and conn.take_breathed() is False


def test_a_frame_whose_handling_raises_still_counts_towards_the_breath():
    conn, socket = connection(every=3)

    def handle(data):
        if socket.handled == 2:
            raise ValueError("a bug in the feed")
        return False

    counting(conn, socket, handle)
    burst(socket, 6)
    assert conn.frame_errors == 1 and socket.breaths == [3, 6]


def test_production_breathes_every_256_frames():
    assert Config().breathe_every_frames == BREATHE_EVERY_FRAMES == 256


def test_without_a_breath_windows_close_as_before():
    wait = GRACE + 400
    assert close_boundary(NOW, wait, GRACE, False, NOW - 30_000) == NOW - wait
    assert close_boundary(NOW, wait, GRACE, False, None) == NOW - wait


def test_behind_a_breath_windows_wait_for_the_queued_frames():
    """The alarm got in at a breath: the newest frame handled was stamped 8 s ago, so the
    frames queued behind it are stamped from about then on; their windows stay open."""
    wait = GRACE + 400
    newest = NOW - 8_000
    assert close_boundary(NOW, wait, GRACE, True, newest) == newest - GRACE
    # A feed that keeps up: its newest stamp is recent, the usual boundary is the earlier.
    assert close_boundary(NOW, wait, GRACE, True, NOW - 100) == NOW - wait
    # No book frame handled on this connection yet (only its subscribe answers): the
    # queued ones may be stamped anywhere since it opened, so windows wait, as long as
    # a backlog may hold them (seed 10262: a fresh Paradex connection's first frames,
    # queued 5 s, dropped as late by an alarm let in after its subscribe answer).
    assert close_boundary(NOW, wait, GRACE, True, None) == NOW - wait - MAX_BACKLOG_WAIT_MS


def test_a_backlog_holds_windows_at_most_max_backlog_wait():
    wait = GRACE + 400
    assert close_boundary(NOW, wait, GRACE, True, NOW - 3_600_000) == NOW - wait - MAX_BACKLOG_WAIT_MS


def test_the_queue_starts_at_the_newest_unclamped_stamp_unless_it_lies_in_closed_windows():
    unclamped, placed = NOW - 20_000, NOW  # a clamped frame placed at our clock after it
    assert queue_start(unclamped, placed, NOW - 25_000) == unclamped  # seed 19151's case
    assert queue_start(unclamped, placed, unclamped) == unclamped  # in the oldest open window
    assert queue_start(unclamped, placed, unclamped + 1) == placed  # in a closed one: protects nothing
    assert queue_start(None, placed, NOW - 25_000) == placed  # every frame clamped
    assert queue_start(None, None, NOW - 25_000) is None  # no book frame yet (seed 10262)
    assert queue_start(unclamped, unclamped, NOW - 60_000) == unclamped  # nothing clamped: the same
