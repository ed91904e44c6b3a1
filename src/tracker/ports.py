"""The tracker's view of the outside world: every source of time and I/O, as small
interfaces.

The orchestration code (`tracker.shard` and the parts it composes) talks to the
world only through these. The Workers runtime implements them in
`runtime/ports.py` (js.Date, Durable Object storage, D1, js.WebSocket, fetch);
the deterministic simulation (`tests/sim/`) implements them with a virtual clock,
a simulated Lighter, a D1 that fails on a schedule and storage that survives
evictions. Nothing here imports `js` or `workers`.

Every call that leaves the object (REST, D1, the alert webhook, the other shards)
has a deadline, set here and only here (`Deadlines`, `with_deadlines`): the parts
call the ports and never wait on their own. Storage has none (see `Deadlines`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

Statement = tuple[str, Sequence]


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds (under Workers: advances only across I/O)."""


# Durable Object storage takes at most 128 keys per put(entries) or delete(keys) call,
# and each call is one transaction (developers.cloudflare.com/durable-objects/api/
# storage-api/: "Supports up to 128 key-value pairs at a time"; every method "is
# implicitly wrapped inside a transaction").
STORAGE_KEYS_PER_CALL = 128


def storage_calls(items: list) -> list[list]:
    """`items` cut into calls of at most STORAGE_KEYS_PER_CALL, the LAST call full: the
    last entries of a write always commit together (see Storage.put_many)."""
    first = len(items) % STORAGE_KEYS_PER_CALL
    cuts = ([first] if first else []) + list(range(first + STORAGE_KEYS_PER_CALL, len(items) + 1,
                                                   STORAGE_KEYS_PER_CALL))
    start, calls = 0, []
    for end in cuts:
        calls.append(items[start:end])
        start = end
    return calls


