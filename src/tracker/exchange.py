"""What differs per exchange, behind one small interface.

Everything else (order books, windows, the outbox, rollup, the alarm, stats,
alerts) is written once, in terms of integer market ids and `BookFrame`s.

An `Exchange` says:
  * where its market list is (REST) and how to read it into `Market`s;
  * its tables (`sql.Statements`): Lighter keeps the seed's names, Paradex gets
    `paradex_*`;
  * its `Wire`: the per-connection protocol that builds subscribe/unsubscribe
    messages and turns every server frame (text or binary) into a `BookFrame` or a
    `ControlFrame`; continuity is expressed the common way (a delta's
    `begin_nonce` must equal the previous frame's `nonce`), whatever the
    exchange's own rule is;
  * its limits: the message budget per IP (split across shards), subscriptions per
    connection, and whether the client must ping.

`LIGHTER` and `PARADEX` are the two implementations; `by_name` finds one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from . import pacing, protocol, sql
from .config import EXCHANGES, Config
from .markets import ORDER_BOOKS_PATH, Market, parse_order_books
from .pacing import Budget
from .protocol import BookFrame, ControlFrame, LighterWire


class Wire(Protocol):
    """One connection's protocol state (Paradex numbers its requests, for example)."""

    # True: the socket's open event means subscribing may start (Paradex); False: wait
    # for the exchange's own `connected` frame (Lighter).
    ready_on_open: bool
    # A client keepalive message to send every `Exchange.ping_every_ms` (None: none),
    # and the answer to a server's `ping` control frame (None: the runtime answers
    # protocol-level pings by itself).
    ping: str | None
    pong: str | None

    def subscribe(self, market_id: int) -> str: ...

    def unsubscribe(self, market_id: int) -> str: ...

    def parse(self, data: str | bytes) -> BookFrame | ControlFrame:
        """One server frame; raises `protocol.MalformedFrame` on anything undocumented."""

    def market_of(self, data: str | bytes) -> int | None:
        """Best effort: the market a frame is about (for a frame whose handling failed)."""

    def describe_gap(self, market_id: int, nonce: int, begin_nonce: int) -> str:
        """A gap in the exchange's own words (the book's nonce, and the new frame's begin_nonce)."""


@dataclass(frozen=True)
class Exchange:
    name: str  # "lighter" | "paradex": the API's ?exchange=, the tables' prefix
    label: str  # log component: "[Lighter] ..."
    sql: sql.Statements
    markets_path: str  # appended to the exchange's API URL
    parse_markets: Callable[[object, Config, int], list[Market]]  # (JSON body, config, now ms)
    new_wire: Callable[[Config, Mapping[int, str]], Wire]  # (config, market id -> symbol)
    budget_per_minute: int  # client messages per IP per minute, the deployment's share
    budget_in_flight: int  # subscriptions awaiting their snapshot, per IP
    max_subscriptions: int  # per connection
    ping_every_ms: int | None  # client pings (None: the server pings)

    def budget(self, shards: int) -> Budget:
        return Budget.share(shards, self.budget_per_minute, self.budget_in_flight)


# -- Lighter ------------------------------------------------------------------------------


LIGHTER = Exchange(
    name="lighter",
    label="Lighter",
    sql=sql.LIGHTER,
    markets_path=ORDER_BOOKS_PATH,
    parse_markets=lambda payload, config, now: parse_order_books(payload),
    new_wire=lambda config, symbols: LighterWire(),
    # Lighter: 200 messages a minute and 50 in flight per IP; kept 10% / 20% below.
    budget_per_minute=pacing.DEFAULT_MAX_PER_MINUTE,
    budget_in_flight=pacing.DEFAULT_MAX_IN_FLIGHT,
    max_subscriptions=pacing.MAX_SUBSCRIPTIONS_PER_CONNECTION,
    ping_every_ms=45_000,  # Lighter wants a client message at least every 2 minutes
)


def _paradex() -> Exchange:
    from . import paradex  # the SBE decoder is only loaded where Paradex runs

    return paradex.EXCHANGE


def by_name(name: str) -> Exchange:
    if name == "lighter":
        return LIGHTER
    if name == "paradex":
        return _paradex()
    raise KeyError(f"unknown exchange {name!r} (known: {', '.join(EXCHANGES)})")
