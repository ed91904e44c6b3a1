"""The OpenAPI 3.1 document of every route the Worker answers (GET /api/openapi.json).

It is also the routing table: tracker/routes.py routes each documented
path + method to the handler its `operationId` names, so a route cannot exist
without being documented. tests/integration/test_api.py checks the other way:
every documented path answers as documented, with the documented required keys.

Pure (no runtime imports), so CPython tests read it too. Limits come from
tracker.validation and columns from tracker.sql, so the document cannot drift
from what the code enforces.
"""

from __future__ import annotations

from .rows import DEPTH_COLUMNS, SLIPPAGE_COLUMNS, SLIPPAGE_NAMES
from .stats import json_schema as shard_stats_schema
from .config import EXCHANGES
from .compare import SERIES_COLUMNS as COMPARE_SERIES_COLUMNS
from .sql import HOUR_COLUMNS, MINUTE_COLUMNS, OVERVIEW_MINUTE_COLUMNS, OVERVIEW_WINDOW_COLUMNS, SNAPSHOT_COLUMNS
from .validation import (
    COMPARE_RESOLUTIONS,
    DEFAULT_COMPARE_RESOLUTION,
    DEFAULT_EXCHANGE,
    DEFAULT_EXPORT_FORMAT,
    DEFAULT_EXPORT_RESOLUTION,
    EXPORT_RESOLUTIONS,
    DEFAULT_LIMIT,
    EXPORT_FORMATS,
    MAX_LIMIT,
    MAX_OFFSET,
    MAX_SYMBOL_LENGTH,
    MAX_TIMESTAMP_MS,
    SYMBOL_PATTERN,
)

VERSION = "1.0.0"

_FILL_COLUMNS = {c for c in SLIPPAGE_COLUMNS if c.startswith("fill_samples_")}
_INTEGER_COLUMNS = {"market_index", "timestamp", "tick_count", "covered_ms", "window_ms", "windows", "depth_samples",
                    *_FILL_COLUMNS}
# Depth is NULL where a row has no depth sample (and imbalance where both bands are empty);
# slippage at a size where no sample filled it.
_NULLABLE_COLUMNS = {"twap_mid", *DEPTH_COLUMNS, *SLIPPAGE_COLUMNS} - {"depth_samples", *_FILL_COLUMNS}
_USD = {"1k": "1,000", "10k": "10,000", "100k": "100,000", "1m": "1,000,000"}
_DESCRIPTIONS = {
    **{f"slip_{side}_{name}": (
        f"What a market {side} of {_USD[name]} USD (quote notional) costs, in bps of the mid: "
        + ("(VWAP - mid) / mid * 1e4 walking the asks" if side == "buy" else "(mid - VWAP) / mid * 1e4 walking the bids")
        + f", the last level taken in part; the mean over the row's samples that filled {name} on both sides "
        f"(fill_samples_{name}), null when none did. Minutes and hours: weighted by fill_samples_{name}."
    ) for name in SLIPPAGE_NAMES for side in ("buy", "sell")},
    **{f"fill_samples_{name}": (
        f"How many of the row's depth samples (one per market and exchange second) had books deep enough to fill "
        f"{_USD[name]} USD on both sides: few or none against depth_samples is a thin book."
    ) for name in SLIPPAGE_NAMES},
}


def _column(name: str) -> dict:
    if name == "symbol":
        return {"type": "string"}
    kind = "integer" if name in _INTEGER_COLUMNS else "number"
    schema = {"type": [kind, "null"]} if name in _NULLABLE_COLUMNS else {"type": kind}
    if name in _DESCRIPTIONS:
        schema["description"] = _DESCRIPTIONS[name]
    return schema


def _row(columns: tuple[str, ...], description: str) -> dict:
    return {
        "type": "object",
        "description": description,
        "required": list(columns),
        "properties": {c: _column(c) for c in columns},
    }


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict:
    return {"anyOf": [_ref(name), {"type": "null"}]}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list(key: str, item: str, paged: bool = False) -> dict:
    properties = {
        key: {"type": "array", "items": _ref(item)},
        "count": {"type": "integer", "description": f"number of {key} in this answer"},
    }
    if paged:  # GET /api/minutes and /api/snapshots echo the page they answered
        properties["limit"] = {"type": "integer"}
        properties["offset"] = {"type": "integer"}
    return {"type": "object", "required": [key, "count"], "properties": properties}