class Storage(Protocol):
    """Durable Object storage: string values, transactional multi-key writes, one alarm."""

    async def get(self, key: str) -> str | None: ...

    async def put_many(self, entries: dict[str, str]) -> None:
        """Write the entries in one transaction if there are at most
        STORAGE_KEYS_PER_CALL; more are written in order, in calls cut by
        `storage_calls` (the last STORAGE_KEYS_PER_CALL entries in one): an eviction
        between two calls leaves the first entries stored without the rest. So a
        writer puts the entry that makes the others count (an index, the state
        saying they exist) last."""

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Delete the keys, in calls of at most STORAGE_KEYS_PER_CALL (not atomic beyond)."""

    async def set_alarm(self, at_ms: int) -> None: ...

    async def get_alarm(self) -> int | None: ...

    async def delete_alarm(self) -> None: ...


# D1 runs one batch() call as one transaction (developers.cloudflare.com/d1/worker-api/
# d1-database/#batch: "Batched statements are SQL transactions ... it aborts or rolls back
# the entire sequence"); the runtime's port sends at most this many statements per call.
D1_BATCH_STATEMENTS = 400


class Database(Protocol):
    """D1: bound statements in, plain rows out. Raises on any failure."""

    async def query(self, sql: str, *params) -> list[dict]: ...

    async def batch(self, statements: Sequence[Statement]) -> list[dict]:
        """Run statements in order, in transactions of at most D1_BATCH_STATEMENTS (one
        transaction unless there are more); each statement's `meta` (changes,
        rows_written). A failure may leave the transactions before it committed, and
        an error (or a deadline) may come after the write committed: every write the
        tracker makes is an idempotent upsert or delete, so it is simply sent again."""


class Socket(Protocol):
    open: bool

    def send(self, text: str) -> None: ...

    def close(self, code: int, reason: str) -> None:
        """Close from our side: no `on_down` follows."""

    def breathe(self) -> None:
        """Between two frames of a burst: let the object's requests and alarm in before
        the next frame is handled (runtime/breath.py); frames stay in order. May be a
        no-op (the runtime takes at most one breath per BREATH_INTERVAL_MS)."""


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


# =========================================================================================
# Deadlines
# =========================================================================================


@dataclass(frozen=True)
class Deadlines:
    """How long the tracker waits for each kind of outside call before it gives up (ms).

    - `d1_ms`: D1 ends any query at 30 s ("Maximum SQL query duration",
      developers.cloudflare.com/d1/platform/limits/); 5 s more for the way there and
      back. An answer later than that is not coming. Giving up does not cancel the
      call (a D1 promise cannot be): its write may still commit afterwards. The
      tracker's writes are idempotent (window and market upserts keyed on market and
      time, minute and hour upserts that only ever gain windows, stats rows that never
      replace a newer one, deletes), so a late commit of a batch that was sent again
      since changes nothing.
    - `rest_ms`: the market list (Lighter's GET /api/v1/orderBooks, Paradex's GET
      /markets) answers in well under a second; neither documents a server-side
      timeout (Lighter's own SDK waits up to 5 min, the OpenAPI generator's default).
      15 s, far below MARKET_REFRESH_SECONDS: a refresh that gives up is retried
      (directory.RETRY_MS), and one REST request a refresh stays within Lighter's 60
      a minute.
    - `webhook_ms`: an alert post (Slack/Discord-style webhooks answer in about a
      second); one that gives up is posted again at the next alarm.
    - `peer_ms`: shard 0 handing the market list to another shard (a request to a
      Durable Object that only writes its own storage). A shard that does not answer
      reads the list from D1 at its own refresh.

    Durable Object storage has no deadline: it is attached to the object (SQLite on
    the object's own machine, no network between them), each call is its own
    transaction, and a storage failure resets the object, which the tracker survives
    like an eviction (developers.cloudflare.com/durable-objects/api/storage-api/).
    """

    rest_ms: int = 15_000
    d1_ms: int = 35_000
    webhook_ms: int = 10_000
    peer_ms: int = 10_000


class DeadlinePassed(TimeoutError):
    """An outside call did not answer within its deadline; it was abandoned (a D1
    write may still commit later: see Deadlines)."""


T = TypeVar("T")


async def within(ms: int, what: str, call: Awaitable[T]) -> T:
    """`call`, or DeadlinePassed after `ms`. The call's task is cancelled: a fetch the
    runtime can abort is aborted (runtime/ports.py), a D1 promise runs on, unheard (Pyodide
    settles the future a JS promise feeds only if it is not done yet: a late answer is
    dropped, _pyodide/_future_helper.py). tests/integration/test_hangs.py checks it in
    workerd."""
    try:
        return await asyncio.wait_for(call, ms / 1000)
    except asyncio.TimeoutError:
        raise DeadlinePassed(f"{what} timed out after {ms / 1000:g} s") from None


class TimedDatabase:
    def __init__(self, db: Database, ms: int) -> None:
        self.db, self.ms = db, ms

    async def query(self, sql: str, *params) -> list[dict]:
        return await within(self.ms, "D1 query", self.db.query(sql, *params))

    async def batch(self, statements: Sequence[Statement]) -> list[dict]:
        return await within(self.ms, "D1 batch", self.db.batch(statements))


class TimedHttp:
    def __init__(self, http: Http, deadlines: Deadlines) -> None:
        self.http, self.deadlines = http, deadlines

    async def get_text(self, url: str) -> tuple[int, str]:
        return await within(self.deadlines.rest_ms, "request", self.http.get_text(url))

    async def post_json(self, url: str, body: dict) -> int:
        return await within(self.deadlines.webhook_ms, "webhook post", self.http.post_json(url, body))


class TimedPeers:
    def __init__(self, peers: Peers, ms: int) -> None:
        self.peers, self.ms = peers, ms

    async def send_markets(self, shard: int, payload: dict) -> None:
        await within(self.ms, f"hand-over to shard {shard}", self.peers.send_markets(shard, payload))


def with_deadlines(db: Database, http: Http, peers: Peers,
                   deadlines: Deadlines) -> tuple[Database, Http, Peers]:
    """The outside ports, each call bounded by its deadline."""
    return TimedDatabase(db, deadlines.d1_ms), TimedHttp(http, deadlines), TimedPeers(peers, deadlines.peer_ms)


@dataclass
class Ports:
    """Every port a shard (tracker/shard.py) is given."""

    clock: Clock
    storage: Storage
    db: Database
    sockets: SocketFactory
    http: Http
    peers: Peers
    log: Log
    # Run a coroutine in the background (a lane's step, a socket handler asking for
    # an earlier alarm), returning its task; the runtime logs its failure instead of
    # losing it.
    spawn: Callable[[Awaitable, str], asyncio.Future]
    # The Pyodide heap, where the runtime can tell (None elsewhere).
    heap_bytes: Callable[[], int | None] = lambda: None

    def bounded(self, deadlines: Deadlines) -> Ports:
        """These ports with every outside call under its deadline."""
        db, http, peers = with_deadlines(self.db, self.http, self.peers, deadlines)
        return replace(self, db=db, http=http, peers=peers)
