"""The invariants added to close survivors of the mutation run (tests/sim/mutants.py,
`bash scripts/simulate --mutants`), each shown to catch the bug it exists for, planted
by monkeypatching, with the words of its violation."""

from __future__ import annotations

import pytest

import world as sim_world


def _first_seed_saying(says: str, seeds: int = 200) -> int | None:
    for seed in range(seeds):
        if any(says in line for line in sim_world.run(seed).violations):
            return seed
    return None


def test_a_lost_range_saved_then_overwritten_is_caught(monkeypatch):
    """The outbox drops windows past its bound and stores their lost range with the
    drop; a shard that does not also put the range on the state it keeps in memory
    overwrites that record at its next save. The world collects every lost range ever
    saved, so without invariant 2's 'stays recorded' clause the dropped windows still
    looked recorded (mutant overflow_drop_not_recorded_in_memory survived)."""
    from tracker import outbox

    real = outbox.Outbox.add

    async def add(self, windows, also):
        await real(self, windows, also)
        return []  # the caller never hears which windows were dropped

    monkeypatch.setattr(outbox.Outbox, "add", add)
    assert _first_seed_saying("then dropped by a later save of the same run") is not None
