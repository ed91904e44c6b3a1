"""Every outside call has a deadline (tracker/ports.py): the call is abandoned (its task
cancelled) and DeadlinePassed says which call and after how long; a call that answers
in time passes its answer or its error through unchanged."""

from __future__ import annotations

import asyncio

import pytest

from tracker.ports import DeadlinePassed, Deadlines, with_deadlines


class Hung:
    """Every call waits for an answer that never comes; records what was cancelled."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def _wait(self, what: str):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(what)
            raise

    async def query(self, sql, *params):
        return await self._wait("query")

    async def batch(self, statements):
        return await self._wait("batch")

    async def get_text(self, url):
        return await self._wait("get")

    async def post_json(self, url, body):
        return await self._wait("post")

    async def send_markets(self, shard, payload):
        return await self._wait("send")


DEADLINES = Deadlines(rest_ms=30, d1_ms=20, webhook_ms=10, peer_ms=40)


@pytest.mark.parametrize("call, message", [
    (lambda db, http, peers: db.query("SELECT 1"), "D1 query timed out after 0.02 s"),
    (lambda db, http, peers: db.batch([("SELECT 1", ())]), "D1 batch timed out after 0.02 s"),
    (lambda db, http, peers: http.get_text("http://x/api"), "request timed out after 0.03 s"),
    (lambda db, http, peers: http.post_json("http://x/hook", {}), "webhook post timed out after 0.01 s"),
    (lambda db, http, peers: peers.send_markets(2, {}), "hand-over to shard 2 timed out after 0.04 s"),
])
def test_a_call_that_never_answers_is_abandoned_at_its_deadline(call, message):
    hung = Hung()
    db, http, peers = with_deadlines(hung, hung, hung, DEADLINES)

    async def scenario():
        with pytest.raises(DeadlinePassed) as raised:
            await call(db, http, peers)
        return str(raised.value)

    assert asyncio.run(scenario()) == message
    assert len(hung.cancelled) == 1  # the call's task was cancelled, not left running


def test_a_call_within_its_deadline_answers_or_fails_as_it_would():
    class Quick:
        async def query(self, sql, *params):
            return [{"n": 1}]

        async def batch(self, statements):
            raise RuntimeError("D1_ERROR: no such table")

    db, _, _ = with_deadlines(Quick(), None, None, DEADLINES)
    assert asyncio.run(db.query("SELECT 1")) == [{"n": 1}]
    with pytest.raises(RuntimeError, match="no such table"):
        asyncio.run(db.batch([]))


def test_a_passed_deadline_is_a_timeout_error():
    """Callers that handle timeouts generally (TimeoutError) handle this one too."""
    assert issubclass(DeadlinePassed, TimeoutError)
