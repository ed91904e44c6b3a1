"""SendStore: the send history survives the instance (stored, or the legacy list of an
old state); held messages go out only once a write counting them is in storage, one
write at a time, the messages held during a write covered by the next."""

from __future__ import annotations

import asyncio
import json

from tracker.sendstore import SENDS_KEY, SendStore

NOW = 1_780_000_000_000


class Storage:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0  # begun
        self.done = 0  # in storage
        self.gate: asyncio.Event | None = None  # a write waits on it when set

    async def get(self, key):
        return self.data.get(key)

    async def put_many(self, entries):
        self.writes += 1
        if self.gate is not None:
            await self.gate.wait()
        self.data.update(entries)
        self.done += 1


class Connection:
    """What the store sees of a connection: messages held, numbered, and released."""

    def __init__(self) -> None:
        self.held_seq = 0
        self.held: list[int] = []
        self.released: list[tuple[int, int]] = []  # (upto, storage writes done by then)
        self.storage: Storage | None = None

    def hold(self) -> None:
        self.held_seq += 1
        self.held.append(self.held_seq)

    @property
    def holding(self) -> bool:
        return bool(self.held)

    def saved(self, upto: int) -> None:
        self.held = [n for n in self.held if n > upto]
        self.released.append((upto, self.storage.done))


class Clock:
    @staticmethod
    def now_ms() -> int:
        return NOW


def spawn(coro, name):
    return asyncio.get_running_loop().create_task(coro, name=name)


def test_the_history_loads_from_its_key_or_from_an_old_states_list():
    async def scenario():
        storage = Storage()
        old = await SendStore(storage, Clock(), spawn, lambda: None).load([NOW - 1_000, NOW - 500])
        store = SendStore(storage, Clock(), spawn, lambda: None)
        store.history.add(NOW - 10)
        await store.write(NOW)
        again = await SendStore(storage, Clock(), spawn, lambda: None).load([NOW - 1_000])
        return old, again, storage

    old, again, storage = asyncio.run(scenario())
    assert old.recent_own(NOW) == [NOW - 1_000, NOW - 500]
    assert again.recent_own(NOW) == [NOW - 10]  # the stored history wins over the legacy list
    assert json.loads(storage.data[SENDS_KEY])["own"] == [NOW - 10]


def test_held_messages_are_released_only_after_a_write_one_write_at_a_time():
    async def scenario():
        storage, connection = Storage(), Connection()
        connection.storage = storage
        tasks: list[asyncio.Future] = []

        def spawn_seen(coro, name):
            tasks.append(spawn(coro, name))
            return tasks[-1]

        store = SendStore(storage, Clock(), spawn_seen, lambda: connection)
        storage.gate = asyncio.Event()
        connection.hold()
        store.persist()
        await asyncio.sleep(0)  # the first write is under way, waiting on storage
        connection.hold()  # held meanwhile: not in the write under way
        store.persist()  # a write is under way: nothing new starts
        connection.hold()
        store.persist()
        assert storage.writes == 1 and connection.released == []
        storage.gate.set()
        await asyncio.gather(*tasks)  # the one save task: both writes
        assert len(tasks) == 1
        return storage.writes, connection

    writes, connection = asyncio.run(scenario())
    assert writes == 2  # the first covered message 1, the next the two held meanwhile
    assert connection.released == [(1, 1), (3, 2)] and not connection.holding


def test_nothing_is_written_without_a_connection_holding_messages():
    async def scenario():
        storage = Storage()
        store = SendStore(storage, Clock(), spawn, lambda: None)
        store.persist()
        await asyncio.sleep(0)
        idle = Connection()
        store_idle = SendStore(storage, Clock(), spawn, lambda: idle)
        store_idle.persist()
        await asyncio.sleep(0)
        return storage.writes

    assert asyncio.run(scenario()) == 0
