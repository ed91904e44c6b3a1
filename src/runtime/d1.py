"""D1 access: bound statements in, Python rows out.

`env.DB` reaches Python through the workers SDK's binding wrapper, which turns
D1's results into plain Python (a dict with "results" and "meta"). Integers bound
to SQL must stay below 2^53 (D1 refuses JS BigInt); every id and timestamp the
tracker binds is, and market ids are checked when parsed.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracker.ports import D1_BATCH_STATEMENTS

# D1 runs a batch as one transaction; big flushes are split so one batch stays small
# (each part is then its own transaction: the Database port says so).
BATCH_SIZE = D1_BATCH_STATEMENTS

Statement = tuple[str, Sequence]


def _field(result, name: str):
    if isinstance(result, dict):
        return result.get(name)
    value = getattr(result, name, None)
    return value.to_py() if hasattr(value, "to_py") else value


async def query(db, sql: str, *params) -> list[dict]:
    result = await db.prepare(sql).bind(*params).all()
    return list(_field(result, "results") or [])


async def first(db, sql: str, *params) -> dict | None:
    rows = await query(db, sql, *params)
    return rows[0] if rows else None


async def run_batch(db, statements: list[Statement]) -> list[dict]:
    """Run statements in batches of BATCH_SIZE; returns each statement's `meta`
    (changes, rows_written, duration, ...). Raises on failure."""
    metas = []
    for i in range(0, len(statements), BATCH_SIZE):
        chunk = statements[i : i + BATCH_SIZE]
        results = await db.batch([db.prepare(sql).bind(*params) for sql, params in chunk])
        metas += [_field(result, "meta") or {} for result in results]
    return metas


def rows_written(metas: list[dict]) -> int:
    return sum(int(meta.get("rows_written") or 0) for meta in metas)