_ERROR = {"$ref": "#/components/responses/Error"}
_PARAM = "#/components/parameters/"
_EXCHANGE = {"enum": list(EXCHANGES)}
# The fields an answer about several exchanges adds (shardstats.merge_exchanges).
_BY_EXCHANGE = {
    "exchange": {**_EXCHANGE, "description": "whose fields these are (the top level)"},
    "exchanges": {"type": "object", "description": "the same answer for each exchange asked (by name)"},
}

SCHEMAS: dict = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "what was wrong, in words"},
            "requestId": {
                "type": "string",
                "description": "500 only: names the request in the Worker's logs (the Cloudflare Ray ID when there is one)",
            },
        },
    },
    "Market": {
        "type": "object",
        "required": ["market_index", "symbol", "active", "tracked"],
        "properties": {
            "market_index": {"type": "integer"},
            "symbol": {"type": "string"},
            "active": {"type": "boolean", "description": "listed and tracked at the last refresh"},
            "tracked": {"type": "boolean",
                        "description": "active and named by LIGHTER_MARKETS / PARADEX_MARKETS (when set)"},
        },
    },
    "MarketList": {
        **_list("markets", "Market"),
        "properties": {
            **_list("markets", "Market")["properties"],
            "allowlist": {"type": ["array", "null"], "items": {"type": "string"},
                          "description": "LIGHTER_MARKETS / PARADEX_MARKETS: the only symbols tracked "
                          "(null: every market). Those the exchange does not list: /api/stats marketsNotListed"},
        },
    },
    "Minute": _row(MINUTE_COLUMNS, "One market's complete minute, rolled up from its windows."),
    "MinuteList": _list("minutes", "Minute", paged=True),
    "Hour": _row(
        HOUR_COLUMNS,
        "One market's hour, rolled up from its minutes (the partial hour too when tracking stops); "
        "`windows` counts the windows of all its minutes.",
    ),
    "HourList": _list("hours", "Hour", paged=True),
    "Snapshot": _row(SNAPSHOT_COLUMNS, "One market's closed window (WINDOW_SECONDS, 15 s by default)."),
    "SnapshotList": _list("snapshots", "Snapshot", paged=True),
    "Stats": {
        "type": "object",
        "description": "The tracker shards' stats summed; per-shard detail under `shards`.",
        "required": [
            "isTracking", "markets", "connected", "messagesReceived", "lastMessageAt", "database",
            "aggregator", "shards",
        ],
        "properties": {
            "isTracking": {"type": "boolean"},
            "markets": {"type": "integer", "description": "markets being tracked"},
            "connected": {"type": "boolean", "description": "every shard's feed is connected"},
            "messagesReceived": {"type": "integer"},
            "lastMessageAt": {"type": ["integer", "null"], "description": "exchange timestamp (ms) of the newest frame"},
            "database": {
                "type": "object",
                "required": ["snapshots", "minutes"],
                "properties": {"snapshots": {"type": "integer"}, "minutes": {"type": "integer"}},
            },
            "aggregator": {
                "type": "object",
                "required": ["currentSymbols", "windowElapsed"],
                "properties": {
                    "currentSymbols": {"type": "integer"},
                    "windowElapsed": {"type": "number", "description": "seconds into the open window"},
                },
            },
            "shards": {"type": "array", "items": {"anyOf": [_ref("ShardStats"), _ref("ShardFailed")]}},
            **_BY_EXCHANGE,
        },
    },
    # One shard's stats: generated from tracker.stats.ShardStats, the one type behind
    # /api/stats, the dashboard and the tracking_stats row.
    "ShardStats": shard_stats_schema(),
    "ShardFailed": {
        "type": "object",
        "description": "A shard that did not answer (the reason is in the logs).",
        "required": ["shard", "failed"],
        "properties": {"shard": {"type": "integer"}, "failed": {"type": "string"}},
    },
    "OverviewWindow": _row(OVERVIEW_WINDOW_COLUMNS, "The market's latest closed window."),
    "OverviewMinute": _row(OVERVIEW_MINUTE_COLUMNS, "The market's latest complete minute."),
    "OverviewRow": {
        "type": "object",
        "required": ["market_index", "symbol", "window", "minute", "age_ms"],
        "properties": {
            "market_index": {"type": "integer"},
            "symbol": {"type": "string"},
            "window": _nullable("OverviewWindow"),
            "minute": _nullable("OverviewMinute"),
            "age_ms": {
                "type": ["integer", "null"],
                "description": "ms from the end of the latest window to `now` (null: no window yet)",
            },
        },
    },
    "Overview": {
        "type": "object",
        "required": ["markets", "count", "now"],
        "properties": {
            "markets": {"type": "array", "items": _ref("OverviewRow")},
            "count": {"type": "integer"},
            "now": {"type": "integer", "description": "the Worker's clock (Date.now, ms)"},
        },
    },
    "AssetMarket": {
        "type": "object",
        "required": ["symbol", "market_index"],
        "properties": {"symbol": {"type": "string"}, "market_index": {"type": "integer"}},
    },
    "Asset": {
        "type": "object",
        "description": "One asset and its market on each exchange that tracks it.",
        "required": ["asset", "source", "markets"],
        "properties": {
            "asset": {"type": "string", "description": "the name /api/compare takes (`asset=`)"},
            "source": {"enum": ["derived", "ASSET_PAIRS"],
                       "description": "derived from the market lists (the perpetuals' base asset), or set by ASSET_PAIRS"},
            "markets": {"type": "object", "additionalProperties": _ref("AssetMarket"),
                        "description": "by exchange name (lighter, paradex)"},
        },
    },
    "AssetList": {
        "type": "object",
        "required": ["assets", "count", "exchanges", "note", "pairsNotListed"],
        "properties": {
            "assets": {"type": "array", "items": _ref("Asset")},
            "count": {"type": "integer"},
            "exchanges": {"type": "array", "items": _EXCHANGE, "description": "the enabled exchanges (ENABLED_EXCHANGES)"},
            "note": {"type": ["string", "null"],
                     "description": "with one exchange enabled: that no asset can be on more than one"},
            "pairsNotListed": {"type": "array", "description": "ASSET_PAIRS symbols that are not a tracked market "
                               "of their exchange (left out)", "items": {
                                   "type": "object", "required": ["asset", "exchange", "symbol"],
                                   "properties": {"asset": {"type": "string"}, "exchange": _EXCHANGE,
                                                  "symbol": {"type": "string"}}}},
        },
    },
    "CompareSeries": {
        "type": "object",
        "description": "One exchange's rows of the asset, one list per column, aligned on `timestamps` "
        "(null where the exchange has no row at that timestamp). The columns are those of the rows "
        "(/api/snapshots, /api/minutes, /api/hours).",
        "required": list(COMPARE_SERIES_COLUMNS),
        "properties": {c: {"type": "array", "items": {"type": ["integer" if c in _INTEGER_COLUMNS else "number", "null"]}}
                       for c in COMPARE_SERIES_COLUMNS},
    },
    "Compare": {
        "type": "object",
        "required": ["asset", "resolution", "exchanges", "markets", "note", "timestamps", "series", "basis_bps",
                     "count", "limit", "offset"],
        "properties": {
            "asset": {"type": "string"},
            "resolution": {"enum": list(COMPARE_RESOLUTIONS)},
            "exchanges": {"type": "array", "items": _EXCHANGE, "description": "the exchanges answered"},
            "markets": {"type": "object", "additionalProperties": _ref("AssetMarket")},
            "note": {"type": ["string", "null"], "description": "why only one exchange is answered (null: both)"},
            "timestamps": {"type": "array", "items": {"type": "integer"},
                           "description": "the rows' start (ms), newest first: where either exchange has a row"},
            "series": {"type": "object", "additionalProperties": _ref("CompareSeries"),
                       "description": "by exchange name"},
            "basis_bps": {
                "type": ["array", "null"], "items": {"type": ["number", "null"]},
                "description": "(paradex twap_mid - lighter twap_mid) / lighter twap_mid * 1e4 at each timestamp "
                "(null where either row or mid is missing); null when only one exchange is answered. "
                "Time-weighted mids: the feeds publish at different rates, a tick-weighted mean would weight "
                "each one's busy moments its own way. Lighter's mid as the denominator: Paradex's premium in "
                "bps of Lighter's price (over the mean of both instead, it differs by basis^2/2e4 bps).",
            },
            "count": {"type": "integer", "description": "number of timestamps in this answer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
        },
    },
    "ShardHealth": {
        "type": "object",
        "required": ["shard", "status", "reason", "connected", "lastMessageAt", "ageMs"],
        "properties": {
            "shard": {"type": "integer"},
            "status": {"enum": ["idle", "ok", "storage", "stale", "down"]},
            "reason": {"type": ["string", "null"]},
            "connected": {"type": "boolean"},
            "lastMessageAt": {"type": ["integer", "null"]},
            "ageMs": {"type": ["integer", "null"], "description": "now - lastMessageAt"},
            "reconnectAt": {"type": ["integer", "null"]},
            "lastError": {"type": ["string", "null"]},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "isTracking", "now", "staleAfterMs", "shards"],
        "properties": {
            "status": {"enum": ["idle", "ok"]},
            "detail": {"type": "string", "description": "e.g. still starting up"},
            "isTracking": {"type": "boolean"},
            "now": {"type": "integer"},
            "staleAfterMs": {"type": "integer"},
            "lastMessageAt": {"type": ["integer", "null"]},
            "shards": {"type": "array", "items": _ref("ShardHealth")},
            **_BY_EXCHANGE,
        },
    },
    "Unhealthy": {
        "type": "object",
        "required": ["status", "reason", "isTracking", "now", "shards"],
        "properties": {
            "status": {"enum": ["down", "stale", "storage"]},
            "reason": {"type": "string"},
            "isTracking": {"type": ["boolean", "null"], "description": "null: the tracker could not be asked"},
            "now": {"type": "integer"},
            "staleAfterMs": {"type": "integer"},
            "shards": {"type": "array", "items": _ref("ShardHealth")},
            **_BY_EXCHANGE,
        },
    },
    "Control": {
        "type": "object",
        "required": ["ok", "isTracking", "markets", "connected", "shards"],
        "properties": {
            "ok": {"const": True},
            "isTracking": {"type": "boolean"},
            "markets": {"type": "integer"},
            "connected": {"type": "boolean"},
            "shards": {"type": "array", "items": {"type": "object"}},
            **_BY_EXCHANGE,
        },
    },
}

