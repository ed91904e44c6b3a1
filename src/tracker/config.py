"""Configuration: every tunable in one place, with defaults, overridable by wrangler vars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from .pacing import (DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_PER_MINUTE, LIGHTER_IN_FLIGHT, LIGHTER_MESSAGES_PER_MINUTE,
                     RESERVED_FOR_KEEPALIVE, Budget)

MAINNET_API_URL = "https://mainnet.zklighter.elliot.ai"
# `?readonly=true`: Lighter's documented way for read-only market data to bypass its
# regional access restrictions (a Worker may run in a restricted region).
MAINNET_WS_URL = "wss://mainnet.zklighter.elliot.ai/stream?readonly=true"

# Paradex (issue 14): REST and the SBE WebSocket (schema 1, version 1: the templates the
# tracker reads are the same in versions 0, 1 and 2).
PARADEX_API_URL = "https://api.prod.paradex.trade/v1"
PARADEX_WS_URL = "wss://ws.api.prod.paradex.trade/v1?sbeSchemaId=1&sbeSchemaVersion=1"
PARADEX_ASSET_KINDS = ("PERP", "PERP_OPTION", "SPOT", "OPTION", "FUTURE")
EXCHANGES = ("lighter", "paradex")
# The longest market symbol taken (LIGHTER_MARKETS / PARADEX_MARKETS, the API's `symbol`).
MAX_SYMBOL_LENGTH = 64

# The most SHARDS Lighter's per-IP budget splits among (pacing.Budget.max_shards): 36.
# (PARADEX_SHARDS stops at 16, well within what Paradex's budget splits.)
LIGHTER_MAX_SHARDS = Budget.max_shards(DEFAULT_MAX_PER_MINUTE, DEFAULT_MAX_IN_FLIGHT)

# Window lengths that divide a minute evenly, so minutes roll up from whole windows.
VALID_WINDOW_SECONDS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)

# The API benchmark's floor route (tools/bench/api.py): answered by src/entry.py
# only when the BENCH_FLOOR var is set (never in wrangler.toml).
BENCH_FLOOR_VAR = "BENCH_FLOOR"
BENCH_FLOOR_PATH = "/_bench/floor"
# The test of D1's row counters (tests/integration/test_d1_counts.py): POST of statements,
# answered with D1's own `meta` for each, by src/entry.py only when the D1_METER var is
# set (the test session's wrangler dev; never in wrangler.toml).
D1_METER_VAR = "D1_METER"
D1_METER_PATH = "/_test/d1meter"
# The feed socket lets the rest of the Durable Object in (a "breath", runtime/breath.py)
# once every this many frames, so a flat-out burst cannot starve the API, the control
# paths and the alarm (issue 18, defect 8). 0: never. At ~17-25 us a frame, a breath is
# asked for every ~5-6 ms of a burst (the runtime takes at most one per 50 ms). Not a
# wrangler var: the simulation lowers it to breathe inside its small bursts.
BREATHE_EVERY_FRAMES = 256

# Default name in alert texts: the production Worker's name (wrangler.toml `name`).
SERVICE_NAME = "lighter-orderbook-tracker"
# Webhook URLs may be plain http only on this machine (the tests' local receiver):
# anywhere else the alert would cross the internet in clear text.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# D1's size limit per database on Workers Paid (developers.cloudflare.com/d1/platform/limits/).
D1_MAX_DATABASE_BYTES = 10 * 1000**3
# Bytes one window or minute row takes in D1's SQLite file, its two indexes included:
# tests/unit/test_config.py measures a real row of schema.sql with sqlite3's dbstat
# (about 350 B with the depth and slippage columns) and fails when this stops being an upper bound within 1.5x.
ROW_BYTES = 360


def estimate_d1_rows(markets: int, window_ms: int, snapshot_retention_ms: int, minute_retention_ms: int,
                     hour_retention_ms: int = 0) -> int:
    """Rows kept at steady state: each market has a row per window, minute and hour of retention."""
    windows = -(-snapshot_retention_ms // window_ms)
    minutes = -(-minute_retention_ms // 60_000)
    hours = -(-hour_retention_ms // 3_600_000)
    return markets * (windows + minutes + hours)


def estimate_d1_bytes(markets: int, window_ms: int, snapshot_retention_ms: int, minute_retention_ms: int,
                      hour_retention_ms: int = 0) -> int:
    """Estimated size of the D1 database once retention is reached (the market list and
    the stats rows are negligible beside the windows, minutes and hours)."""
    return estimate_d1_rows(markets, window_ms, snapshot_retention_ms, minute_retention_ms,
                            hour_retention_ms) * ROW_BYTES


DAY_MS = 86_400_000


def estimate_live_requests_per_day(live_push_ms: int, shards: int) -> int:
    """Durable Object requests a day that the dashboard hub makes while at least one
    dashboard is open all day (any number of tabs share it): per push, its alarm
    invocation (billed as a request) and one /stats request to every tracker shard of the
    enabled exchanges. The pushes themselves are outgoing WebSocket messages, not billed,
    and the page sends nothing on a timer (developers.cloudflare.com/durable-objects/platform/pricing/)."""
    return DAY_MS // live_push_ms * (1 + shards)


class ConfigError(ValueError):
    """A wrangler var holds a value the tracker cannot run with."""


@dataclass(frozen=True, slots=True)
class AssetPair:
    """One ASSET_PAIRS entry, `NAME=LIGHTER_SYMBOL:PARADEX_SYMBOL`: the markets that are the
    asset `name` on each exchange (EXCHANGES order), None where it has none. It replaces
    what tracker/assets.py derives for that name and for those symbols."""

    name: str
    symbols: tuple[str | None, ...]

    def symbol(self, exchange: str) -> str | None:
        return self.symbols[EXCHANGES.index(exchange)]


@dataclass(frozen=True)
class Config:
    api_url: str = MAINNET_API_URL
    ws_url: str = MAINNET_WS_URL
    window_ms: int = 15_000
    # How long after a window's end the alarm waits before closing it, so frames
    # stamped just before the boundary but delivered just after still count.
    flush_grace_ms: int = 1_500
    snapshot_retention_ms: int = 60 * 60_000
    minute_retention_ms: int = 24 * 3_600_000
    hour_retention_ms: int = 90 * 86_400_000
    # No frame at all for this long means the feed is stale and is reconnected.
    stale_feed_ms: int = 30_000
    shards: int = 1
    admin_token: str | None = None
    # READ_TOKEN (a secret): when set, every data route and /ws need it (or ADMIN_TOKEN);
    # unset, reads are public as they always were.
    read_token: str | None = None
    alert_webhook_url: str | None = None
    alert_after_ms: int = 5 * 60_000
    # How often the market list is read again (new markets subscribed, delisted dropped).
    market_refresh_ms: int = 300_000
    # Closed windows kept in the outbox while D1 fails: 24 h of 15 s windows. Beyond
    # it the oldest are dropped and recorded lost (storage stays bounded).
    outbox_max_windows: int = 5_760
    # How long browsers and the edge keep a page of final history (tracker/history_cache.py).
    history_cache_s: int = 3600
    # The dashboard hub (runtime/dashboard_hub.py): origins allowed on /ws besides the
    # Worker's own, and how many live sockets one hub holds.
    allowed_origins: tuple[str, ...] = ()
    max_live_sockets: int = 100
    # How often the hub pushes stats to open dashboards (LIVE_PUSH_SECONDS). Each push is a
    # Durable Object request for the hub's alarm and one per shard: 10 s keeps a dashboard
    # open all day inside the Free plan's 100,000 requests (estimate_live_requests_per_day).
    live_push_ms: int = 10_000
    # Who the alert says it is ("<name> shard 0: Lighter feed down ..."): staging says staging.
    alert_service_name: str = SERVICE_NAME
    # How many markets the D1 size check plans for (Lighter lists far fewer today).
    expected_markets: int = 600
    # Which exchanges run (ENABLED_EXCHANGES): Lighter only unless the owner opts in.
    enabled_exchanges: tuple[str, ...] = ("lighter",)
    # The only markets tracked (LIGHTER_MARKETS, symbols as the exchange lists them); empty:
    # every one. `for_exchange("paradex")` puts PARADEX_MARKETS here. Only these are
    # subscribed, written and saved to *_markets (tracker/directory.py); a symbol the
    # exchange does not list is reported, never fatal.
    market_symbols: tuple[str, ...] = ()
    paradex_market_symbols: tuple[str, ...] = ()
    # Paradex's settings; `for_exchange("paradex")` puts them in api_url/ws_url/shards.
    paradex_api_url: str = PARADEX_API_URL
    paradex_ws_url: str = PARADEX_WS_URL
    paradex_shards: int = 1
    paradex_asset_kinds: frozenset[str] = frozenset({"PERP"})
    # "deltas" (the API book) or "interactive_deltas" (RPI orders included).
    paradex_book_channel: str = "deltas"
    # ASSET_PAIRS: pairs added to, or replacing, the asset map GET /api/assets and
    # /api/compare derive from the market lists (tracker/assets.py); empty: derived only.
    asset_pairs: tuple[AssetPair, ...] = ()
    # Frames between two breaths of the feed socket (BREATHE_EVERY_FRAMES; not a var).
    breathe_every_frames: int = BREATHE_EVERY_FRAMES

    def for_exchange(self, name: str) -> Config:
        """This config as one exchange's tracker sees it: its URLs and its SHARDS."""
        if name == "paradex":
            return replace(self, api_url=self.paradex_api_url, ws_url=self.paradex_ws_url, shards=self.paradex_shards,
                           market_symbols=self.paradex_market_symbols)
        return self

    def tracks(self, symbol: str) -> bool:
        """Whether a market of this symbol is tracked (this config's exchange: for_exchange)."""
        return not self.market_symbols or symbol in self.market_symbols

    @classmethod
    def from_env(cls, get: Callable[[str], str | None]) -> Config:
        """Build from a lookup of wrangler vars/secrets (missing or empty -> default)."""

        def text(name: str, default: str | None) -> str | None:
            value = get(name)
            if value is None or str(value).strip() == "":
                return default
            return str(value).strip()

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = text(name, None)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
            return value

        def whole(name: str, default: int, low: int, high: int) -> int:
            value = number(name, default, low, high)
            if value != int(value):  # SHARDS=1.5 must not silently become 1
                raise ConfigError(f"{name} must be a whole number, got {text(name, None)!r}")
            return int(value)

        def shards(name: str, most: int, why: str) -> int:
            """A shard count: beyond what the exchange's per-IP budget splits, say why."""
            raw = text(name, None)
            try:
                above = raw is not None and float(raw) > most
            except ValueError:
                above = False  # whole() says it is not a number
            if above:
                raise ConfigError(f"{name} must be at most {most}: {why}; got {raw!r}")
            return whole(name, 1, 1, most)

        def url(name: str, default: str, scheme: str) -> str:
            """An http(s) or ws(s) URL; a REST base loses its trailing slash."""
            value = text(name, default)
            if scheme == "http":
                value = value.rstrip("/")
            if not value.startswith((f"{scheme}://", f"{scheme}s://")):
                article = "an" if scheme == "http" else "a"
                raise ConfigError(f"{name} must be {article} {scheme}(s) URL, got {value!r}")
            return value

        def origins(raw: str | None) -> tuple[str, ...]:
            """Comma-separated `scheme://host[:port]`; a trailing slash is dropped."""
            out = []
            for item in (raw or "").split(","):
                item = item.strip().rstrip("/")
                if not item:
                    continue
                if not item.startswith(("http://", "https://")) or "/" in item.split("://", 1)[1]:
                    raise ConfigError(f"ALLOWED_ORIGINS entries must be origins like https://example.com, got {item!r}")
                out.append(item.lower())
            return tuple(out)

        window_s = number("WINDOW_SECONDS", 15, 1, 60)
        if window_s not in VALID_WINDOW_SECONDS:
            raise ConfigError(
                f"WINDOW_SECONDS must divide a minute evenly {VALID_WINDOW_SECONDS}, got {window_s:g}"
            )
        api_url = url("LIGHTER_API_URL", MAINNET_API_URL, "http")
        ws_url = url("LIGHTER_WS_URL", MAINNET_WS_URL, "ws")
        paradex_api_url = url("PARADEX_API_URL", PARADEX_API_URL, "http")
        paradex_ws_url = url("PARADEX_WS_URL", PARADEX_WS_URL, "ws")
        enabled = _names("ENABLED_EXCHANGES", text("ENABLED_EXCHANGES", "lighter"), EXCHANGES, lower=True)
        if not enabled:
            raise ConfigError("ENABLED_EXCHANGES must name at least one exchange: lighter, paradex")
        asset_kinds = _names("PARADEX_ASSET_KINDS", text("PARADEX_ASSET_KINDS", "PERP"), PARADEX_ASSET_KINDS)
        if not asset_kinds:
            raise ConfigError(f"PARADEX_ASSET_KINDS must name at least one of {', '.join(PARADEX_ASSET_KINDS)}")
        channel = text("PARADEX_BOOK_CHANNEL", "deltas")
        if channel not in ("deltas", "interactive_deltas"):
            raise ConfigError(f"PARADEX_BOOK_CHANNEL must be deltas or interactive_deltas, got {channel!r}")
        webhook = text("ALERT_WEBHOOK_URL", None)
        if webhook is not None:
            _check_webhook(webhook)
        config = cls(
            api_url=api_url,
            ws_url=ws_url,
            window_ms=int(window_s * 1000),
            # Whole milliseconds: 1500.7 must not silently become 1500.
            flush_grace_ms=whole("FLUSH_GRACE_MS", 1500, 0, 10_000),
            snapshot_retention_ms=int(number("SNAPSHOT_RETENTION_MINUTES", 60, 1, 7 * 24 * 60) * 60_000),
            minute_retention_ms=int(number("MINUTE_RETENTION_HOURS", 24, 1, 24 * 365) * 3_600_000),
            hour_retention_ms=int(number("HOUR_RETENTION_DAYS", 90, 1, 10 * 365) * 86_400_000),
            # Below one window is allowed: /api/health judges staleness at every request,
            # but the reconnect waits for the alarm (once per window), so it acts within
            # STALE_FEED_SECONDS + one window (DEPLOY.md says so).
            stale_feed_ms=int(number("STALE_FEED_SECONDS", 30, 5, 3600) * 1000),
            shards=shards("SHARDS", LIGHTER_MAX_SHARDS,
                          f"Lighter allows {LIGHTER_MESSAGES_PER_MINUTE} messages a minute and {LIGHTER_IN_FLIGHT} "
                          f"in flight per IP, and the shards share the deployment's {DEFAULT_MAX_PER_MINUTE} and "
                          f"{DEFAULT_MAX_IN_FLIGHT}: each needs {RESERVED_FOR_KEEPALIVE + 1} a minute (its pings "
                          f"and pongs, and a subscribe) and 1 in flight"),
            admin_token=text("ADMIN_TOKEN", None),
            read_token=text("READ_TOKEN", None),
            alert_webhook_url=webhook,
            alert_after_ms=int(number("ALERT_AFTER_MINUTES", 5, 0.1, 24 * 60) * 60_000),
            market_refresh_ms=int(number("MARKET_REFRESH_SECONDS", 300, 5, 24 * 3600) * 1000),
            outbox_max_windows=whole("OUTBOX_MAX_WINDOWS", 5_760, 1, 100_000),
            history_cache_s=whole("HISTORY_CACHE_SECONDS", 3600, 0, 365 * 86_400),
            allowed_origins=origins(text("ALLOWED_ORIGINS", None)),
            max_live_sockets=whole("MAX_LIVE_SOCKETS", 100, 1, 10_000),
            live_push_ms=whole("LIVE_PUSH_SECONDS", 10, 1, 3600) * 1000,
            alert_service_name=text("ALERT_SERVICE_NAME", SERVICE_NAME),
            expected_markets=whole("EXPECTED_MARKETS", 600, 1, 10_000),
            enabled_exchanges=enabled,
            market_symbols=_symbols("LIGHTER_MARKETS", text("LIGHTER_MARKETS", None)),
            paradex_market_symbols=_symbols("PARADEX_MARKETS", text("PARADEX_MARKETS", None)),
            paradex_api_url=paradex_api_url,
            paradex_ws_url=paradex_ws_url,
            # Paradex allows 20 new connections a second per IP: even a reconnect storm
            # of every shard at once stays under it.
            paradex_shards=whole("PARADEX_SHARDS", 1, 1, 16),
            paradex_asset_kinds=frozenset(asset_kinds),
            paradex_book_channel=channel,
            asset_pairs=_asset_pairs(text("ASSET_PAIRS", None)),
        )
        _check_d1_size(config)
        return config


