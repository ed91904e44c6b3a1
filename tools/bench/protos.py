"""Prototype fixes, applied to a COPY of the tree by `python -m bench run --proto NAME`
or `python -m bench profile` (src/ itself is never touched). Each patch checks that the
code it changes is still there and fails loudly when the source has moved on.

  regex      tracker/protocol.py: book frames parsed by one full-match regex (JSON only for
             anything unusual; same results and errors: tests/unit/test_protocol.py passes)
  scan       tracker/protocol.py: the C JSON scanner called directly, fewer Python calls
  api-cache  tracker/routes.py: GET /api/stats, /api/minutes, /api/overview
             answered from a per-isolate memo of the JSON text for 1 s
  no-breath  tracker/config.py: BREATHE_EVERY_FRAMES = 0, the feed socket never lets the
             object in during a burst (the state before issue 18 defect 8's fix): what
             the breath costs the ingest hot path, `run --quick` against `run --quick --proto no-breath`
"""
from __future__ import annotations

from pathlib import Path

API_CACHE_TTL_MS = 1000

API_OLD = "        return await HANDLERS[methods[method]](call)"
API_NEW = '''        key = (path, url.query) if method == "GET" and path in _BENCH_CACHED else None
        if key is not None:
            hit = _BENCH_CACHE.get(key)
            if hit is not None and ports.clock.now_ms() - hit[0] < %(ttl)d:
                return hit[1]
        answer = await HANDLERS[methods[method]](call)
        if key is not None and answer.status == 200 and isinstance(answer.body, str):
            _BENCH_CACHE[key] = (ports.clock.now_ms(), answer)
        return answer''' % {"ttl": API_CACHE_TTL_MS}
API_HEAD = '''

_BENCH_CACHED = {"/api/stats", "/api/minutes", "/api/overview"}  # bench prototype: API answer cache
_BENCH_CACHE: dict = {}
'''


def _replace(path: Path, old: str, new: str, what: str) -> None:
    text = path.read_text()
    if old not in text:
        raise RuntimeError(f"prototype {what}: the code it patches is not in {path.name} any more")
    path.write_text(text.replace(old, new, 1))


def api_cache(app: Path) -> None:
    routes = app / "src" / "tracker" / "routes.py"
    _replace(routes, API_OLD, API_NEW, "api-cache")
    routes.write_text(routes.read_text() + API_HEAD)


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
