"""SQLite as D1 runs it and counts it: a small ctypes binding of the SQLite that
tools/d1sqlite/build.py compiles (workerd's version, with D1's row counters).

    db = D1Sqlite()                         # in memory
    db.script(schema_text)
    result = db.run("SELECT ...", (1, "x"))  # every row, and what D1 would bill
    result.rows, result.rows_read, result.rows_written, result.changes

Values bind and come back as D1 gives them to a Worker: None, int, float, str
(blobs are not used by this project). One statement at a time, stepped to its end,
like D1 does; `run` raises `D1SqliteError` with SQLite's message on any error.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / ".cache" / "d1sqlite" / "libd1sqlite.so"

SQLITE_OK, SQLITE_ROW, SQLITE_DONE = 0, 100, 101
SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB, SQLITE_NULL = 1, 2, 3, 4, 5
_TRANSIENT = ctypes.c_void_p(-1)


class D1SqliteError(Exception):
    """SQLite refused or failed a statement (its own message)."""


@dataclass
class Result:
    rows: list[dict] = field(default_factory=list)
    rows_read: int = 0
    rows_written: int = 0
    changes: int = 0
    trigger_changes: int = 0  # rows the statement's triggers inserted, updated or deleted


@dataclass(slots=True)
class _Prepared:
    stmt: ctypes.c_void_p
    params: int
    names: tuple[str, ...]


def _load(path: Path | None = None) -> ctypes.CDLL:
    path = path or LIBRARY
    if not path.is_file():
        raise D1SqliteError(f"{path} is missing: run `bash scripts/setup` (it builds D1's SQLite)")
    lib = ctypes.CDLL(str(path))
    p, i, i64, u64, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_uint64, ctypes.c_char_p
    sig = {
        "sqlite3_open": (i, [s, ctypes.POINTER(p)]),
        "sqlite3_close_v2": (i, [p]),
        "sqlite3_errmsg": (s, [p]),
        "sqlite3_prepare_v2": (i, [p, p, i, ctypes.POINTER(p), ctypes.POINTER(p)]),
        "sqlite3_reset": (i, [p]),
        "sqlite3_clear_bindings": (i, [p]),
        "sqlite3_finalize": (i, [p]),
        "sqlite3_step": (i, [p]),
        "sqlite3_bind_parameter_count": (i, [p]),
        "sqlite3_bind_null": (i, [p, i]),
        "sqlite3_bind_int64": (i, [p, i, i64]),
        "sqlite3_bind_double": (i, [p, i, ctypes.c_double]),
        "sqlite3_bind_text": (i, [p, i, s, i, p]),
        "sqlite3_column_count": (i, [p]),
        "sqlite3_column_name": (s, [p, i]),
        "sqlite3_column_type": (i, [p, i]),
        "sqlite3_column_int64": (i64, [p, i]),
        "sqlite3_column_double": (ctypes.c_double, [p, i]),
        "sqlite3_column_text": (p, [p, i]),
        "sqlite3_column_bytes": (i, [p, i]),
        "sqlite3_changes64": (i64, [p]),
        "sqlite3_total_changes64": (i64, [p]),
        "sqlite3_libversion": (s, []),
        "d1_rows": (u64, [p, i]),
        "d1_rows_reset": (None, [p]),
        "d1_run_json": (i, [p, ctypes.POINTER(p), ctypes.POINTER(i)]),
        "d1_free": (None, [p]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


_LIB: list[ctypes.CDLL] = []


def library() -> ctypes.CDLL:
    if not _LIB:
        _LIB.append(_load())
    return _LIB[0]


def version() -> str:
    return library().sqlite3_libversion().decode()


class D1Sqlite:
    """One database (":memory:" or a file path)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.lib = library()
        self.db = ctypes.c_void_p()
        if self.lib.sqlite3_open(path.encode(), ctypes.byref(self.db)) != SQLITE_OK:
            raise D1SqliteError(f"cannot open {path}")
        self._cache: dict[str, _Prepared] = {}

    def close(self) -> None:
        for prepared in self._cache.values():
            self.lib.sqlite3_finalize(prepared.stmt)
        self._cache.clear()
        if self.db:
            self.lib.sqlite3_close_v2(self.db)
            self.db = ctypes.c_void_p()

    def _error(self, what: str) -> D1SqliteError:
        return D1SqliteError(f"{self.lib.sqlite3_errmsg(self.db).decode()} ({what[:120]})")

    def _prepare(self, sql: str) -> _Prepared:
        prepared = self._cache.get(sql)
        if prepared is not None:
            return prepared
        lib = self.lib
        stmt = ctypes.c_void_p()
        data = ctypes.create_string_buffer(sql.encode())
        if lib.sqlite3_prepare_v2(self.db, data, len(data) - 1, ctypes.byref(stmt), None) != SQLITE_OK:
            raise self._error(sql)
        if not stmt:
            raise D1SqliteError(f"no statement in {sql[:120]!r}")
        names = tuple(lib.sqlite3_column_name(stmt, c).decode() for c in range(lib.sqlite3_column_count(stmt)))
        prepared = self._cache[sql] = _Prepared(stmt, lib.sqlite3_bind_parameter_count(stmt), names)
        return prepared

    def run(self, sql: str, params=()) -> Result:
        """Run one statement to its end; its rows and D1's counts for it."""
        lib = self.lib
        prepared = self._prepare(sql)
        stmt = prepared.stmt
        if prepared.params != len(params):
            raise D1SqliteError(f"{len(params)} values for {prepared.params} parameters ({sql[:120]})")
        for i, value in enumerate(params, start=1):
            if value is None:
                rc = lib.sqlite3_bind_null(stmt, i)
            elif isinstance(value, int):  # bool too
                rc = lib.sqlite3_bind_int64(stmt, i, int(value))
            elif isinstance(value, float):
                rc = lib.sqlite3_bind_double(stmt, i, value)
            elif isinstance(value, str):
                data = value.encode()
                rc = lib.sqlite3_bind_text(stmt, i, data, len(data), _TRANSIENT)
            else:
                raise D1SqliteError(f"cannot bind {type(value).__name__}")
            if rc != SQLITE_OK:
                raise self._error(sql)
        lib.d1_rows_reset(stmt)
        total_before = lib.sqlite3_total_changes64(self.db)
        out, size = ctypes.c_void_p(), ctypes.c_int()
        try:
            # Every row in one call, as JSON (build.py's d1_run_json): a ctypes call per
            # value made the simulation spend more time here than in the tracker.
            if lib.d1_run_json(stmt, ctypes.byref(out), ctypes.byref(size)) != SQLITE_DONE:
                raise self._error(sql)
            try:
                values = json.loads(ctypes.string_at(out, size.value)) if size.value > 2 else []
            finally:
                lib.d1_free(out)
            names = prepared.names
            changes = int(lib.sqlite3_changes64(self.db)) if not names else 0
            return Result([dict(zip(names, row)) for row in values], int(lib.d1_rows(stmt, 0)),
                          int(lib.d1_rows(stmt, 1)), changes,
                          # Rows triggers changed: all changes since, less the statement's own.
                          int(lib.sqlite3_total_changes64(self.db)) - total_before - changes)
        finally:
            lib.sqlite3_reset(stmt)
            lib.sqlite3_clear_bindings(stmt)

    def script(self, sql: str) -> None:
        """Every statement of `sql` in turn (a schema file; comments allowed)."""
        lib = self.lib
        data = sql.encode()
        buf = ctypes.create_string_buffer(data)
        start = ctypes.addressof(buf)
        end = start + len(data)
        pos = start
        while pos < end:
            stmt, tail = ctypes.c_void_p(), ctypes.c_void_p()
            if lib.sqlite3_prepare_v2(self.db, ctypes.c_void_p(pos), end - pos, ctypes.byref(stmt), ctypes.byref(tail)) != SQLITE_OK:
                raise self._error(ctypes.string_at(pos, min(120, end - pos)).decode(errors="replace"))
            if stmt:
                try:
                    rc = lib.sqlite3_step(stmt)
                    while rc == SQLITE_ROW:
                        rc = lib.sqlite3_step(stmt)
                    if rc != SQLITE_DONE:
                        raise self._error("script")
                finally:
                    lib.sqlite3_finalize(stmt)
            if not tail.value or tail.value <= pos:
                break
            pos = tail.value
