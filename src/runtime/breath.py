"""Let the rest of the Durable Object in while the feed is flat out (issue 18, defect 8).

Why a burst starved /api/stats, /api/start and /api/stop (and, with a deep enough socket
buffer, every request to the process, even the Worker's own /api/openapi.json):

- workerd delivers each message of an outbound WebSocket as its own event: its read loop
  awaits the next message, then re-enters the object with `context.run()`, which waits
  for the object's input gate (workerd src/workerd/api/web-socket.c++,
  `LegacyWebSocketAdapter::readLoop`; src/workerd/io/io-context.h, `IoContext::runSingle`:
  "an input lock will be obtained before executing the callback"). A request to the
  object waits for the same gate, first come first served.
- But a request must first be READ from its connection, and KJ's event loop looks at the
  operating system's I/O (epoll) and its timers only when its queue of ready events runs
  out (capnproto c++/src/kj/async.c++, `EventLoop::turn` / `waitImpl`), while a socket
  read is tried directly before any wait for readiness (c++/src/kj/async-io-unix.c++,
  `AsyncStreamFd::tryReadInternal`). While the exchange's frames wait in the kernel's
  buffer, every read succeeds at once, the queue never runs out, and nothing else gets in:
  the request for the stats sits unread in the listening socket until the burst ends.

The breath: every Config.breathe_every_frames frames the tracker's connection
(tracker/connection.py) asks its socket to `breathe()`: hold the object's input gate
(`ctx.blockConcurrencyWhile`, https://developers.cloudflare.com/durable-objects/api/state/#blockconcurrencywhile)
until a 1 ms timer fires. While the gate is held the read loop's next message waits for
it, the ready queue runs out, KJ polls the OS: requests and the alarm are read, and join
the gate's queue ahead of the next frame. Frames are never reordered or dropped (each is
handled, in order, before the breath is asked for). The alarm let in that way finds frames
still queued behind the breath: it closes no window they may fall in
(tracker/feedtime.py `close_boundary`). `bench saturation` measures the API under a burst
with and without the breath.
"""

from __future__ import annotations

import js
from pyodide.ffi import create_proxy

# Not 0: a breath on a 0 ms timer was measured completing ~45 times a second while not one
# new request got in for 20 s (docs/bench/saturation.txt); on a 1 ms timer requests got in.
# Why 0 differs is not established (a 0 ms timer may be due before the loop reaches the OS).
BREATH_TIMER_MS = 1
# At most one breath per this many ms of a burst: a 1 ms timer can put workerd to sleep, and on
# a busy machine getting the CPU back takes far longer (a breath every 256 frames cut a burst's
# ingest 5x at load 9). A request needs one or two breaths to be read and answered.
BREATH_INTERVAL_MS = 50


class GateBreath:
    """Hold the object's input gate until the runtime has looked for I/O once.

    ctx.blockConcurrencyWhile() delivers no event to the object until its callback's
    promise settles; the callback waits for a BREATH_TIMER_MS timer, which fires only
    when the runtime has polled for I/O. While the gate is held, the socket's read loop
    waits for it, so the poll comes: requests and timers due get in, queued at the gate
    ahead of the next frame. One breath at a time, and none sooner than
    BREATH_INTERVAL_MS after the last one ended: a breath asked for meanwhile is a no-op
    (the tracker still counts it as one: it only makes windows wait, never close early)."""

    def __init__(self, ctx) -> None:
        self._ctx = ctx
        self._held = False
        self._last_ms = 0.0  # when the last breath ended (Date.now() moves on between events)
        # Made once, reused by every breath: no proxy to create or destroy per breath.
        self._settled = create_proxy(self._release)
        self._wait_for_io = create_proxy(self._timer)
        self._arm_timer = create_proxy(lambda resolve, reject: js.setTimeout(resolve, BREATH_TIMER_MS))

    def __call__(self) -> None:
        if self._held or js.Date.now() - self._last_ms < BREATH_INTERVAL_MS:
            return
        self._held = True
        self._ctx.blockConcurrencyWhile(self._wait_for_io).then(self._settled, self._settled)

    def _timer(self):
        return js.Promise.new(self._arm_timer)

    def _release(self, *_) -> None:
        self._held = False
        self._last_ms = js.Date.now()
