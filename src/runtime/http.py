"""JSON responses (the tracker objects' answers; the Worker's routes make theirs in
tracker/routes.py)."""

from __future__ import annotations

import json

from workers import Response

from tracker.routes import JSON_HEADERS


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers={**JSON_HEADERS, **(headers or {})})
