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

The breath: every `every` frames the handler asks `breathe()` to hold the object's input
gate (`ctx.blockConcurrencyWhile`, https://developers.cloudflare.com/durable-objects/api/state/#blockconcurrencywhile)
until a 1 ms timer fires (runtime/ports.py `GateBreath`; a 0 ms one was measured not to be
enough). While the gate is held the read loop's next message waits for it, the ready queue
runs out, KJ polls the OS: requests are read, and join the gate's queue ahead of the next
frame. Frames are never reordered or dropped (each is handled, in order, before the breath
is asked for); the cost is one counter per frame and a timer per `every` frames. `bench
saturation` measures the latency of the API under a burst with and without the breath.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Frames handled between two breaths: at ~17-25 µs a frame, a breath every ~5-6 ms of
# a burst. 0: never (what `bench saturation` measures as the "no breath" variant).
BREATHE_EVERY_FRAMES = 256


def paced_handler(
    on_frame: Callable[[Any], None],
    decode: Callable[[Any], Any],
    breathe: Callable[[], None] | None,
    every: int = BREATHE_EVERY_FRAMES,
) -> Callable[[Any], None]:
    """A message handler: `on_frame(decode(evt))` for each event, then `breathe()` once
    every `every` events (never when `breathe` is None or `every` <= 0)."""
    if breathe is None or every <= 0:
        return lambda evt: on_frame(decode(evt))
    since = 0

    def message(evt: Any) -> None:
        nonlocal since
        on_frame(decode(evt))
        since += 1
        if since >= every:
            since = 0
            breathe()

    return message