PARAMETERS: dict = {
    "symbol": {
        "name": "symbol",
        "in": "query",
        "description": "Only the rows written under this symbol (case-sensitive; /api/markets lists the "
        "current ones). A market the exchange renamed, or whose id it gave to a new market, keeps its rows "
        "under the symbol they were written with. A symbol no market ever had answers 404 (a malformed one: "
        "empty, too long or with control characters, 400).",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SYMBOL_LENGTH, "pattern": SYMBOL_PATTERN},
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "description": "Rows to return.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    "offset": {
        "name": "offset",
        "in": "query",
        "description": "Rows to skip (newest first).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
    "from": {
        "name": "from",
        "in": "query",
        "description": "Earliest row timestamp, ms since the Unix epoch, inclusive. After `to`: an empty range (no rows).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP_MS},
    },
    "to": {
        "name": "to",
        "in": "query",
        "description": "Latest row timestamp, ms since the Unix epoch, inclusive.",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_TIMESTAMP_MS},
    },
    "format": {
        "name": "format",
        "in": "query",
        "description": "csv (a header row, then one row per minute) or json.",
        "schema": {"enum": list(EXPORT_FORMATS), "default": DEFAULT_EXPORT_FORMAT},
    },
    "exchange": {
        "name": "exchange",
        "in": "query",
        "description": "Which exchange's tables: lighter (lighter_* tables, the default) or paradex (paradex_*). "
        "On stats, health, start and stop: only that exchange (default: every enabled one, "
        "ENABLED_EXCHANGES; the default exchange's fields at the top, every exchange's under `exchanges`).",
        "schema": {**_EXCHANGE, "default": DEFAULT_EXCHANGE},
    },
    "asset": {
        "name": "asset",
        "in": "query",
        "required": True,
        "description": "The asset, as GET /api/assets names it (case-sensitive; `kPEPE` also finds `1000PEPE`). "
        "An asset no enabled exchange tracks answers 404.",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_SYMBOL_LENGTH, "pattern": SYMBOL_PATTERN},
        "example": "BTC",
    },
    "compareResolution": {
        "name": "resolution",
        "in": "query",
        "description": "windows (*_snapshots rows), minutes or hours.",
        "schema": {"enum": list(COMPARE_RESOLUTIONS), "default": DEFAULT_COMPARE_RESOLUTION},
    },
    "resolution": {
        "name": "resolution",
        "in": "query",
        "description": "minutes (*_minutes rows) or hours (*_hours rows, the same columns).",
        "schema": {"enum": list(EXPORT_RESOLUTIONS), "default": DEFAULT_EXPORT_RESOLUTION},
    },
}


