"""An asyncio event loop on virtual time: nothing waits, the clock jumps.

The loop's selector never blocks: asked to wait `timeout` seconds, it advances
the virtual clock by `timeout` and reports no I/O (there is none: every socket,
database and timer of the simulation is a callback on this loop). Callbacks run
in the order asyncio defines (time, then scheduling order), so a run is a pure
function of its seed.
"""

from __future__ import annotations

import asyncio
import selectors


class _Selector(selectors.BaseSelector):
    def __init__(self) -> None:
        self._map: dict = {}
        self.now = 0.0

    def register(self, fileobj, events, data=None):
        key = selectors.SelectorKey(fileobj, fileobj if isinstance(fileobj, int) else fileobj.fileno(), events, data)
        self._map[key.fd] = key
        return key

    def unregister(self, fileobj):
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._map.pop(fd)

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError("simulation deadlock: nothing scheduled and nothing to wait for")
        self.now += max(0.0, timeout)
        return []

    def get_map(self):
        return self._map


class VirtualLoop(asyncio.SelectorEventLoop):
    """`loop.time()` is virtual seconds; `now_ms()` the simulated wall clock."""

    def __init__(self, start_ms: int) -> None:
        self._vsel = _Selector()
        super().__init__(selector=self._vsel)
        self._start_ms = start_ms

    def time(self) -> float:
        return self._vsel.now

    def now_ms(self) -> int:
        return self._start_ms + int(round(self._vsel.now * 1000))

    def at_ms(self, when_ms: int, callback, *args):
        return self.call_at((when_ms - self._start_ms) / 1000, callback, *args)
