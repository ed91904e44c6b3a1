"""MarketList: shard 0 reads the exchange, saves what it tracks in D1 (owed, and kept in
storage, until D1 takes it) and hands the listing to the other shards; they read D1; a
shard 0 whose REST read fails without a list falls back on D1's. D1 here is D1's own
SQLite (tools/d1sqlite) with the schema; the exchange, the peers and storage are small
fakes of the ports (tracker/ports.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from d1sqlite import D1Sqlite

from tracker.config import Config
from tracker.directory import MarketDirectory
from tracker.exchange import LIGHTER
from tracker.marketlist import UNSAVED_MARKETS_KEY, MarketList

from memory_storage import MemoryStorage

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000_000


class Db:
    def __init__(self) -> None:
        self.sqlite = D1Sqlite()
        self.sqlite.script((ROOT / "schema.sql").read_text())
        self.down = False

    async def query(self, statement: str, *binds) -> list[dict]:
        return self.sqlite.run(statement, binds).rows

    async def batch(self, statements) -> list[dict]:
        if self.down:
            raise OSError("D1_ERROR: overloaded")
        return [self.sqlite.run(statement, binds).rows for statement, binds in statements]


class Exchange:
    """GET orderBooks: the listing as Lighter answers it, or a failure."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = symbols
        self.status = 200

    async def get_text(self, url: str) -> tuple[int, str]:
        books = [{"symbol": s, "market_id": i, "market_type": "perp", "status": "active",
                  "supported_size_decimals": 4, "supported_price_decimals": 2} for i, s in enumerate(self.symbols)]
        return self.status, json.dumps({"code": 200, "order_books": books})


class Peers:
    def __init__(self, refuse: set[int] = frozenset()) -> None:
        self.refuse = refuse
        self.got: dict[int, dict] = {}

    async def send_markets(self, shard: int, payload: dict) -> None:
        if shard in self.refuse:
            raise TimeoutError("hand-over timed out")
        self.got[shard] = payload


class World:
    def __init__(self, symbols=("ETH", "BTC", "SOL"), shards: int = 3, **env) -> None:
        self.config = Config.from_env({"SHARDS": str(shards), **env}.get)
        self.exchange, self.db, self.peers, self.storage = Exchange(list(symbols)), Db(), Peers(), MemoryStorage()
        self.logged: list[tuple[str, str, str]] = []
        self.errors: list[str] = []

    def market_list(self, shard: int) -> MarketList:
        return MarketList(shard, LIGHTER, self.config, self.exchange, self.db, self.peers, self.storage,
                          self.log, lambda: self.config.shards, self.errors.append)

    def directory(self, shard: int) -> MarketDirectory:
        return MarketDirectory(shard, self.config.shards, self.config.market_refresh_ms, LIGHTER,
                               self.config.market_symbols)

    def log(self, level: str, component: str, event: str, message: str) -> None:
        self.logged.append((level, event, message))

    def events(self) -> list[str]:
        return [event for _, event, _ in self.logged]


def symbols(listing) -> list[str]:
    return [m.symbol for m in listing]


def test_shard_0_reads_the_exchange_saves_in_d1_and_hands_over_to_the_others():
    world = World(shards=3)
    world.peers.refuse = {2}
    shard0 = world.market_list(0)
    listing, as_of = asyncio.run(shard0.read(world.directory(0), NOW))
    assert symbols(listing) == ["ETH", "BTC", "SOL"] and as_of == NOW
    assert not shard0.owed
    assert list(world.peers.got) == [1]  # shard 2 refused: said, and it reads D1 instead
    assert world.events() == ["handover_failed"]
    # shard 2 reads what shard 0 saved
    listing2, as_of2 = asyncio.run(world.market_list(2).read(world.directory(2), NOW + 5))
    assert symbols(listing2) == ["ETH", "BTC", "SOL"] and as_of2 == NOW


def test_a_listing_d1_refused_is_owed_kept_in_storage_and_saved_by_the_next_instance():
    world = World(shards=1)
    world.db.down = True
    shard0 = world.market_list(0)
    asyncio.run(shard0.read(world.directory(0), NOW))
    assert shard0.owed and UNSAVED_MARKETS_KEY in world.storage.data
    assert world.events() == ["d1_error"]
    assert shard0.due(world.directory(0), 0)  # owed: the markets lane runs, whenever the refresh is
    # this instance goes; the next one restores what was owed and saves it once D1 answers
    successor = world.market_list(0)
    asyncio.run(successor.restore())
    assert successor.owed
    world.db.down = False
    asyncio.run(successor.save(NOW + 1_000))
    assert not successor.owed and UNSAVED_MARKETS_KEY not in world.storage.data
    listing, _ = asyncio.run(world.directory(0).from_d1(world.db))
    assert symbols(listing) == ["ETH", "BTC", "SOL"]


def test_only_shard_0_owes_a_listing():
    world = World()
    other = world.market_list(1)
    other.unsaved = []
    assert not other.owed


def test_a_shard_without_a_list_in_d1_yet_counts_a_failure_and_gets_none():
    world = World()
    directory = world.directory(1)
    assert asyncio.run(world.market_list(1).read(directory, NOW)) is None
    assert directory.failures == 1 and directory.refreshed_at == NOW
    assert world.errors == ["market list: no saved market list in D1 yet (shard 0 saves it)"]
    assert world.events() == ["markets_failed"]


def test_shard_0_without_a_list_falls_back_on_d1_when_the_exchange_fails():
    world = World(shards=1)
    asyncio.run(world.market_list(0).read(world.directory(0), NOW))  # saved once
    world.exchange.status = 503
    restarted = world.market_list(0)
    listing, as_of = asyncio.run(restarted.read(world.directory(0), NOW + 60_000))
    assert symbols(listing) == ["ETH", "BTC", "SOL"] and as_of == NOW
    assert world.events() == ["markets_failed", "markets_from_d1"]
    # with a list of its own it keeps it instead (nothing read)
    directory = world.directory(0)
    directory.apply(listing, as_of)
    assert asyncio.run(restarted.read(directory, NOW + 120_000)) is None


def test_a_change_is_said_once_and_a_missing_allowlisted_symbol_by_shard_0_only():
    world = World(shards=1, LIGHTER_MARKETS="ETH,DOGE")
    market_list, directory = world.market_list(0), world.directory(0)
    listing, as_of = asyncio.run(market_list.read(directory, NOW))
    change = directory.apply(listing, as_of)
    market_list.report(directory, change, first=True, listed=len(listing))
    assert world.events() == ["markets_not_listed", "markets_loaded"]
    assert "LIGHTER_MARKETS names 1 symbol(s)" in world.logged[0][2]
    assert world.logged[1][2] == "markets loaded: 3 active of 3 listed; LIGHTER_MARKETS keeps 1"
    world.logged.clear()
    world.exchange.symbols = ["ETH", "BTC", "SOL", "DOGE"]
    listing, as_of = asyncio.run(market_list.read(directory, NOW + 60_000))
    change = directory.apply(listing, as_of)
    market_list.report(directory, change, first=False, listed=len(listing))
    assert world.events() == ["markets_not_listed", "market_listed"]
    assert world.logged[0][2] == "every symbol of LIGHTER_MARKETS is listed now"
    world.logged.clear()
    market_list.report(directory, directory.apply(listing, as_of + 1), first=False, listed=len(listing))
    assert world.logged == []  # nothing changed: nothing said
