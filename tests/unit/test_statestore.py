"""StateStore: the state is written only when it changed since this instance's last
write; a failed write or a write elsewhere makes the next save write; an unreadable
stored state loads as a clean one, said."""

from __future__ import annotations

import asyncio

import pytest

from tracker.state import TrackerState
from tracker.statestore import STATE_KEY, StateStore


class Storage:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.puts = 0
        self.fail = False

    async def get(self, key):
        return self.data.get(key)

    async def put_many(self, entries):
        self.puts += 1
        if self.fail:
            raise OSError("storage refused")
        self.data.update(entries)


def test_an_unchanged_state_is_not_written_again():
    async def scenario():
        storage = Storage()
        store, state = StateStore(storage, lambda *a: None, "Lighter"), TrackerState(tracking=True)
        await store.save(state)
        await store.save(state)
        state.flushed_until = 15_000
        await store.save(state)
        await store.save(state)
        store.written_elsewhere()  # e.g. with the outbox's windows: storage may hold another
        await store.save(state)
        loaded = await StateStore(storage, lambda *a: None, "Lighter").load()
        return storage.puts, loaded

    puts, loaded = asyncio.run(scenario())
    assert puts == 3
    assert loaded.tracking and loaded.flushed_until == 15_000


def test_a_failed_write_is_written_again():
    async def scenario():
        storage = Storage()
        store, state = StateStore(storage, lambda *a: None, "Lighter"), TrackerState(tracking=True)
        storage.fail = True
        with pytest.raises(OSError):
            await store.save(state)
        storage.fail = False
        await store.save(state)
        return storage

    storage = asyncio.run(scenario())
    assert storage.puts == 2 and STATE_KEY in storage.data


def test_an_unreadable_state_loads_clean_and_says_so():
    logged = []
    storage = Storage()
    storage.data[STATE_KEY] = "{not json"
    state = asyncio.run(StateStore(storage, lambda *a: logged.append(a), "Lighter").load())
    assert state == TrackerState()
    assert logged[0][:3] == ("error", "Lighter", "state_unreadable")
    assert asyncio.run(StateStore(Storage(), lambda *a: None, "Lighter").load()) == TrackerState()  # nothing stored
