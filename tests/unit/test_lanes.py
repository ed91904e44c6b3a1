"""Lanes: a step's failure is reported and goes no further; a lane runs one task at a
time, frees itself when the task ends and then runs `after`; `within` waits at most."""

from __future__ import annotations

import asyncio

from tracker.lanes import Lanes, within


class Shard:
    """What a shard gives its lanes: a spawn, a failure report, an `after` step."""

    def __init__(self, after_fails: bool = False) -> None:
        self.failures: list[tuple[str, str]] = []
        self.after_runs = 0
        self.after_fails = after_fails
        self.lanes = Lanes(self.spawn, self.failed, self.after)

    @staticmethod
    def spawn(coro, name: str) -> asyncio.Future:
        return asyncio.get_running_loop().create_task(coro, name=name)

    def failed(self, name: str, exc: Exception) -> None:
        self.failures.append((name, f"{type(exc).__name__}: {exc}"))

    async def after(self) -> None:
        self.after_runs += 1
        if self.after_fails:
            raise RuntimeError("alarm write refused")


async def boom(what: str) -> None:
    raise ValueError(what)


def test_a_failed_step_is_reported_by_name_and_the_caller_carries_on():
    async def scenario():
        shard = Shard()
        done = []
        await shard.lanes.step("feed", boom, "socket gone")
        await shard.lanes.step("close windows", lambda: _append(done, "closed"))
        return shard.failures, done

    failures, done = asyncio.run(scenario())
    assert failures == [("feed", "ValueError: socket gone")]
    assert done == ["closed"]


async def _append(into: list, value) -> None:
    into.append(value)


def test_a_busy_lane_starts_nothing_new_and_a_free_one_does():
    async def scenario():
        shard = Shard()
        gate = asyncio.Event()
        runs = []

        async def d1(n: int) -> None:
            runs.append(n)
            await gate.wait()

        first = shard.lanes.start("d1", d1, 1)
        await asyncio.sleep(0)
        again = shard.lanes.start("d1", d1, 2)  # busy: the same task, nothing new
        other = shard.lanes.start("alerts", _append, runs, "alert")  # another lane runs beside it
        busy_while_waiting = shard.lanes.busy("d1")
        await other
        gate.set()
        await first
        freed = not shard.lanes.busy("d1") and shard.lanes.task("d1") is None
        third = shard.lanes.start("d1", _append, runs, 3)
        await third
        return first is again, busy_while_waiting, freed, runs, shard.after_runs

    same, busy, freed, runs, after_runs = asyncio.run(scenario())
    assert same and busy and freed
    assert runs == [1, "alert", 3]
    assert after_runs == 3  # once after each task that ran, none for the refused start


def test_a_lanes_failure_is_reported_under_the_lanes_name_and_after_still_runs():
    async def scenario():
        shard = Shard(after_fails=True)
        await shard.lanes.start("markets", boom, "REST 503")
        return shard.failures, shard.after_runs, shard.lanes.busy("markets")

    failures, after_runs, busy = asyncio.run(scenario())
    assert failures == [("markets", "ValueError: REST 503"),
                        ("schedule", "RuntimeError: alarm write refused")]
    assert after_runs == 1 and not busy


def returns_at_once(coro) -> bool:
    """The coroutine ends without suspending once (nothing awaited that waits)."""
    try:
        coro.send(None)
    except StopIteration:
        return True
    coro.close()
    return False


def test_within_waits_for_the_tasks_at_most_the_time_given():
    async def scenario():
        loop = asyncio.get_running_loop()
        never = loop.create_future()
        quick = loop.create_task(asyncio.sleep(0))
        await within(50, never, quick, None)  # returns, though `never` never ends
        states = (quick.done(), never.done())
        at_once = (returns_at_once(within(0, never)),  # no time to wait
                   returns_at_once(within(10_000, quick)),  # already done
                   returns_at_once(within(10_000, never)))  # must wait: suspends
        never.cancel()
        return states, at_once

    states, at_once = asyncio.run(scenario())
    assert states == (True, False)
    assert at_once == (True, True, False)
