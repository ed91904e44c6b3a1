"""GET /api/export's body, as text pieces written one page of rows at a time.

Pure: the Worker pages through D1 (keyset cursor, see sql.LIGHTER.API_EXPORT_MINUTES_PAGE)
and hands each page to an `ExportFormat`; nothing here ever holds more than one
page. A page is a list of rows, each a list of values in EXPORT_COLUMNS order (the
SELECT's order): no dict per row on the bulk path. CSV is RFC 4180 (header row,
CRLF line ends, quoting only when needed); JSON is the same document
GET /api/minutes answers, {"minutes": [...], "count": n}, with rows oldest first
(or, for ?resolution=hours, the one GET /api/hours answers, {"hours": [...], ...}).
Hour rows have the minute rows' columns.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence

from .sql import MINUTE_COLUMNS
from .validation import MAX_TIMESTAMP_MS

EXPORT_COLUMNS = MINUTE_COLUMNS
_TIMESTAMP = EXPORT_COLUMNS.index("timestamp")
_SYMBOL = EXPORT_COLUMNS.index("symbol")
# Rows per D1 query: big enough that a day of 200 markets (288k rows) is ~150
# queries, small enough that one page (~0.5 MB of CSV) is a modest allocation.
PAGE_SIZE = 2000
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}


Row = Sequence  # one row's values, in EXPORT_COLUMNS order


def next_cursor(rows: Sequence[Row]) -> tuple[int, str]:
    """The keyset cursor after a page: its last row's (timestamp, symbol)."""
    last = rows[-1]
    return int(last[_TIMESTAMP]), str(last[_SYMBOL])


def slice_ms(row_ms: int, markets: int) -> int:
    """An every-symbol page's time slice: about PAGE_SIZE rows when `markets` markets
    each have a row every `row_ms` (the tables have no timestamp index: a page is read
    per market along its key, so it must be bounded in time, not only in rows)."""
    return row_ms * max(1, PAGE_SIZE // max(1, markets))


def first_cursor(from_ms: int) -> tuple[int, str]:
    """Every symbol sorts after "", so (from_ms, "") starts at from_ms inclusive."""
    return from_ms, ""


class ExportFormat:
    """Writes the document in pieces: `begin()`, then `page(rows)` per page, then `end()`."""

    def __init__(self) -> None:
        self.count = 0

    def begin(self) -> str:
        raise NotImplementedError

    def page(self, rows: Sequence[Row]) -> str:
        raise NotImplementedError

    def end(self) -> str:
        raise NotImplementedError


class CsvExport(ExportFormat):
    def begin(self) -> str:
        return self._lines([EXPORT_COLUMNS])

    def page(self, rows: Sequence[Row]) -> str:
        self.count += len(rows)
        # None (a NULL twap_mid) is written as an empty field by the csv module.
        return self._lines(rows)

    def end(self) -> str:
        return ""

    @staticmethod
    def _lines(records) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows(records)
        return out.getvalue()


class JsonExport(ExportFormat):
    def __init__(self, key: str = "minutes") -> None:
        super().__init__()
        self.key = key

    def begin(self) -> str:
        return '{"' + self.key + '":['

    def page(self, rows: Sequence[Row]) -> str:
        if not rows:
            return ""
        # One json.dumps call per page; [1:-1] drops the list's brackets.
        text = json.dumps([dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows], allow_nan=False)[1:-1]
        separator = "," if self.count else ""
        self.count += len(rows)
        return separator + text

    def end(self) -> str:
        return f'],"count":{self.count}}}'


def make_format(name: str, resolution: str = "minutes") -> ExportFormat:
    return CsvExport() if name == "csv" else JsonExport(resolution)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export_filename(symbol: str | None, from_ms: int, to_ms: int, fmt: str, resolution: str = "minutes") -> str:
    """lighter-<minutes|hours>-<symbol|all>[-<from>][-<to>].<fmt>, safe in a header and on a
    disk (symbols such as "ETH/USDC" must not become a path)."""
    parts = [f"lighter-{resolution}", _UNSAFE.sub("_", symbol) if symbol else "all"]
    if from_ms > 0:
        parts.append(str(from_ms))
    if to_ms < MAX_TIMESTAMP_MS:
        parts.append(("to-" if from_ms == 0 else "") + str(to_ms))
    return "-".join(parts) + "." + fmt


def content_disposition(filename: str) -> str:
    # export_filename() only yields [A-Za-z0-9._-], so the quoted form needs no escaping.
    return f'attachment; filename="{filename}"'
