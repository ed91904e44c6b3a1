"""The JSON API's inputs, checked: query strings and the control token.

Pure: every function takes the raw text a request carried and returns typed
values, or raises `ValidationError` with a message that says what was wrong and
what would be right. Nothing a client sends reaches SQL before passing through
here, and everything that does is bound, never interpolated.

Deliberately strict: an unknown or repeated parameter is an error rather than
ignored, so a typo (`?symbl=BTC`) answers 400 instead of silently returning
every symbol.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qs

from .config import EXCHANGES, MAX_SYMBOL_LENGTH

# The latest timestamp accepted: 9999-12-31T23:59:59.999Z. Far below 2^53-1, the
# point from which D1 refuses a bound integer (Pyodide passes it as a JS BigInt).
MAX_TIMESTAMP_MS = 253_402_300_799_999
DEFAULT_LIMIT = 60
MAX_LIMIT = 1000
# OFFSET makes SQLite walk past the skipped rows: bounded, and a day of minutes
# for 200 markets (288k rows) still fits under it.
MAX_OFFSET = 1_000_000
# What a symbol may not contain: the C0 and C1 control characters. The OpenAPI document
# states the same rule as a pattern (SYMBOL_PATTERN), so what it calls valid is accepted.
_CONTROL_CHARACTERS = r"\u0000-\u001f\u007f-\u009f"  # a character class, in regex escapes
SYMBOL_PATTERN = f"^[^{_CONTROL_CHARACTERS}]+$"
_CONTROL = re.compile(f"[{_CONTROL_CHARACTERS}]")
EXPORT_FORMATS = ("csv", "json")
DEFAULT_EXPORT_FORMAT = "csv"
# Which rows /api/export streams: minute rows (the default) or hour rows.
EXPORT_RESOLUTIONS = ("minutes", "hours")
DEFAULT_EXPORT_RESOLUTION = "minutes"
# More fields than any route takes: a query string is never parsed without bound.
_MAX_FIELDS = 16
# Longer digit strings than any valid value are refused before int() sees them.
_MAX_DIGITS = 20

# Every data route takes ?exchange=lighter (the default) or paradex (config.EXCHANGES).
DEFAULT_EXCHANGE = "lighter"
ROW_PARAMS = ("symbol", "limit", "offset", "from", "to", "exchange")
EXPORT_PARAMS = ("symbol", "from", "to", "format", "resolution", "exchange")
# GET /api/compare: one asset on every exchange (tracker/compare.py).
COMPARE_PARAMS = ("asset", "resolution", "limit", "offset", "from", "to")
COMPARE_RESOLUTIONS = ("windows", "minutes", "hours")
DEFAULT_COMPARE_RESOLUTION = "minutes"


class ValidationError(ValueError):
    """A request the API refuses; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class RowQuery:
    """GET /api/minutes and /api/snapshots. `from_ms`/`to_ms` are inclusive bounds."""

    symbol: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    from_ms: int = 0
    to_ms: int = MAX_TIMESTAMP_MS
    exchange: str = DEFAULT_EXCHANGE


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """GET /api/export. `from_ms`/`to_ms` are inclusive bounds."""

    symbol: str | None = None
    from_ms: int = 0
    to_ms: int = MAX_TIMESTAMP_MS
    format: str = DEFAULT_EXPORT_FORMAT
    resolution: str = DEFAULT_EXPORT_RESOLUTION
    exchange: str = DEFAULT_EXCHANGE


