"""The exchange's clock against ours.

Windows are placed by the exchange's stamps but closed by the Worker's clock, so two
things are bounded here:

- How far ahead a stamp may be: a frame stamped more than MAX_CLOCK_AHEAD_MS after
  our clock (read when the frame's exchange second began) is placed at our clock
  instead (tracker/feed.py). One wild stamp can then neither open a window in the
  future nor push `flushed_until` out of the clock's reach.
- How long windows wait for the feed: `FeedLag` keeps what arrival - stamp was over
  about the last minute (a delivery delay, or an exchange clock behind ours), and the
  shard closes windows that much later than FLUSH_GRACE_MS, up to MAX_FEED_LAG_MS. A
  steady lag within that bound loses nothing; beyond it, the end of every window is
  dropped as late, counted, and /api/health says `degraded` (`RecentCount`).

- How long windows wait for frames queued behind a breath (`close_boundary`). While
  the exchange's frames come flat out, workerd hands the object nothing else: the feed
  socket "breathes" every Config.breathe_every_frames frames (runtime/breath.py) so
  requests and the alarm get in, but frames are still queued behind that breath, and
  the alarm would close by its clock windows they fall in (issue 18, defect 8: windows
  written with 11.6 of their 15 s). So after a breath, windows close no later than the
  newest handled frame's stamp minus FLUSH_GRACE_MS: the queued frames come after it,
  in order. Without a breath since the last close nothing is queued (the alarm got in
  because the socket ran dry), and nothing changes.

The feed reads the clock once per exchange second (the first frame of each second,
per connection), never per frame: that reading both bounds the stamps and is the lag
sample. An exchange clock AHEAD of ours needs no waiting (its frames arrive before
their window's end by our clock), so only positive lags delay closing.

How far ahead of our clock the stamps the feed KEPT ran (`FeedLag.ahead`) is what an
instance resumed after an eviction needs: its predecessor had windows open that far
ahead, which went with it, so it measures from the window after them
(`losses.record_unmeasured`). It is the newest kept stamp of each reading against that
reading, not the lag samples: with an exchange clock at the bound, a second's first
frame is placed at our clock while later ones of that second, and snapshots stamped
with their book's last change (Paradex), are kept up to MAX_CLOCK_AHEAD_MS ahead
(seeds 427, 1595, 6665: the successor measured a window its predecessor had measured
part of, and wrote it short).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

# A stamp more than this after our clock is a clock fault: placed at our clock.
MAX_CLOCK_AHEAD_MS = 15_000
# The feed reads our clock once per exchange second: a reading is at most about this
# old when a frame of its second arrives, and how far ahead a stamp ran is measured
# against it (FeedLag.ahead), so it may say up to this much more than the truth (a
# clock in step with ours: up to a second).
READING_AGE_MS = 1_000
# Windows wait at most this much longer than FLUSH_GRACE_MS for a lagging feed: each
# second of wait is a second more before a window reaches D1, and a lag beyond it is
# an outage to report (health `degraded`), not a delay to absorb.
MAX_FEED_LAG_MS = 10_000
# The lag is judged over this much of the recent past...
LAG_SPAN_MS = 60_000
# ... as this quantile of its samples: a high one (windows must wait for nearly every
# frame; FLUSH_GRACE_MS covers the rest), yet not the maximum, so a stray frame
# stamped long ago (a clock fault) does not hold every window back for a minute.
LAG_QUANTILE = 0.95
# At most this many samples are kept (one per exchange second and connection, so a
# minute's worth unless seconds interleave).
MAX_LAG_SAMPLES = 600
# With fewer samples than this in the span the lag is not known well enough to close
# windows by (a start, a reconnect, a feed down or nearly silent): windows wait the
# most, MAX_FEED_LAG_MS. It costs only a later write.
MIN_LAG_SAMPLES = 10
# Behind a breath, windows wait for the queued frames at most this much longer than they
# would otherwise: a backlog deeper than a minute is an overload, not a delay to absorb
# (its frames are dropped as late, counted, and health says `degraded`), and windows
# must not pile up open (aggregator.MAX_OPEN_WINDOWS).
MAX_BACKLOG_WAIT_MS = 60_000
# A close held back for queued frames is tried again this much later, not at once: the
# held window's close point has passed, and an alarm armed for it would come at every
# breath (each alarm a billed Durable Object request and a storage write).
BACKLOG_RECHECK_MS = 1_000


class FeedLag:
    """arrival - stamp of the feed's frames (ms, our clock minus the exchange's), as
    sampled by the feed; shared by a shard's successive connections. Read at every
    alarm and stats request: the sorted lags are kept until a sample comes or goes."""

    def __init__(self, on_ahead: Callable[[], None] | None = None) -> None:
        self._samples: deque[tuple[int, int]] = deque()  # (our clock, lag)
        self._sorted: list[int] | None = None
        # (our clock as read, how far ahead of it the newest stamp kept since ran), one
        # per reading whose kept stamps ran ahead at all.
        self._ahead: deque[tuple[int, int]] = deque()
        self.known_ahead = 0  # the most of the span, as of the last look or sample
        # Called when a reading's stamps ran further ahead than `known_ahead`: the shard
        # saves it at once (an alarm), not a window later (seed 427: evicted before).
        # What stays open: an instance that goes between such a frame's second and that
        # save (well under a second, unless alarms are held) leaves its successor a
        # window it measured in part.
        self.on_ahead = on_ahead

    def add(self, now: int, lag: int) -> None:
        samples = self._samples
        samples.append((now, lag))
        if len(samples) > MAX_LAG_SAMPLES:
            samples.popleft()
        self._sorted = None

    def _lags(self, now: int) -> list[int]:
        """The span's lags, sorted (older samples dropped)."""
        samples = self._samples
        while samples and samples[0][0] <= now - LAG_SPAN_MS:
            samples.popleft()
            self._sorted = None
        if self._sorted is None:
            self._sorted = sorted(lag for _, lag in samples)
        return self._sorted

    def estimate(self, now: int) -> int | None:
        """The lag of about the last minute (LAG_QUANTILE of its samples); None without
        samples. Negative: the exchange's clock runs ahead of ours."""
        lags = self._lags(now)
        if not lags:
            return None
        return lags[min(len(lags) - 1, int(len(lags) * LAG_QUANTILE))]

    def kept_ahead(self, read_at: int, ahead: int) -> None:
        """The stamps the feed kept since it read our clock (`read_at`) ran up to `ahead`
        ms past that reading (the feed, when the reading ends: below MAX_CLOCK_AHEAD_MS,
        beyond it stamps are placed at our clock)."""
        samples = self._ahead
        samples.append((read_at, ahead))
        if len(samples) > MAX_LAG_SAMPLES:
            samples.popleft()
        if ahead > self.known_ahead:
            self.known_ahead = ahead
            if self.on_ahead is not None:
                self.on_ahead()

    def ahead(self, now: int) -> int:
        """How far ahead of our clock the stamps the tracker kept ran over the span (an
        exchange clock ahead of ours), 0 if none did. Conservative by up to the age of a
        reading (READING_AGE_MS): the clock is read once per exchange second."""
        samples = self._ahead
        while samples and samples[0][0] <= now - LAG_SPAN_MS:
            samples.popleft()
        self.known_ahead = max((ahead for _, ahead in samples), default=0)
        return self.known_ahead

    def close_delay(self, now: int) -> int:
        """How much later than FLUSH_GRACE_MS windows close now: the lag, within
        [0, MAX_FEED_LAG_MS]; the most while it is not known (MIN_LAG_SAMPLES)."""
        lags = self._lags(now)
        if len(lags) < MIN_LAG_SAMPLES:
            return MAX_FEED_LAG_MS
        return min(max(self.estimate(now), 0), MAX_FEED_LAG_MS)


