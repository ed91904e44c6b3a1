"""JSON responses and API errors."""

from __future__ import annotations

import json

from workers import Response

JSON_HEADERS = {"content-type": "application/json; charset=utf-8", "cache-control": "no-store"}


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers={**JSON_HEADERS, **(headers or {})})


def error_response(message: str, status: int = 400, headers: dict | None = None) -> Response:
    return json_response({"error": message}, status, headers)
