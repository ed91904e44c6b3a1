"""Outbox.add: what one storage transaction holds when the bound drops windows."""

from __future__ import annotations

import asyncio
import json

from tracker.aggregator import ClosedWindow
from tracker.outbox import INDEX_KEY, Outbox

from memory_storage import MemoryStorage


class Row:
    def values(self) -> tuple:
        return ("ETH", 1, 0)


def test_the_dropped_windows_are_recorded_in_the_transaction_that_drops_them():
    storage = MemoryStorage()
    outbox = Outbox(storage, max_windows=2)
    seen = []

    def state_after(dropped):
        seen.append([e.start for e in dropped])
        return {"tracker-state": json.dumps({"lost": [e.start for e in dropped]})}

    async def scenario():
        await outbox.add([ClosedWindow(0, [Row()]), ClosedWindow(15_000, [Row()])], state_after)
        return await outbox.add([ClosedWindow(30_000, [Row()]), ClosedWindow(45_000, [Row()])], state_after)

    dropped = asyncio.run(scenario())
    assert [e.start for e in dropped] == [0, 15_000]
    assert seen == [[], [0, 15_000]]
    last = storage.puts[-1]  # one transaction: the new windows, the index without the dropped, the record
    assert json.loads(last["tracker-state"]) == {"lost": [0, 15_000]}
    assert [e[0] for e in json.loads(last[INDEX_KEY])] == [30_000, 45_000]
    assert len(storage.puts) == 2
    assert not any(k.startswith("outbox/000000000000000/") for k in storage.data)  # the dropped chunks are gone