def queue_start(unclamped: int | None, placed: int | None, closed_until: int) -> int | None:
    """From about which stamp the frames queued behind the newest handled one are placed,
    for close_boundary: `unclamped`, the newest stamp kept as the exchange stamped it; a
    stamp clamped for running MAX_CLOCK_AHEAD_MS ahead is placed at our clock, which in
    a backlog runs ahead of the queue (seed 19151: one frame stamped a day ahead, placed
    21 s into a backlog, closed the window of the 13 updates queued behind it). Yet when
    `unclamped` lies in a window already closed (before `closed_until`, which the alarm
    keeps within the feed's lag of the newest frames), the exchange's clock has stayed
    too far ahead since: its frames are all clamped, and so will the queued ones be,
    placed at our clock. Holding windows for that old stamp protects nothing and would
    delay every close after a breath by the most a backlog may (MAX_BACKLOG_WAIT_MS; the
    review of dea58b8): then `placed`, the newest placed stamp, as for any frame."""
    if unclamped is not None and unclamped >= closed_until:
        return unclamped
    return placed


def close_boundary(now: int, wait: int, grace: int, backlogged: bool, newest_stamp: int | None) -> int:
    """Until where the alarm closes windows: `now - wait` (FLUSH_GRACE_MS and the feed's
    lag). `backlogged` (the feed socket breathed since the last close: frames may be
    queued behind the breath, placed from about `newest_stamp` on, see queue_start): no
    later than `newest_stamp - grace` either, yet no earlier than MAX_BACKLOG_WAIT_MS
    before `now - wait`. (A connection's frames come in the exchange's order, so the
    queued ones are stamped after the newest handled, the grace covering stamps a little
    out of order across markets. Should the newest be a Paradex snapshot, stamped with
    its book's last change, windows only wait longer.)"""
    boundary = now - wait
    if backlogged:
        # No book frame handled on the connection yet (only its subscribe answers): the
        # queued ones may be stamped anywhere since it opened, so hold as long as a
        # backlog may (seed 10262).
        held = newest_stamp - grace if newest_stamp is not None else boundary - MAX_BACKLOG_WAIT_MS
        boundary = max(min(boundary, held), boundary - MAX_BACKLOG_WAIT_MS)
    return boundary


class RecentCount:
    """How much a running total grew over about the last minute, from checkpoints
    taken whenever it is observed (every alarm, every stats request): no clock on the
    path that counts. The span is LAG_SPAN_MS to LAG_SPAN_MS + one alarm period."""

    def __init__(self, span_ms: int = LAG_SPAN_MS, every_ms: int = 5_000) -> None:
        self.span_ms = span_ms
        self.every_ms = every_ms
        self._marks: deque[tuple[int, int]] = deque()  # (our clock, total)

    def observe(self, now: int, total: int) -> int:
        marks = self._marks
        if marks and total < marks[-1][1]:
            marks.clear()  # the total started again (a new tracking run)
        if not marks or now - marks[-1][0] >= self.every_ms:
            marks.append((now, total))
        # The baseline: the newest checkpoint at least a span old (the oldest, if none
        # is: what this instance counted before its first look is not judged).
        while len(marks) >= 2 and marks[1][0] <= now - self.span_ms:
            marks.popleft()
        return total - marks[0][1]