def _names(var: str, raw: str, known: tuple[str, ...], lower: bool = False) -> tuple[str, ...]:
    """A comma-separated list of known names (order kept, duplicates dropped)."""
    out: list[str] = []
    for item in raw.split(","):
        item = item.strip().lower() if lower else item.strip().upper()
        if not item:
            continue
        if item not in known:
            raise ConfigError(f"{var} may name only {', '.join(known)}; got {item!r}")
        if item not in out:
            out.append(item)
    return tuple(out)


def _symbols(var: str, raw: str | None) -> tuple[str, ...]:
    """Comma-separated market symbols, case kept (symbols are case-sensitive), order kept,
    duplicates dropped; unset or empty: () (every market)."""
    out: list[str] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        if len(item) > MAX_SYMBOL_LENGTH or not item.isprintable() or any(c.isspace() for c in item):
            shown = item if len(item) <= 40 else item[:40] + "..."
            raise ConfigError(f"{var} must be comma-separated market symbols (as the exchange lists them, "
                              f"at most {MAX_SYMBOL_LENGTH} characters, no spaces), got {shown!r}")
        if item not in out:
            out.append(item)
    return tuple(out)


_PAIR_FORM = ("NAME=" + ":".join(f"{name.upper()}_SYMBOL" for name in EXCHANGES)
              + " (a side left empty: not on that exchange), e.g. BTC=BTC:BTC-USD-PERP")


