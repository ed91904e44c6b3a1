"""Prototype fixes, applied to a COPY of the tree by `python -m bench run --proto NAME`
or `python -m bench profile` (src/ itself is never touched). Each patch checks that the
code it changes is still there and fails loudly when the source has moved on.

  regex      tracker/protocol.py: book frames parsed by one full-match regex (JSON only for
             anything unusual; same results and errors: tests/unit/test_protocol.py passes)
  scan       tracker/protocol.py: the C JSON scanner called directly, fewer Python calls
  api-cache  runtime/api.py + runtime/http.py: GET /api/stats, /api/minutes, /api/overview
             answered from a per-isolate memo of the JSON text for 1 s
  no-breath  runtime/breath.py: BREATHE_EVERY_FRAMES = 0, the feed socket never lets the
             object in during a burst (the state before issue 18 defect 8's fix): what
             the breath costs the ingest hot path, `run --quick` against `run --quick --proto no-breath`
"""
from __future__ import annotations

from pathlib import Path

API_CACHE_TTL_MS = 1000

HTTP_OLD = "    return Response(json.dumps(body), status=status, headers={**JSON_HEADERS, **(headers or {})})"
HTTP_NEW = '''    global LAST
    text = json.dumps(body)
    LAST = (text, status, dict(headers or {}))
    return Response(text, status=status, headers={**JSON_HEADERS, **(headers or {})})


LAST = None  # bench prototype: the newest JSON answer (text, status, headers)


def json_text_response(text: str, status: int, headers: dict) -> Response:
    return Response(text, status=status, headers={**JSON_HEADERS, **headers})'''

API_OLD = "        return await HANDLERS[methods[method]](call)"
API_NEW = '''        key = (path, url.query) if method == "GET" and path in _BENCH_CACHED else None
        if key is not None:
            hit = _BENCH_CACHE.get(key)
            if hit is not None and js.Date.now() - hit[0] < %(ttl)d:
                return _bench_http.json_text_response(hit[1], hit[2], hit[3])
        _bench_http.LAST = None
        response = await HANDLERS[methods[method]](call)
        if key is not None and _bench_http.LAST is not None and _bench_http.LAST[1] == 200:
            _BENCH_CACHE[key] = (js.Date.now(), *_bench_http.LAST)
        return response''' % {"ttl": API_CACHE_TTL_MS}
API_HEAD = '''

from . import http as _bench_http  # noqa: E402  (bench prototype: API answer cache)

_BENCH_CACHED = {"/api/stats", "/api/minutes", "/api/overview"}
_BENCH_CACHE: dict = {}
'''


def _replace(path: Path, old: str, new: str, what: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"prototype {what}: the code it patches is not in {path.name} any more")
    path.write_text(text.replace(old, new, 1))


def api_cache(app: Path) -> None:
    runtime = app / "src" / "runtime"
    _replace(runtime / "http.py", HTTP_OLD, HTTP_NEW, "api-cache")
    _replace(runtime / "api.py", API_OLD, API_NEW, "api-cache")
    api = runtime / "api.py"
    api.write_text(api.read_text() + API_HEAD)


def apply(app: Path, names: list[str]) -> None:
    from .profile import patch_protocol

    for name in names:
        if name == "regex":
            patch_protocol(app / "src" / "tracker" / "protocol.py", "parse_frame_re")
        elif name == "scan":
            patch_protocol(app / "src" / "tracker" / "protocol.py", "parse_frame_scan")
        elif name == "api-cache":
            api_cache(app)
        elif name == "no-breath":
            from .saturation import without_breath

            without_breath(app)
        else:
            raise SystemExit(f"unknown prototype {name!r} (regex, scan, api-cache, no-breath)")


NAMES = ("regex", "scan", "api-cache", "no-breath")