def _params(*names: str) -> list[dict]:
    return [{"$ref": _PARAM + n} for n in names]


# The data routes and /ws: open to anyone unless the deployment sets READ_TOKEN; then its
# bearer token (or ADMIN_TOKEN's). `{}` first: no credentials is a valid choice, the
# deployment decides (one document serves every deployment).
READ_SECURITY = [{}, {"readToken": []}, {"adminToken": []}]


def _get(
    operation_id: str,
    summary: str,
    ok: dict,
    *,
    params: tuple[str, ...] = (),
    extra: dict | None = None,
    description: str | None = None,
    guarded: bool = True,
) -> dict:
    # Every API route refuses query parameters it does not take (400), parameters or not.
    responses = {"200": ok, **(extra or {}), "400": _ERROR, "500": _ERROR}
    if guarded:  # READ_TOKEN set, and missing or wrong
        responses["401"] = _json(_ref("Error"), "READ_TOKEN is set and the request did not carry it (or ADMIN_TOKEN)")
    op = {"operationId": operation_id, "summary": summary, "tags": ["data"], "responses": responses}
    if guarded:
        op["security"] = READ_SECURITY
    if description:
        op["description"] = description
    if params:
        op["parameters"] = _params(*params)
    return {"get": op}


_HISTORY = (
    "A page bounded by an explicit `to` whose last possible row ends before the history "
    "sealed in D1 (every shard's flushed windows, less a minute for the rollup) can never change: "
    "it is answered with `Cache-Control: public, max-age=HISTORY_CACHE_SECONDS, immutable` and "
    "an `ETag`, kept in the edge cache (`x-cache: miss`, then `hit` without a D1 query), and "
    "`If-None-Match` gets 304. Anything else is `no-store` (`x-cache: bypass` when `to` was given). "
    "Cloudflare's edge cache acts only on a custom domain: on `*.workers.dev` a final page is read "
    "from D1 each time (`x-cache: off (...)`), its validators and 304 work the same."
)
_CACHE_HEADERS = {
    "ETag": {"description": "final history only", "schema": {"type": "string"}},
    "Cache-Control": {"description": "`no-store`, or `public, max-age=N, immutable` for final history",
                      "schema": {"type": "string"}},
    "x-cache": {"description": "when `to` was given: hit | miss (the edge cache), bypass (not final), "
                "or `off (...)` with the reason (final, on *.workers.dev: no edge cache there)",
                "schema": {"type": "string"}},
}
_UNKNOWN_SYMBOL = {"404": _json(_ref("Error"), "No market ever had this `symbol` (/api/markets lists the current ones)")}
_NOT_MODIFIED = {"304": {"description": "Not Modified (If-None-Match matched a final page's ETag)",
                         "headers": {"ETag": _CACHE_HEADERS["ETag"]}}}


