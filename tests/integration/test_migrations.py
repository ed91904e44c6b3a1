"""`wrangler d1 migrations apply` is the one command for a fresh install and for every
upgrade, from any earlier release (issue 19, item 5).

Each starting point is a real local D1 (an empty one that `wrangler d1 execute --local
--persist-to` made, copied, into which each release's own SQL went as that release told
its users to run it, WITH rows and WITHOUT a d1_migrations table: the SQL straight into
the database file, a wrangler run per start costs seconds and tests nothing more); then
`wrangler d1 migrations apply DB --local --persist-to` runs migrations/,
exactly as `--remote` would on an account. Afterwards every row is still there with
its values, the schema equals what schema.sql makes (tables, columns, keys, indexes),
and applying again applies nothing (shown once: d1_migrations lists every file on
every starting point). The database file is read directly (it is SQLite).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import devstack
from schema_shape import shape

ROOT = devstack.ROOT
RELEASES = ROOT / "tests" / "fixtures" / "releases"
V1 = (ROOT / "tests" / "fixtures" / "schema_v1.sql").read_text()
UPGRADES = [(RELEASES / f).read_text() for f in ("0002_market_index_key.sql", "0003_depth_hours.sql", "0004_paradex.sql")]
STARTS = {
    "empty": [],
    "release 1": [V1],
    "after 0002": [V1, *UPGRADES[:1]],
    "after 0003": [V1, *UPGRADES[:2]],
    "after 0004": [V1, *UPGRADES],
    "today's schema.sql by hand": [(ROOT / "schema.sql").read_text()],
}
T0 = 1_778_137_200_000  # a whole hour


def _memory(files: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    for text in files:
        db.executescript(text)
    return db


def _rows_for(db: sqlite3.Connection) -> dict[str, list[dict]]:
    """Rows for every table the starting point has, in the columns it has."""
    rows: dict[str, list[dict]] = {}
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    for table in tables:
        columns = [(r[1], r[2].upper()) for r in db.execute(f"PRAGMA table_info({table})")]
        out = []
        for n in range(6 if table.endswith(("snapshots", "minutes", "hours")) else 2):
            row = {}
            for i, (name, kind) in enumerate(columns):
                if name == "symbol":
                    row[name] = f"SYM{n % 3}"
                elif name in ("market_index", "shard"):
                    row[name] = n % 3 if table.endswith(("snapshots", "minutes", "hours")) else n
                elif name == "timestamp":
                    row[name] = T0 + (n // 3) * 60_000
                elif name in ("market_type", "status"):
                    row[name] = "perp" if name == "market_type" else "active"
                elif kind == "INTEGER":
                    row[name] = 1000 * n + i
                elif kind == "TEXT":  # base_asset...: a TEXT column keeps a string (a REAL would come back as text)
                    row[name] = f"T{n}.{i}"
                else:
                    row[name] = 100.5 + n + i / 8
            out.append(row)
        rows[table] = out
    return rows


def _start_file(files: list[str], rows: dict[str, list[dict]], path: Path) -> None:
    lines = list(files)
    for table, table_rows in rows.items():
        for row in table_rows:
            values = ", ".join(json.dumps(v) if isinstance(v, (int, float)) else f"'{v}'" for v in row.values())
            lines.append(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({values});")
    path.write_text("\n".join(lines) + "\n")


def _database_file(persist: Path) -> Path:
    (found,) = [p for p in (persist / "v3" / "d1").rglob("*.sqlite") if "metadata" not in p.name]
    return found


def _empty_d1(tmp: Path) -> Path:
    """A `--persist-to` folder with an empty local D1 in it, made by wrangler."""
    persist = tmp / "empty_d1"
    noop = tmp / "noop.sql"
    noop.write_text("SELECT 1;\n")
    devstack.apply_schema(persist, noop)
    return persist


def _one_start(name: str, files: list[str], tmp: Path, empty_d1: Path) -> dict:
    persist = tmp / name.replace(" ", "_").replace("'", "")
    rows = _rows_for(_memory(files))
    out = {"name": name, "rows": rows}
    if files:
        start = persist.with_suffix(".sql")
        _start_file(files, rows, start)
        shutil.copytree(empty_d1, persist)
        db = sqlite3.connect(_database_file(persist))
        with db:
            db.executescript(start.read_text())
        db.close()
    out["first"] = devstack.apply_migrations(persist)
    # Applying again: wrangler reads d1_migrations and applies nothing. Once is enough
    # to show it (every start's d1_migrations is checked to list every file).
    out["again"] = devstack.apply_migrations(persist) if name == "after 0004" else None
    db = sqlite3.connect(_database_file(persist))
    db.row_factory = sqlite3.Row
    query = lambda q: [dict(r) for r in db.execute(q)]  # noqa: E731
    out["shape"] = shape(query)
    out["after"] = {table: query(f"SELECT * FROM {table}") for table in rows}
    out["applied"] = [r["name"] for r in query("SELECT name FROM d1_migrations ORDER BY id")]
    return out


def test_every_earlier_release_upgrades_to_schema_sql_with_every_row(tmp_path):
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    want = shape(lambda q: [dict(r) for r in _memory([(ROOT / "schema.sql").read_text()]).execute(q)])
    empty_d1 = _empty_d1(tmp_path)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda item: _one_start(*item, tmp_path, empty_d1), STARTS.items()))
    for r in results:
        name = r["name"]
        assert r["shape"] == want, f"{name}: the schema after the migrations differs from schema.sql"
        assert r["applied"] == migrations, name
        if r["again"] is not None:
            assert "No migrations to apply" in r["again"], f"{name}: a second apply did something:\n{r['again'][-800:]}"
        for table, before in r["rows"].items():
            after = r["after"][table]
            assert len(after) == len(before), f"{name}: {table} had {len(before)} rows, has {len(after)}"
            keyed = {tuple(row.get(k) for k in ("market_index", "timestamp", "shard")): row for row in after}
            for row in before:
                got = keyed[tuple(row.get(k) for k in ("market_index", "timestamp", "shard"))]
                assert {k: got[k] for k in row} == row, f"{name}: {table} row changed"
                # A column the starting point did not have gets its default.
                for missing in set(got) - set(row):
                    assert got[missing] in (None, 0), f"{name}: {table}.{missing} = {got[missing]!r}"
    # The depth columns of a release-1 window are NULL with 0 samples, not copied from elsewhere.
    release1 = next(r for r in results if r["name"] == "release 1")
    assert {(w["bid_depth_50"], w["depth_samples"]) for w in release1["after"]["lighter_snapshots"]} == {(None, 0)}
