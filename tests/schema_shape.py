"""A database's schema as comparable data: tables, columns, keys and indexes.

`shape(query)` takes any `query(sql) -> list[dict]` (sqlite3, tools/d1sqlite, or a
D1 read under wrangler) and ignores SQLite's, D1's and wrangler's own tables."""

from __future__ import annotations

from collections.abc import Callable

Query = Callable[[str], list[dict]]
OWN = ("sqlite_", "_cf_", "d1_migrations")


def shape(query: Query) -> dict:
    tables = [r["name"] for r in query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
              if not r["name"].startswith(OWN)]
    out = {}
    for table in tables:
        (sql,) = [r["sql"] for r in query(f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{table}'")]
        columns = [(r["name"], r["type"].upper(), r["notnull"], r["dflt_value"], r["pk"])
                   for r in query(f"PRAGMA table_info({table})")]
        indexes = []
        for index in query(f"PRAGMA index_list({table})"):
            keys = tuple(r["name"] for r in query(f"PRAGMA index_info('{index['name']}')"))
            # SQLite names the indexes of a key or UNIQUE itself (and renames them with the table).
            name = index["name"] if index["origin"] == "c" else index["origin"]
            indexes.append((name, index["unique"], keys))
        out[table] = {"columns": columns, "without_rowid": "WITHOUT ROWID" in sql.upper(),
                      "indexes": sorted(indexes)}
    return out
