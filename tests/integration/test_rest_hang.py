"""A call that hangs, inside workerd: the deadline of tracker/ports.py is kept by
asyncio.wait_for under Pyodide (its timer fires, the awaiting task is cancelled and
the fetch aborted), and the alarm goes on closing windows meanwhile (issue 18,
defect 3). The deterministic simulation covers every hang; this checks the one thing
it cannot: that the runtime really gives up on a JS promise."""

from __future__ import annotations

import time

import pytest

from conftest import wait_until

pytestmark = pytest.mark.timeout(240)

REST_DEADLINE_S = 15  # tracker.ports.Deadlines.rest_ms
HANG_S = 45


def test_a_hung_market_list_is_given_up_at_its_deadline_and_windows_keep_closing(worker, simulator):
    assert worker.admin_post("/api/start").status_code == 200
    worker.wait_json("/api/stats", lambda s: s["connected"] and s["validBooks"] == s["markets"], timeout=90)
    log_before = len(worker.log_text())
    flushed_before = worker.get_json("/api/stats")["windowsFlushed"]

    # Shard 0's next read of the market list (every 5 s in this session) answers only
    # after HANG_S seconds.
    began = time.monotonic()
    simulator.control("rest_delay", seconds=HANG_S, count=1)
    line = wait_until(
        lambda: [ln for ln in worker.log_text()[log_before:].splitlines()
                 if "could not load markets" in ln and f"request timed out after {REST_DEADLINE_S} s" in ln],
        timeout=HANG_S, interval=0.5, what="the market list given up at its deadline",
    )
    gave_up = time.monotonic() - began
    assert gave_up < HANG_S - 10, f"given up after {gave_up:.0f} s: the hung call was waited out ({line})"

    # The alarm went on while REST hung: windows closed and reached D1 before the hung
    # answer came (a window closes every 15 s; the machine may be slow to show it).
    wait_until(lambda: worker.get_json("/api/stats")["windowsFlushed"] > flushed_before,
               timeout=max(1.0, began + HANG_S - time.monotonic()), interval=0.5,
               what="a window flushed while the market list hung")
    # And the list is read again after the retry delay, without waiting for the hung answer.
    refreshed = worker.get_json("/api/stats")["shards"][0]["marketsRefreshedAt"]
    wait_until(lambda: worker.get_json("/api/stats")["shards"][0]["marketsRefreshedAt"] > refreshed,
               timeout=30, interval=0.5, what="the next read of the market list")