def _asset_pairs(raw: str | None) -> tuple[AssetPair, ...]:
    """ASSET_PAIRS: comma-separated `NAME=LIGHTER_SYMBOL:PARADEX_SYMBOL`. Names and symbols
    are case-sensitive, without spaces, `,`, `=` or `:`; a name, or one exchange's symbol,
    may appear in one pair only (which one would win is a guess nobody should make)."""
    pairs: list[AssetPair] = []
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        shown = repr(item if len(item) <= 60 else item[:60] + "...")
        name, eq, rest = item.partition("=")
        name = name.strip()
        sides = rest.split(":")
        if not eq or len(sides) != len(EXCHANGES):
            raise ConfigError(f"ASSET_PAIRS entries are {_PAIR_FORM}; got {shown}")
        if not _plain(name):
            raise ConfigError(f"ASSET_PAIRS: the asset name of {shown} must be 1-{MAX_SYMBOL_LENGTH} printable "
                              "characters without spaces, ',', '=' or ':'")
        symbols = tuple(side.strip() or None for side in sides)
        for exchange, symbol in zip(EXCHANGES, symbols):
            if symbol is not None and not _plain(symbol):
                raise ConfigError(f"ASSET_PAIRS: the {exchange} symbol of {shown} must be a market symbol as "
                                  f"{exchange} lists it (at most {MAX_SYMBOL_LENGTH} characters, no spaces, ',', '=' or ':')")
        for pair in pairs:
            if pair.name == name:
                raise ConfigError(f"ASSET_PAIRS names the asset {name!r} twice")
            for exchange, mine, theirs in zip(EXCHANGES, symbols, pair.symbols):
                if mine is not None and mine == theirs:
                    raise ConfigError(f"ASSET_PAIRS gives the {exchange} market {mine!r} to both "
                                      f"{pair.name!r} and {name!r}")
        pairs.append(AssetPair(name, symbols))
    return tuple(pairs)