def parse_params(query: str, allowed: Collection[str]) -> dict[str, str]:
    """Split a raw query string (no leading '?') into {name: value}.

    Refuses names outside `allowed` and names given twice (which value would win
    is a guess the client should not have to make).
    """
    try:
        fields = parse_qs(query, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        raise ValidationError(f"too many query parameters (at most {_MAX_FIELDS})") from None
    unknown = sorted(name for name in fields if name not in allowed)
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise ValidationError(f"unknown query parameter {unknown[0]!r} (accepted: {accepted})")
    repeated = sorted(name for name, values in fields.items() if len(values) > 1)
    if repeated:
        raise ValidationError(f"query parameter {repeated[0]!r} is given more than once")
    return {name: values[0] for name, values in fields.items()}


def parse_integer(name: str, raw: str, low: int, high: int) -> int:
    """A base-10 integer in [low, high]. ASCII digits only: int() would also take
    '1_000', ' 5', '+5' and non-ASCII digits, none of which a client means."""
    if raw == "":
        raise ValidationError(f"{name} is empty: give an integer from {low} to {high}")
    negative = raw.startswith("-")
    digits = raw[1:] if negative else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > _MAX_DIGITS:
        raise ValidationError(f"{name} must be an integer from {low} to {high}, got {_show(raw)}")
    value = -int(digits) if negative else int(digits)
    if value < 0 <= low:
        raise ValidationError(f"{name} must not be negative, got {_show(raw)}")
    if value < low:
        raise ValidationError(f"{name} must be at least {low}, got {_show(raw)}")
    if value > high:
        raise ValidationError(f"{name} must be at most {high}, got {_show(raw)}")
    return value


def parse_timestamp(name: str, raw: str) -> int:
    """Milliseconds since the Unix epoch, as an integer."""
    if raw == "":
        raise ValidationError(f"{name} is empty: give a timestamp in milliseconds since the Unix epoch")
    digits = raw[1:] if raw.startswith("-") else raw
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(
            f"{name} must be a timestamp in milliseconds since the Unix epoch (an integer), got {_show(raw)}"
        )
    return parse_integer(name, raw, 0, MAX_TIMESTAMP_MS)


def parse_symbol(raw: str) -> str:
    """A market symbol as /api/markets lists it (case-sensitive). Whether it exists
    is a database question the caller asks next."""
    if raw == "":
        raise ValidationError("symbol is empty: give a market symbol as /api/markets lists it")
    if len(raw) > MAX_SYMBOL_LENGTH:
        raise ValidationError(f"symbol is longer than {MAX_SYMBOL_LENGTH} characters")
    if _CONTROL.search(raw):
        raise ValidationError(f"symbol contains control characters: {_show(raw)}")
    return raw


def parse_time_range(params: dict[str, str]) -> tuple[int, int]:
    """Inclusive [from, to] in ms; open ends become 0 and MAX_TIMESTAMP_MS.

    `from` after `to` is an empty range, answered with no rows, not an error: each bound
    is valid on its own, and a rule between two parameters is one the OpenAPI document
    cannot state, so a client built from it (or Schemathesis) may send it in good faith."""
    from_ms = parse_timestamp("from", params["from"]) if "from" in params else 0
    to_ms = parse_timestamp("to", params["to"]) if "to" in params else MAX_TIMESTAMP_MS
    return from_ms, to_ms


def parse_row_query(query: str) -> RowQuery:
    """?symbol=&limit=&offset=&from=&to= of /api/minutes and /api/snapshots."""
    params = parse_params(query, ROW_PARAMS)
    from_ms, to_ms = parse_time_range(params)
    return RowQuery(
        symbol=parse_symbol(params["symbol"]) if "symbol" in params else None,
        limit=parse_integer("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT,
        offset=parse_integer("offset", params["offset"], 0, MAX_OFFSET) if "offset" in params else 0,
        from_ms=from_ms,
        to_ms=to_ms,
        exchange=parse_exchange(params.get("exchange")) or DEFAULT_EXCHANGE,
    )


def parse_export_query(query: str) -> ExportQuery:
    """?symbol=&from=&to=&format=csv|json&resolution=minutes|hours of /api/export."""
    params = parse_params(query, EXPORT_PARAMS)
    from_ms, to_ms = parse_time_range(params)
    fmt = params.get("format", DEFAULT_EXPORT_FORMAT).lower()
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {_show(params['format'])}")
    resolution = params.get("resolution", DEFAULT_EXPORT_RESOLUTION).lower()
    if resolution not in EXPORT_RESOLUTIONS:
        raise ValidationError(
            f"resolution must be one of {', '.join(EXPORT_RESOLUTIONS)}, got {_show(params['resolution'])}"
        )
    return ExportQuery(
        symbol=parse_symbol(params["symbol"]) if "symbol" in params else None,
        from_ms=from_ms,
        to_ms=to_ms,
        format=fmt,
        resolution=resolution,
        exchange=parse_exchange(params.get("exchange")) or DEFAULT_EXCHANGE,
    )


@dataclass(frozen=True, slots=True)
class CompareQuery:
    """GET /api/compare. `from_ms`/`to_ms` are inclusive bounds."""

    asset: str
    resolution: str = DEFAULT_COMPARE_RESOLUTION
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    from_ms: int = 0
    to_ms: int = MAX_TIMESTAMP_MS


def parse_compare_query(query: str) -> CompareQuery:
    """?asset=&resolution=windows|minutes|hours&limit=&offset=&from=&to= of /api/compare.
    Whether the asset exists is the asset map's question (404), asked next."""
    params = parse_params(query, COMPARE_PARAMS)
    if "asset" not in params:
        raise ValidationError("asset is required: one of GET /api/assets (e.g. asset=BTC)")
    asset = params["asset"]
    if asset == "" or len(asset) > MAX_SYMBOL_LENGTH or _CONTROL.search(asset):
        raise ValidationError(f"asset must be 1-{MAX_SYMBOL_LENGTH} characters without control characters, "
                              f"as GET /api/assets names it; got {_show(asset)}")
    resolution = params.get("resolution", DEFAULT_COMPARE_RESOLUTION).lower()
    if resolution not in COMPARE_RESOLUTIONS:
        raise ValidationError(
            f"resolution must be one of {', '.join(COMPARE_RESOLUTIONS)}, got {_show(params['resolution'])}")
    from_ms, to_ms = parse_time_range(params)
    return CompareQuery(
        asset=asset,
        resolution=resolution,
        limit=parse_integer("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT,
        offset=parse_integer("offset", params["offset"], 0, MAX_OFFSET) if "offset" in params else 0,
        from_ms=from_ms,
        to_ms=to_ms,
    )


def parse_no_params(query: str) -> None:
    """Routes that take no parameters say so instead of ignoring them."""
    parse_params(query, ())


def parse_exchange(raw: str | None) -> str | None:
    """`lighter` or `paradex` (any case); None when not given."""
    if raw is None:
        return None
    name = raw.strip().lower()
    if name not in EXCHANGES:
        raise ValidationError(f"exchange must be one of {', '.join(EXCHANGES)}, got {_show(raw)}")
    return name


def parse_exchange_query(query: str) -> str | None:
    """Routes whose only parameter is ?exchange= (stats, markets, overview, health,
    start, stop); None when not given."""
    return parse_exchange(parse_params(query, ("exchange",)).get("exchange"))


# -- control (POST /api/start, /api/stop) ----------------------------------------

# RFC 6750: a 401 names the scheme the client should use.
_CHALLENGE = {"www-authenticate": 'Bearer realm="lighter-tracker"'}


def check_bearer(authorization: str | None, admin_token: str | None) -> None:
    """Raise unless `authorization` is `Bearer <admin_token>`.

    No token configured is the deployment's problem, not the caller's: 403, and
    the message says how to fix it. A missing or wrong token is 401. The
    comparison is constant-time so the answer's timing leaks nothing about the token.
    """
    if not admin_token:
        raise ValidationError(
            "control is disabled: this deployment has no ADMIN_TOKEN secret "
            "(set one with `wrangler secret put ADMIN_TOKEN`; locally, --var ADMIN_TOKEN:... or .dev.vars)",
            403,
        )
    header = (authorization or "").strip()
    if not header:
        raise ValidationError("missing Authorization header: send 'Authorization: Bearer <ADMIN_TOKEN>'", 401, _CHALLENGE)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise ValidationError("Authorization must use the Bearer scheme: 'Bearer <ADMIN_TOKEN>'", 401, _CHALLENGE)
    if not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
        raise ValidationError("wrong bearer token", 401, _CHALLENGE)


# -- private reads (READ_TOKEN) ----------------------------------------------------

# The dashboard's socket names its application protocol, and a browser (which cannot set
# an Authorization header on a WebSocket) carries the token as a second subprotocol,
# `bearer.<the token in base64url, unpadded>`, the way Kubernetes' API server takes one
# (`base64url.bearer.authorization.k8s.io.<token>`): a header, never the URL, which logs,
# browser history and Referer headers keep. The hub answers with LIVE_PROTOCOL only.
LIVE_PROTOCOL = "lighter-tracker"
BEARER_PROTOCOL_PREFIX = "bearer."


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def bearer_token(authorization: str | None) -> str | None:
    """The token of `Bearer <token>`; None when there is no header; raises 401 on another scheme."""
    header = (authorization or "").strip()
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise ValidationError("Authorization must use the Bearer scheme: 'Bearer <READ_TOKEN>'", 401, _CHALLENGE)
    return token.strip()


def token_from_protocols(header: str | None) -> str | None:
    """The token a browser sent as the `bearer.<base64url>` entry of Sec-WebSocket-Protocol,
    or None. An entry that does not decode is a wrong token (""), never an error page."""
    for entry in (header or "").split(","):
        entry = entry.strip()
        if entry.startswith(BEARER_PROTOCOL_PREFIX):
            encoded = entry[len(BEARER_PROTOCOL_PREFIX):]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                return ""
    return None


def offers_live_protocol(header: str | None) -> bool:
    """Whether the client offered LIVE_PROTOCOL (then the handshake must name it back)."""
    return any(entry.strip() == LIVE_PROTOCOL for entry in (header or "").split(","))


def check_read(token: str | None, read_token: str | None, admin_token: str | None) -> None:
    """Raise 401 unless reads are public (no READ_TOKEN) or `token` (the bearer token the
    request carried, None for none) is READ_TOKEN or ADMIN_TOKEN (who may start and stop
    may read too). Constant-time: both comparisons always run, so the timing says
    nothing about either token or which one matched."""
    if not read_token:
        return
    if token is None:
        raise ValidationError(
            "this deployment's data is private: send 'Authorization: Bearer <READ_TOKEN>' "
            "(the dashboard asks for it once)", 401, _CHALLENGE)
    read_ok = _same(token, read_token)
    admin_ok = bool(admin_token) and _same(token, admin_token)  # whether one is set is no secret
    if not (read_ok or admin_ok):
        raise ValidationError("wrong read token", 401, _CHALLENGE)


def _show(raw: str, keep: int = 40) -> str:
    """A client's value quoted back in an error message, cut short."""
    return repr(raw if len(raw) <= keep else raw[:keep] + "...")


# -- the dashboard's live socket (GET /ws) ----------------------------------------


def check_origin(origin: str | None, request_url: str, allowed: Collection[str]) -> None:
    """Raise 403 unless `origin` is the Worker's own (the request's scheme and host)
    or one of `allowed` (ALLOWED_ORIGINS). Browsers always send Origin on a
    WebSocket; a page elsewhere must not read the live log of this deployment."""
    scheme, _, rest = request_url.partition("://")
    own = f"{scheme}://{rest.split('/', 1)[0]}".lower()
    given = (origin or "").strip().rstrip("/").lower()
    if not given:
        raise ValidationError("/ws needs an Origin header: open it from the dashboard page", 403)
    if given != own and given not in allowed:
        raise ValidationError(
            f"origin {_show(given, 80)} may not open /ws: only the dashboard's own origin "
            "and those in ALLOWED_ORIGINS", 403,
        )
