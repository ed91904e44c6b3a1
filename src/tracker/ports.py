"""The tracker's view of the outside world: every source of time and I/O, as small
interfaces.

The orchestration code (`tracker.shard` and the parts it composes) talks to the
world only through these. The Workers runtime implements them in
`runtime/ports.py` (js.Date, Durable Object storage, D1, js.WebSocket, fetch);
the deterministic simulation (`tests/sim/`) implements them with a virtual clock,
a simulated Lighter, a D1 that fails on a schedule and storage that survives
evictions. Nothing here imports `js` or `workers`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

Statement = tuple[str, Sequence]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds (under Workers: advances only across I/O)."""


class Storage(Protocol):
    """Durable Object storage: string values, transactional multi-key writes, one alarm."""

    async def get(self, key: str) -> str | None: ...

    async def put_many(self, entries: dict[str, str]) -> None:
        """Write every entry in one transaction (all or nothing)."""

    async def delete_many(self, keys: Sequence[str]) -> None: ...

    async def set_alarm(self, at_ms: int) -> None: ...

    async def get_alarm(self) -> int | None: ...

    async def delete_alarm(self) -> None: ...


class Database(Protocol):
    """D1: bound statements in, plain rows out. Raises on any failure."""

    async def query(self, sql: str, *params) -> list[dict]: ...

    async def batch(self, statements: Sequence[Statement]) -> list[dict]:
        """Run statements as one transaction; each statement's `meta` (changes, rows_written)."""


class Socket(Protocol):
    open: bool

    def send(self, text: str) -> None: ...

    def close(self, code: int, reason: str) -> None:
        """Close from our side: no `on_down` follows."""


class SocketFactory(Protocol):
    def __call__(
        self,
        url: str,
        on_text: Callable[[str], None],
        on_open: Callable[[], None],
        on_down: Callable[[str], None],
    ) -> Socket:
        """Open a WebSocket; may raise synchronously on a bad URL."""


class Http(Protocol):
    async def get_text(self, url: str) -> tuple[int, str]: ...

    async def post_json(self, url: str, body: dict) -> int:
        """POST a JSON body; the HTTP status."""


class Peers(Protocol):
    """The other tracker shards of this deployment (shard 0 hands them the market list)."""

    async def send_markets(self, shard: int, payload: dict) -> None: ...


class Log(Protocol):
    def __call__(self, level: str, component: str, event: str, message: str) -> None:
        """One log line: level debug|info|warn|error, `[Component] message`, a stable event name."""


def no_log(level: str, component: str, event: str, message: str) -> None:
    pass
