"""The dashboard page: Jinja2 templates kept in frontend/templates/, rendered here.

Templates reach the Worker through the ASSETS binding (assets directory
"frontend", so they live at /templates/<name>). Browsers never see them: the
"/templates/*" pattern is in run_worker_first and the Worker's router answers
404 there, while `env.ASSETS.fetch` from inside the Worker still reads them.

They are fetched and compiled once per isolate and kept in module state. Jinja2
is imported lazily, on the first dashboard request, so the API's cold start does
not pay for it. Autoescape is on: whatever reaches the template (the `symbol`
query parameter, configured URLs) is HTML-escaped, and the page's JavaScript,
all in static files, reads it back from data- attributes.

This module imports nothing from the Workers runtime at the top, so CPython
tests can render the same templates (`build_environment` + `page_context`).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlparse

TEMPLATE_PREFIX = "/templates/"
# Every template the page is made of: fetched together into a DictLoader.
TEMPLATES = ("base.html.j2", "dashboard.html.j2")
PAGE = "dashboard.html.j2"

MAX_SYMBOL_LENGTH = 64

# No inline script or style anywhere: everything the page runs is a static file.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}

# The compiled page, once per isolate.
_cache: dict = {}


class TemplateUnavailable(RuntimeError):
    """A template could not be read through the ASSETS binding."""


def build_environment(sources: dict[str, str]):
    """A Jinja2 environment over template sources {name: text}, autoescape on."""
    import jinja2  # lazy: ~300-500 ms of a cold start, paid only by the first page view

    return jinja2.Environment(
        loader=jinja2.DictLoader(sources),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def requested_symbol(url: str) -> str:
    """The chart symbol asked for with ?symbol=..., as plain text (the template escapes it)."""
    values = parse_qs(urlparse(url).query).get("symbol") or [""]
    return values[0].strip()[:MAX_SYMBOL_LENGTH]


# How the page names each exchange (the switch, the feed tile, the log).
EXCHANGE_LABELS = {"lighter": "Lighter", "paradex": "Paradex"}
DEFAULT_EXCHANGE = "lighter"


def requested_exchange(url: str, enabled) -> str:
    """The exchange the page opens on: ?exchange=... when it names an enabled one
    (case-insensitive), else the default exchange when enabled, else the first enabled.
    The page's script may still prefer the one remembered in the browser when the URL
    names none."""
    enabled = list(enabled) or [DEFAULT_EXCHANGE]
    asked = (parse_qs(urlparse(url).query).get("exchange") or [""])[0].strip().lower()
    if asked in enabled:
        return asked
    return DEFAULT_EXCHANGE if DEFAULT_EXCHANGE in enabled else enabled[0]


def page_context(config, symbol: str = "", exchange: str = "") -> dict:
    """What the page template gets. Never a token itself: only whether one is set."""
    enabled = list(config.enabled_exchanges) or [DEFAULT_EXCHANGE]
    if exchange not in enabled:
        exchange = DEFAULT_EXCHANGE if DEFAULT_EXCHANGE in enabled else enabled[0]
    exchanges = [
        {"name": name, "label": EXCHANGE_LABELS.get(name, name), "feed_url": config.for_exchange(name).ws_url}
        for name in enabled
    ]
    return {
        "ws_path": "/ws",
        "feed_url": config.for_exchange(exchange).ws_url,
        "exchanges": exchanges,
        "exchange": exchange,
        "exchange_label": EXCHANGE_LABELS.get(exchange, exchange),
        "window_seconds": config.window_ms // 1000,
        "shards": config.shards,
        "snapshot_retention_minutes": config.snapshot_retention_ms // 60_000,
        "minute_retention_hours": config.minute_retention_ms // 3_600_000,
        "hour_retention_days": config.hour_retention_ms // 86_400_000,
        "control_enabled": bool(config.admin_token),
        # Whether reads need READ_TOKEN (the page then asks for it first). Never the token.
        "read_protected": bool(config.read_token),
        # LIGHTER_MARKETS / PARADEX_MARKETS per enabled exchange ([] : every market).
        "allowlists": {name: list(config.for_exchange(name).market_symbols) for name in enabled},
        # New rows land once a window, and a push whose windowsFlushed moved refreshes the
        # table at once: this poll only fills in when no push came (every other window).
        "overview_poll_ms": max(5000, 2 * config.window_ms),
        "live_push_ms": config.live_push_ms,
        "initial_symbol": symbol,
    }


async def _fetch_template(env, origin: str, name: str) -> str:
    response = await env.ASSETS.fetch(f"{origin}{TEMPLATE_PREFIX}{name}")
    status = int(response.status)
    if status != 200:
        raise TemplateUnavailable(f"ASSETS {TEMPLATE_PREFIX}{name}: HTTP {status}")
    return str(await response.text())


async def _page_template(env, origin: str):
    template = _cache.get("page")
    if template is None:
        texts = await asyncio.gather(*(_fetch_template(env, origin, name) for name in TEMPLATES))
        template = build_environment(dict(zip(TEMPLATES, texts, strict=True))).get_template(PAGE)
        _cache["page"] = template
    return template


async def render_dashboard(request, env, config):
    from workers import Response

    url = str(request.url)
    parts = urlparse(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    try:
        template = await _page_template(env, origin)
    except Exception as exc:  # templates missing from the upload, or a syntax error in one
        return Response(
            f"dashboard unavailable: {exc}\n",
            status=500,
            headers={"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"},
        )
    html = template.render(page_context(config, requested_symbol(url), requested_exchange(url, config.enabled_exchanges)))
    return Response(html, status=200, headers=PAGE_HEADERS)