def _history(ok: dict) -> dict:
    return {**ok, "headers": _CACHE_HEADERS}


def _control(operation_id: str, summary: str) -> dict:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": "Idempotent. Needs the ADMIN_TOKEN secret as a bearer token. "
            "Not available cross-origin (no CORS headers, preflight refused).",
            "tags": ["control"],
            "security": [{"adminToken": []}],
            "parameters": _params("exchange"),
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"exchange": _EXCHANGE}}}}},
            "responses": {
                "200": _json(_ref("Control"), "Done; the shards' stats after it."),
                "400": _ERROR,
                "401": _ERROR,
                "403": _ERROR,
                "500": _ERROR,
            },
        }
    }


_CSV = {"type": "string", "description": "a header row of the Minute (= Hour) columns, then one line per row"}

PATHS: dict = {
    "/": {
        "get": {
            "operationId": "dashboard",
            "summary": "The dashboard page (HTML).",
            "tags": ["dashboard"],
            "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}},
        }
    },
    "/ws": {
        "get": {
            "operationId": "live_socket",
            "summary": "The dashboard's live WebSocket (log lines and stats pushed by the DashboardHub).",
            "description": "A WebSocket handshake (`Upgrade: websocket`), checked in this order: the `Origin` "
            "must be the dashboard's own or one listed in ALLOWED_ORIGINS (else 403, whatever else the "
            "request carries); with READ_TOKEN set, the token (else 401), as `Authorization: Bearer` or, "
            "from a browser (which cannot set headers on a WebSocket), as the subprotocol "
            "`bearer.<the token in base64url, unpadded>` offered next to `lighter-tracker`, which the "
            "handshake names back; then the Upgrade (else 426). "
            "Stats are pushed every LIVE_PUSH_SECONDS (10 by default; each push says `pushEveryMs`); log "
            "lines as the tracker shards relay them, in batches. "
            "At MAX_LIVE_SOCKETS the socket is accepted and closed at once with code 1013 "
            "(try again later) and a reason.",
            "tags": ["dashboard"],
            # `Upgrade: websocket` is described, not declared as a parameter: workerd turns any
            # request carrying it into a GET before the Worker sees it (a TRACE with it
            # would reach the router as a GET), so no method check could refuse it.
            "parameters": [
                {"name": "Origin", "in": "header", "required": True,
                 "description": "The page that opens the socket (browsers always send it).",
                 "schema": {"type": "string"}},
            ],
            "security": READ_SECURITY,
            "responses": {
                "101": {"description": "Switching Protocols"},
                "401": _json(_ref("Error"), "READ_TOKEN is set and the handshake did not carry it"),
                "403": _json(_ref("Error"), "An Origin that may not open /ws (or none)"),
                "426": _json(_ref("Error"), "Not a WebSocket upgrade (Upgrade: websocket missing)"),
                "500": _ERROR,
            },
        }
    },
    "/api/stats": _get("stats", "Tracker and database counters.", _json(_ref("Stats"), "Stats"),
                       params=("exchange",)),
    "/api/markets": _get("markets", "Every market ever tracked, active or not (with LIGHTER_MARKETS / "
                         "PARADEX_MARKETS set, those markets only).", _json(_ref("MarketList"), "Markets"),
                         params=("exchange",)),
    "/api/minutes": _get(
        "minutes",
        "Minute averages, newest first.",
        _history(_json(_ref("MinuteList"), "Minutes")),
        params=("symbol", "limit", "offset", "from", "to", "exchange"),
        extra={**_NOT_MODIFIED, **_UNKNOWN_SYMBOL},
        description=_HISTORY,
    ),
    "/api/hours": _get(
        "hours",
        "Hour averages, newest first (kept HOUR_RETENTION_DAYS, default 90).",
        _history(_json(_ref("HourList"), "Hours")),
        params=("symbol", "limit", "offset", "from", "to", "exchange"),
        extra={**_NOT_MODIFIED, **_UNKNOWN_SYMBOL},
        description=_HISTORY,
    ),
    "/api/snapshots": _get(
        "snapshots",
        "Window (15 s) averages, newest first.",
        _history(_json(_ref("SnapshotList"), "Snapshots")),
        params=("symbol", "limit", "offset", "from", "to", "exchange"),
        extra={**_NOT_MODIFIED, **_UNKNOWN_SYMBOL},
        description=_HISTORY,
    ),
    "/api/overview": _get(
        "overview",
        "Each active market's latest window and minute, and how old the window is.",
        _json(_ref("Overview"), "Overview"),
        params=("exchange",),
    ),
    "/api/assets": _get(
        "assets",
        "The assets tracked on more than one exchange (a perpetual's base asset: Lighter's BTC is "
        "Paradex's BTC-USD-PERP), each with its market there; ASSET_PAIRS adds or overrides pairs.",
        _json(_ref("AssetList"), "Assets"),
    ),
    "/api/compare": _get(
        "compare",
        "One asset on every enabled exchange, side by side: the rows' spread, mids, depth and slippage "
        "aligned on their timestamps (newest first), and the basis between the mids in bps.",
        _history(_json(_ref("Compare"), "The asset's rows on each exchange")),
        params=("asset", "compareResolution", "limit", "offset", "from", "to"),
        extra={**_NOT_MODIFIED,
               "404": _json(_ref("Error"), "No enabled exchange tracks this `asset` (/api/assets lists them)")},
        description="`limit` and `offset` count timestamps (where either exchange has a row of the asset). "
        "With one exchange enabled, or the asset tracked on one only, the answer has that exchange's "
        "series alone, no basis, and `note` says so. " + _HISTORY,
    ),
    "/api/export": _get(
        "export",
        "Minute (or, with resolution=hours, hour) averages oldest first, streamed as a file download "
        "(Content-Disposition: attachment).",
        {
            "description": "The export, streamed",
            "content": {
                "text/csv": {"schema": _CSV},
                "application/json": {"schema": {"oneOf": [_ref("MinuteList"), _ref("HourList")]}},
            },
        },
        params=("symbol", "from", "to", "format", "resolution", "exchange"),
        extra=_UNKNOWN_SYMBOL,
    ),
    "/api/health": _get(
        "health",
        "200 when tracking is off or the feed is fresh; 503 when tracking is on and the feed is down or stale, "
        "or D1 writes keep failing (windows piling up).",
        _json(_ref("Health"), "Healthy (or idle)"),
        extra={"503": _json(_ref("Unhealthy"), "Tracking is on but the feed is down or stale")},
        params=("exchange",),
    ),
    "/api/openapi.json": _get(
        "openapi", "This document (public even with READ_TOKEN: it is the same for every deployment).",
        {"description": "OpenAPI 3.1", "content": {"application/json": {}}}, guarded=False,
    ),
    "/api/start": _control("start", "Start tracking (every shard)."),
    "/api/stop": _control("stop", "Stop tracking (every shard); open windows are flushed."),
}

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "Lighter Orderbook Tracker",
        "version": VERSION,
        "description": (
            "Lighter order-book top-of-book averages, depth within 10/50/100 bps and the slippage of market "
            "orders of 1k/10k/100k/1M USD kept in D1: 15 s windows, one-minute and one-hour rollups.\n\n"
            "Timestamps are milliseconds since the Unix epoch. Every error is JSON {\"error\": \"...\"}: "
            "400 for a bad query parameter (unknown or repeated names included), 401/403 for control "
            "without a valid token, 404 for an unknown route or a `symbol` no market ever had, 405 (with Allow) "
            "for a wrong method, "
            "500 with a `requestId` (never the exception's text) for a failure on our side.\n\n"
            "Private reads: a deployment that sets the READ_TOKEN secret answers every GET /api/* route but "
            "this document, and /ws, only with `Authorization: Bearer <READ_TOKEN>` (ADMIN_TOKEN works "
            "too); else 401. Without it, reads are public.\n\n"
            "CORS: GET /api/* answers any origin (Access-Control-Allow-Origin: *) and OPTIONS preflights "
            "with 204 (allowing the `authorization` header); the control routes (POST /api/start, /api/stop) "
            "send no CORS headers and refuse preflights."
        ),
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "parameters": PARAMETERS,
        "responses": {"Error": _json(_ref("Error"), "An error, described")},
        "securitySchemes": {
            "adminToken": {"type": "http", "scheme": "bearer", "description": "the ADMIN_TOKEN secret"},
            "readToken": {"type": "http", "scheme": "bearer",
                          "description": "the READ_TOKEN secret, when the deployment sets one"},
        },
    },
}


def operations() -> dict[str, dict[str, str]]:
    """{path: {METHOD: operationId}}: what the router dispatches on."""
    return {
        path: {method.upper(): op["operationId"] for method, op in item.items()} for path, item in PATHS.items()
    }
