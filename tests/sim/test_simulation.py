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


@pytest.mark.parametrize("bug", ["lose_windows_silently", "prune_before_rollup", "unsubscribe_everything",
                                 "no_hours_after_stop", "hour_without_its_first_minute"])
def test_the_invariants_catch_a_planted_bug(monkeypatch, bug):
    """The checks can fail: plant a bug of each kind they exist for, and see it reported."""
    from tracker import outbox, pacing, rollup, sql

    if bug == "lose_windows_silently":
        real = outbox.Outbox.add

        async def add(self, windows, also):
            return await real(self, windows[1:], also)  # the first closed window vanishes

        monkeypatch.setattr(outbox.Outbox, "add", add)
    elif bug == "prune_before_rollup":
        # Neither the rollup frontier nor the statement's own guard (the minute row must
        # hold every window of its minute) holds a prune back.
        monkeypatch.setattr(rollup.Rollup, "sealed_until", lambda self: 2**62)
        monkeypatch.setattr(sql.LIGHTER, "PRUNE_WINDOWS",
                            "DELETE FROM lighter_snapshots WHERE timestamp < ? AND market_index % ? = ?")
    elif bug == "no_hours_after_stop":
        real_roll_hours = rollup.Rollup._roll_hours

        async def roll_hours(self):  # the first release's hours: written only while tracking
            if self.state.tracking:
                await real_roll_hours(self)

        monkeypatch.setattr(rollup.Rollup, "_roll_hours", roll_hours)
    elif bug == "hour_without_its_first_minute":
        # An hour rolled from part of its minutes: only a run that holds an hour's first
        # minute (one that crosses an hour boundary) can notice.
        for statements in (sql.LIGHTER, sql.PARADEX):
            monkeypatch.setattr(statements, "SELECT_MINUTES_FOR_ROLLUP",
                                statements.SELECT_MINUTES_FOR_ROLLUP.replace("timestamp >= ?", "timestamp > ?"))
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


@pytest.mark.parametrize("bug, says", [
    ("windows_close_without_waiting_for_the_lag", "dropped as late with a lag of at most"),
    ("health_blind_to_late_frames", "health said"),
    ("stamps_unbounded_rows", "ahead of the clock"),
    ("stamps_unbounded_flushed_until", "saved flushed_until"),
])
def test_the_timing_invariants_catch_a_planted_bug(monkeypatch, bug, says):
    """Each invariant on the exchange's clock against ours (invariants.check_timing)
    reports the bug it exists for: windows that do not wait for a lag within the
    bound, health that stays ok while frames are dropped as late, and stamps far ahead
    accepted as they are (a future row, flushed_until out of the clock's reach)."""
    from tracker import feed, feedtime

    if bug == "windows_close_without_waiting_for_the_lag":
        monkeypatch.setattr(feedtime.FeedLag, "close_delay", lambda self, now: 0)
    elif bug == "health_blind_to_late_frames":
        monkeypatch.setattr(feedtime.RecentCount, "observe", lambda self, now, total: 0)
    else:
        monkeypatch.setattr(feed, "MAX_CLOCK_AHEAD_MS", 10**15)
    for seed in range(200):
        if any(says in line for line in sim_world.run(seed).violations):
            return
    pytest.fail(f"no seed of 200 noticed the planted bug {bug!r}")
