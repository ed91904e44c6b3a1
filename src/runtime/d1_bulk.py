"""D1 rows in bulk, for GET /api/export's pages.

The workers SDK's D1 wrapper converts a result to Python value by value, in
Python (`python_from_rpc`, then a walk replacing JS nulls), and builds a dict per
row. For 2000-row export pages that conversion is most of the Python-side cost.
Here the runtime's own `JSON.stringify` serialises the page's `raw()` rows (arrays
in SELECT order) in one call and CPython's C json parser reads them back: the
same values, NULL as None, in a fraction of the time. Measured under wrangler
dev with 264k minute rows: the D1 paging loop went from ~9-10 s to ~5-6 s.

The raw D1 binding comes from the `cloudflare:workers` module's env (public API),
not from the SDK wrapper's internals.
"""

from __future__ import annotations

import json

import js
from workers import import_from_javascript


async def query_lists(binding: str, sql: str, *params) -> list[list]:
    """The rows of `sql` as lists, columns in SELECT order."""
    db = getattr(import_from_javascript("cloudflare:workers").env, binding)
    rows = await db.prepare(sql).bind(*params).raw()
    return json.loads(str(js.JSON.stringify(rows)))
