"""The deterministic simulation in the normal test suite: the real shard trackers
(tracker/shard.py and its parts) through a thousand seeded fault schedules, each
checked against every invariant of tests/sim/invariants.py. Two seeds in three run
Lighter alone, one in six Paradex alone, one in six both exchanges on one D1
(world.make_plan).

A failing seed prints the one-line command that replays it with its whole log:

    bash scripts/simulate --seed 1234

Longer soaks: `bash scripts/simulate --seeds 20000` (README).
"""

from __future__ import annotations

import json
import os

import pytest

import world as sim_world

SEEDS = int(os.environ.get("SIM_SEEDS", "1000"))


def test_every_seed_holds_every_invariant():
    # One process: scripts/test already runs pytest workers side by side (and a forked
    # pool would inherit, and close, their channel to the controller).
    failed = []
    for seed in range(SEEDS):
        result = sim_world.run(seed)
        if result.violations:
            failed.append((seed, result.violations))
    report = "\n".join(f"seed {seed}: {v[:3]}\n  replay: bash scripts/simulate --seed {seed}" for seed, v in failed[:10])
    assert not failed, f"{len(failed)} of {SEEDS} seeds broke an invariant:\n{report}"


@pytest.mark.parametrize("exchanges", ["lighter", "paradex", "paradex+lighter"])
def test_a_seed_replays_exactly(exchanges):
    """One seed is one run: the same frames, the same D1 rows, the same logs."""
    def fingerprint(seed: int) -> str:
        w = sim_world.run(seed).world
        rows = [w.d1.rows(f"SELECT * FROM {table} ORDER BY market_index, timestamp")
                for table in ("lighter_snapshots", "paradex_snapshots")]
        return json.dumps([[v.ex.trace for v in w.venues], rows, w.logs], default=str)

    def mix(plan) -> str:
        return "+".join(v.exchange for v in plan.venues())

    seed = next(s for s in range(100) if sim_world.make_plan(s).events and mix(sim_world.make_plan(s)) == exchanges)
    assert fingerprint(seed) == fingerprint(seed)


@pytest.mark.parametrize("bug", ["lose_windows_silently", "prune_before_rollup", "unsubscribe_everything"])
def test_the_invariants_catch_a_planted_bug(monkeypatch, bug):
    """The checks can fail: plant a bug of each kind they exist for, and see it reported."""
    from tracker import outbox, pacing, shard, sql

    if bug == "lose_windows_silently":
        real = outbox.Outbox.add

        async def add(self, windows, also):
            return await real(self, windows[1:], also)  # the first closed window vanishes

        monkeypatch.setattr(outbox.Outbox, "add", add)
    elif bug == "prune_before_rollup":
        # Neither the rollup frontier nor the statement's own guard (the minute row must
        # hold every window of its minute) holds a prune back.
        monkeypatch.setattr(shard.ShardTracker, "_sealed_until", lambda self: 2**62)
        monkeypatch.setattr(sql.LIGHTER, "PRUNE_WINDOWS",
                            "DELETE FROM lighter_snapshots WHERE timestamp < ? AND market_index % ? = ?")
    else:
        real_resub = pacing.SubscriptionPacer.resubscribe

        def resubscribe(self, market_id):  # the first release's bug: always unsubscribe first
            self.subscribed.add(market_id)
            real_resub(self, market_id)

        monkeypatch.setattr(pacing.SubscriptionPacer, "resubscribe", resubscribe)
    caught = []
    for seed in range(200):
        result = sim_world.run(seed)
        if result.violations:
            caught.append(seed)
            break
    assert caught, f"no seed of 200 noticed the planted bug {bug!r}"


def test_the_invariants_catch_a_tracker_that_ignores_its_allowlist(monkeypatch):
    """LIGHTER_MARKETS / PARADEX_MARKETS read, then not applied: the seeds with an
    allowlist (one in four) see a subscription, a row and a saved market outside it."""
    from tracker import directory

    monkeypatch.setattr(directory.MarketDirectory, "keeps", lambda self, market: True)
    for seed in range(200):
        violations = sim_world.run(seed).violations
        if violations:
            assert any("outside the allowlist" in v for v in violations), violations[:3]
            return
    raise AssertionError("no seed of 200 noticed markets tracked outside their allowlist")
