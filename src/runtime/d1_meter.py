"""D1's own row counters, for a test: POST /_test/d1meter (src/entry.py, only with the
D1_METER var set; never deployed).

Body: {"calls": [{"batch": bool, "statements": [[sql, [params...]], ...]}, ...]}. The
calls run in order; each through the same binding as the tracker's (runtime/d1.py):
one `db.batch()` (one transaction, the way the tracker writes) when `batch`, else each
statement alone (the way the tracker and the API read). The answer gives every
statement's `meta` as D1 reports it (`rows_read`, `rows_written`, `changes`) and how
many rows it returned, so tests/integration/test_d1_counts.py can hold the simulated D1
(tests/sim/cloud.py on tools/d1sqlite) to D1's counts, statement by statement.
"""

from __future__ import annotations

import json

from .d1 import _field
from .http import json_response

COUNTERS = ("rows_read", "rows_written", "changes")


async def handle(request, env):
    body = json.loads(await request.text())
    db = env.DB
    metas = []
    for call in body["calls"]:
        prepared = [db.prepare(sql).bind(*params) for sql, params in call["statements"]]
        try:
            results = await db.batch(prepared) if call.get("batch") else [await p.all() for p in prepared]
        except Exception as exc:
            return json_response({"error": f"{type(exc).__name__}: {exc}", "done": len(metas)}, 400)
        for result in results:
            meta = _field(result, "meta") or {}
            metas.append({**{c: meta.get(c) for c in COUNTERS}, "rows": len(_field(result, "results") or [])})
    return json_response({"metas": metas})
