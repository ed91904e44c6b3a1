"""The alarm's steps, and the side tasks it starts, each in a lane of its own.

Failure handling lives here, in one place: a step that raises is logged with its
name and counted (`on_failure`), and whatever called it carries on. So an alarm
always reaches its last step (setting the next alarm), and nothing escapes into the
runtime's own alarm retries.

The steps that wait on the outside world (REST, D1, the webhook) run beside the
alarm, each in its lane: a lane runs one task at a time, and a lane found busy is
left be (its task ends by its deadlines at the latest; the next alarm starts it
again). So a REST call hanging for minutes only delays the market list, and a
hanging D1 only delays D1. When a lane's task ends, `after` runs (as a step of its
own): the shard sets the alarm again for what is due then. A lane outlives the
alarm that started it: a Durable Object stays active while it waits on outbound
I/O (developers.cloudflare.com/durable-objects/api/state/#waituntil).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class Lanes:
    def __init__(self, spawn: Callable[[Awaitable, str], asyncio.Future],
                 on_failure: Callable[[str, Exception], None],
                 after: Callable[[], Awaitable[None]]) -> None:
        self._spawn = spawn  # runs a coroutine in the background (Ports.spawn)
        self._on_failure = on_failure  # a step named so failed with this
        self._after = after  # run when a lane's task ends (the "schedule" step)
        self._tasks: dict[str, asyncio.Future] = {}  # lane -> its task

    async def step(self, name: str, fn: Callable[..., Awaitable], *args) -> None:
        """Run one step; a failure is reported and leaves the rest running."""
        try:
            await fn(*args)
        except Exception as exc:
            self._on_failure(name, exc)

    def start(self, lane: str, fn: Callable[..., Awaitable], *args) -> asyncio.Future:
        """Run the step `fn(*args)` in `lane`, unless the lane is busy (then nothing
        new starts); returns the lane's task."""
        task = self._tasks.get(lane)
        if task is None or task.done():

            async def run() -> None:
                try:
                    await self.step(lane, fn, *args)
                finally:
                    if self._tasks.get(lane) is task:
                        del self._tasks[lane]
                await self.step("schedule", self._after)

            task = self._tasks[lane] = self._spawn(run(), lane)
        return task

    def task(self, lane: str) -> asyncio.Future | None:
        """The lane's task while it has one."""
        return self._tasks.get(lane)

    def busy(self, lane: str) -> bool:
        task = self._tasks.get(lane)
        return task is not None and not task.done()


async def within(ms: int, *tasks: asyncio.Future | None) -> None:
    """Wait for `tasks` to end, `ms` at most (they go on regardless)."""
    pending = {t for t in tasks if t is not None and not t.done()}
    if pending and ms > 0:
        await asyncio.wait(pending, timeout=ms / 1000)
