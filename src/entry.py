"""The Worker: JSON API, dashboard and its live WebSocket; tracking work goes to
the LighterTracker and ParadexTracker Durable Objects (one per exchange and shard)."""

from workers import Response, WorkerEntrypoint

from runtime import d1_meter
from runtime.api import handle
from runtime.dashboard_hub import DashboardHub
from runtime.durable_object import LighterTracker, ParadexTracker
from tracker.config import BENCH_FLOOR_PATH, BENCH_FLOOR_VAR, D1_METER_PATH, D1_METER_VAR

__all__ = ["DashboardHub", "Default", "LighterTracker", "ParadexTracker"]


_floor: list[bool] = []  # BENCH_FLOOR, read once per isolate


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        # The benchmark's floor (tools/bench/api.py): a bare Python Worker's answer,
        # measured in the same isolate as the routes. Off unless BENCH_FLOOR is set.
        if request.url.endswith(BENCH_FLOOR_PATH):
            if not _floor:
                _floor.append(bool(getattr(self.env, BENCH_FLOOR_VAR, None)))
            if _floor[0]:
                return Response('{"ok": true}', headers={"content-type": "application/json"})
        # D1's row counters for a test (tests/integration/test_d1_counts.py). Off unless D1_METER is set.
        if request.url.endswith(D1_METER_PATH) and request.method == "POST" and getattr(self.env, D1_METER_VAR, None):
            return await d1_meter.handle(request, self.env)
        return await handle(request, self.env)
