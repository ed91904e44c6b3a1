"""The Worker: JSON API, dashboard and its live WebSocket; tracking work goes to
the LighterTracker Durable Object(s)."""

from workers import WorkerEntrypoint

from runtime.api import handle
from runtime.durable_object import LighterTracker

__all__ = ["Default", "LighterTracker"]


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await handle(request, self.env)
