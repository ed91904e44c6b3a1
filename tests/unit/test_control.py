"""tracker/control.py: which shard objects a start and a stop call, and in which steps."""

from __future__ import annotations

import asyncio

from tracker import control


class Objects:
    """Shard objects as the Worker reaches them: `split[s]` is the split shard s last
    ran under while it still tracks (None: not tracking)."""

    def __init__(self, split: dict[int, int | None]):
        self.split = dict(split)
        self.calls: list[tuple[int, str]] = []

    async def __call__(self, shard: int, action: str, body: dict | None = None) -> dict:
        self.calls.append((shard, action))
        was = self.split.get(shard)
        if action == "release":
            if was is not None and was != body["shards"]:
                self.split[shard] = None  # another split: it stops
            return {"shard": shard, "tracking": self.split.get(shard) is not None, "shards": was,
                    "flushedUntil": 30_000 if was else 0, "sent": []}
        if action == "stop":
            self.split[shard] = None
            return {"shard": shard, "ok": True, "split": was}
        self.split[shard] = -1  # started (under the new split)
        return {"shard": shard, "ok": True}


def test_a_start_releases_the_old_splits_shards_that_d1_does_not_know():
    """SHARDS lowered 3 -> 1 while D1 is down (no known shards): shard 0 says it ran
    under 3, so shards 1 and 2 are released too, before anything starts."""
    objects = Objects({0: 3, 1: 3, 2: 3})
    results = asyncio.run(control.fan_out("start", 1, [], objects))
    releases = [s for s, a in objects.calls if a == "release"]
    assert sorted(releases) == [0, 1, 2]
    assert objects.calls.index((0, "start")) > max(objects.calls.index((s, "release")) for s in (0, 1, 2))
    assert objects.split[1] is None and objects.split[2] is None
    assert [r["shard"] for r in results] == [0, 1, 2]  # the started one, then those released beyond


def test_a_start_on_an_unchanged_split_releases_only_its_own_shards():
    objects = Objects({0: 2, 1: 2})
    asyncio.run(control.fan_out("start", 2, [0, 1], objects))
    assert sorted(s for s, a in objects.calls if a == "release") == [0, 1]


def test_a_stop_reaches_the_old_splits_shards_that_d1_does_not_know():
    """SHARDS lowered 2 -> 1 by a deploy alone, then /api/stop while D1 is down (no
    known shards; seed 8746): shard 0 says it ran under 2, so shard 1 is stopped too,
    not left tracking out of the API's reach."""
    objects = Objects({0: 2, 1: 2})
    results = asyncio.run(control.fan_out("stop", 1, [], objects))
    assert sorted(s for s, a in objects.calls if a == "stop") == [0, 1]
    assert objects.split == {0: None, 1: None}
    assert [r["shard"] for r in results] == [0, 1]


def test_a_stop_asks_each_shard_once():
    objects = Objects({0: 3, 1: 3, 2: 3})
    asyncio.run(control.fan_out("stop", 3, [0, 1, 2], objects))
    assert sorted(objects.calls) == [(0, "stop"), (1, "stop"), (2, "stop")]
