"""A JS ReadableStream fed by a Python async iterator of text: a streamed response body.

Pull-based: the runtime calls `pull` when the client is ready for more, and each
pull takes the next piece from the iterator (which may await D1). So the body is
produced at the pace it is read, and only the piece in flight is in memory. This
is the pattern the workers SDK's own WSGI adaptor uses
(`ReadableStream.new(pull=..., cancel=...)` with `create_proxy`'d async functions).
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncGenerator

import js
from pyodide.ffi import create_proxy, to_js


def text_stream(pieces: AsyncGenerator[str, None], label: str):
    """A js.ReadableStream of the UTF-8 bytes of `pieces`. Errors are logged with
    `label` and end the stream as errored (the client sees a cut-short body, not
    a complete-looking one)."""
    finished = False

    def finish() -> None:
        nonlocal finished
        if not finished:
            finished = True
            for proxy in proxies:
                proxy.destroy()

    async def pull(controller) -> None:
        try:
            piece = ""
            while not piece:  # every pull must enqueue something or close
                piece = await anext(pieces)
        except StopAsyncIteration:
            controller.close()
            finish()
            return
        except Exception as exc:
            js.console.error(f"[API] {label}: stream failed: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            controller.error(js.Error.new(f"{label} failed: {exc}"))
            finish()
            return
        if finished:  # cancelled while this pull awaited D1: nobody reads it
            return
        # to_js copies the bytes out of the WASM heap: the stream keeps the chunk
        # after this function returns.
        controller.enqueue(to_js(piece.encode()))

    async def cancel(reason=None) -> None:
        # The client went away: stop paging through D1. A pull may be awaiting D1
        # right now (the generator is running): then it just ends with this page.
        try:
            await pieces.aclose()
        except RuntimeError:
            pass
        finish()

    proxies = [create_proxy(pull), create_proxy(cancel)]
    return js.ReadableStream.new(pull=proxies[0], cancel=proxies[1])
