"""Every D1 call of a simulated run, in order, as the trackers sent them, and the
same calls replayed: on a fresh simulated D1 (tests/sim/cloud.py SimD1, what the
simulation and `python -m bench d1cost` count) or on D1's SQLite alone (tools/d1sqlite,
no bookkeeping triggers). tests/sim/test_d1_usage.py and
tests/integration/test_d1_counts.py hold the simulated D1's counts to those."""

from __future__ import annotations

import random

from cloud import SCHEMA, SimD1
from d1sqlite import D1Sqlite

# (is a batch, [(sql, params), ...]): one db.batch() (a transaction), or one read.
Call = tuple[bool, list]
COUNTERS = ("rows_read", "rows_written", "changes")


def record(world) -> list[Call]:
    """Run `world`, recording every call of the trackers to its D1."""
    calls: list[Call] = []
    run_batch, run_query = world.d1.execute_batch, world.d1.query

    def execute_batch(statements):
        statements = [(text, list(params)) for text, params in statements]
        calls.append((True, statements))
        return run_batch(statements)

    def query(text, *params):
        calls.append((False, [(text, list(params))]))
        return run_query(text, *params)

    world.d1.execute_batch, world.d1.query = execute_batch, query
    world.run()
    assert not world.errors, world.errors[:3]
    return calls


class _Clock:
    @staticmethod
    def now_ms() -> int:
        return 0


def replay_simulated(calls: list[Call]) -> tuple[list[dict], SimD1]:
    """Each statement's meta (and rows returned, for a read) on a fresh SimD1."""
    d1 = SimD1(loop=_Clock(), rng=random.Random(0))
    metas = []
    for is_batch, statements in calls:
        if is_batch:
            metas += [{**m, "rows": None} for m in d1.execute_batch(statements)]
        else:
            ((text, params),) = statements
            rows, meta = d1._run(text, params)
            metas.append({**meta, "rows": len(rows)})
    return metas, d1


def replay_plain(calls: list[Call]) -> list[dict]:
    """Each statement's meta on D1's SQLite with schema.sql and nothing else."""
    db = D1Sqlite()
    db.script(SCHEMA)
    metas = []
    for is_batch, statements in calls:
        if is_batch:
            db.run("BEGIN")
        for text, params in statements:
            result = db.run(text, tuple(params))
            metas.append({"rows_read": result.rows_read, "rows_written": result.rows_written,
                          "changes": result.changes, "rows": None if is_batch else len(result.rows)})
        if is_batch:
            db.run("COMMIT")
    return metas


def differences(names: list[str], expected: list[dict], actual: list[dict]) -> list[str]:
    """Statements whose counters differ, grouped by statement: a line per name."""
    by_name: dict[str, list] = {}
    for name, want, got in zip(names, expected, actual, strict=True):
        keys = COUNTERS + (("rows",) if want["rows"] is not None and got.get("rows") is not None else ())
        if any(want[k] != got[k] for k in keys):
            by_name.setdefault(name, []).append(f"{[want[k] for k in keys]} vs {[got[k] for k in keys]}")
    return [f"{name}: {len(found)} differ ({', '.join(keys_ for keys_ in COUNTERS)}[, rows]), e.g. {found[0]} (simulated vs the other)"
            for name, found in sorted(by_name.items())]
