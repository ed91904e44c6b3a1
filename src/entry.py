"""The Worker: JSON API, dashboard and its live WebSocket; tracking work goes to
the LighterTracker Durable Object(s)."""

from workers import Response, WorkerEntrypoint

from runtime.api import handle
from runtime.dashboard_hub import DashboardHub
from runtime.durable_object import LighterTracker
from tracker.config import BENCH_FLOOR_PATH, BENCH_FLOOR_VAR

__all__ = ["DashboardHub", "Default", "LighterTracker"]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        # The benchmark's floor (tools/bench/api.py): a bare Python Worker's answer,
        # measured in the same isolate as the routes. Off unless BENCH_FLOOR is set.
        if request.url.endswith(BENCH_FLOOR_PATH) and getattr(self.env, BENCH_FLOOR_VAR, None):
            return Response('{"ok": true}', headers={"content-type": "application/json"})
        return await handle(request, self.env)