def _plain(word: str) -> bool:
    return (0 < len(word) <= MAX_SYMBOL_LENGTH and word.isprintable()
            and not any(c.isspace() or c in ",=:" for c in word))


def _check_webhook(url: str) -> None:
    # The URL is a secret (it carries the webhook's key): the error names only its scheme.
    parts = urlsplit(url)
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" and parts.hostname) and not loopback:
        if parts.scheme == "https":
            detail = "without a host"
        else:
            detail = f"with scheme {parts.scheme!r}" if parts.scheme else "without a scheme"
        raise ConfigError(
            f"ALERT_WEBHOOK_URL must be an https URL (http only for 127.0.0.1/localhost), got one {detail}"
        )


def _check_d1_size(config: Config) -> None:
    retention = (config.expected_markets, config.window_ms, config.snapshot_retention_ms,
                 config.minute_retention_ms, config.hour_retention_ms)
    size = estimate_d1_bytes(*retention)
    if size > D1_MAX_DATABASE_BYTES:
        rows = estimate_d1_rows(*retention)
        raise ConfigError(
            f"SNAPSHOT_RETENTION_MINUTES={config.snapshot_retention_ms // 60_000}, "
            f"MINUTE_RETENTION_HOURS={config.minute_retention_ms / 3_600_000:g} and "
            f"HOUR_RETENTION_DAYS={config.hour_retention_ms / 86_400_000:g} keep about {rows:,} rows for "
            f"EXPECTED_MARKETS={config.expected_markets} markets, an estimated {size / 1e9:.1f} GB at "
            f"{ROW_BYTES} B a row: above D1's {D1_MAX_DATABASE_BYTES / 1e9:.0f} GB per database. "
            "Shorten the retention (or lower EXPECTED_MARKETS if you track fewer markets)"
        )
