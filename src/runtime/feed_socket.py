"""The outbound WebSocket to the exchange (Lighter or Paradex): a js.WebSocket with
Python handlers.

Each connection gets a number; events from a socket that has since been replaced
are ignored, so a late `close` from an old socket cannot tear down a new one.
The message handler is synchronous and does the least JS work possible per frame
(one read of `evt.data`), since crossing into JS costs ~9 µs per call. Text frames
arrive as str; binary frames (Paradex's SBE) as an ArrayBuffer, copied into bytes
once (`to_bytes`; tools/bench/sbe_decode.py measures what that copy costs).
`breathe()` lets the rest of the object in between two frames of a burst
(runtime/breath.py); the tracker asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

import js
from pyodide.ffi import create_once_callable, create_proxy


class FeedSocket:
    count = 0  # connections opened by this isolate: numbers them for the logs

    def __init__(
        self,
        url: str,
        number: int,
        on_frame: Callable[[str | bytes], None],
        on_open: Callable[[], None],
        on_down: Callable[[str], None],
        breath: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self._breath = breath
        self.number = number
        self.open = False
        self.closed = False
        self._on_down = on_down
        self._ws = js.WebSocket.new(url)
        self._ws.binaryType = "arraybuffer"  # binary frames as ArrayBuffer, never Blob
        self._proxies = [
            self._listen("open", lambda evt: self._opened(on_open)),
            self._listen("message", lambda evt: on_frame(_data(evt.data))),
            self._listen("close", lambda evt: self._down(f"closed by server (code {evt.code}{_reason(evt)})")),
            self._listen("error", lambda evt: self._down("socket error")),
        ]

    def send(self, text: str) -> None:
        if self.open and not self.closed:
            self._ws.send(text)

    def breathe(self) -> None:
        if self._breath is not None:
            self._breath()

    def close(self, code: int = 1000, reason: str = "tracking stopped") -> None:
        """Close from our side; no `on_down` callback follows."""
        if self.closed:
            return
        self.closed = True
        self.open = False
        try:
            self._ws.close(code, reason)
        except Exception:  # already closing or never opened: nothing left to do
            pass
        self._release()

    def _listen(self, event: str, handler):
        proxy = create_proxy(handler)
        self._ws.addEventListener(event, proxy)
        return event, proxy

    def _opened(self, on_open: Callable[[], None]) -> None:
        if not self.closed:
            self.open = True
            on_open()

    def _down(self, why: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.open = False
        self._release()
        self._on_down(why)

    def _release(self) -> None:
        # Unhook the handlers now (a close or error event can still follow our own
        # close), and destroy their proxies on a later turn: this may run inside one.
        proxies, self._proxies = self._proxies, []
        for event, proxy in proxies:
            self._ws.removeEventListener(event, proxy)

        def destroy() -> None:
            for _, proxy in proxies:
                proxy.destroy()

        js.setTimeout(create_once_callable(destroy), 0)


def _reason(evt) -> str:
    reason = getattr(evt, "reason", "") or ""
    return f", {reason}" if reason else ""


def _data(data):
    """A frame's payload: str stays str; an ArrayBuffer becomes bytes."""
    return data if type(data) is str else data.to_bytes()
