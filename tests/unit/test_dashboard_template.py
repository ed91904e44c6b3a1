"""The dashboard templates, rendered with Jinja2 in CPython exactly as the Worker does
(runtime.dashboard.build_environment + page_context), with hostile input."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from runtime import dashboard
from tracker.config import Config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "frontend" / "templates"
STATIC = ROOT / "frontend" / "static"
HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE_QUOTES = "\"><script>alert('x')</script>"


class Page(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.script_text.append(data)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def by_id(self, element_id: str) -> dict[str, str | None]:
        found = [a for _, a in self.tags if a.get("id") == element_id]
        assert len(found) == 1, f"expected one #{element_id}, found {len(found)}"
        return found[0]


def sources() -> dict[str, str]:
    return {name: (TEMPLATES / name).read_text(encoding="utf-8") for name in dashboard.TEMPLATES}


def render(config: Config, symbol: str = "") -> str:
    template = dashboard.build_environment(sources()).get_template(dashboard.PAGE)
    return template.render(dashboard.page_context(config, symbol))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture
def config() -> Config:
    return Config(admin_token="s3cret-admin-token")


def test_every_template_the_worker_fetches_exists():
    assert set(dashboard.TEMPLATES) == {p.name for p in TEMPLATES.glob("*.html.j2")}
    assert dashboard.PAGE in dashboard.TEMPLATES


def test_hostile_symbol_is_escaped_into_a_data_attribute(config):
    html = render(config, HOSTILE)
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    page = parse(html)
    assert not page.find("img"), "the symbol became markup"
    # The browser reads back exactly the original text.
    assert page.by_id("app")["data-initial-symbol"] == HOSTILE


def test_quotes_cannot_break_out_of_the_attribute(config):
    html = render(config, HOSTILE_QUOTES)
    page = parse(html)
    assert page.by_id("app")["data-initial-symbol"] == HOSTILE_QUOTES
    assert not page.script_text, "an inline script appeared"
    assert all(a.get("src") for a in page.find("script")), "every script must be a file"


def test_hostile_configuration_is_escaped_too():
    config = Config(ws_url=f"wss://example.invalid/{HOSTILE}", admin_token="x")
    html = render(config)
    assert HOSTILE not in html
    assert not parse(html).find("img")


def test_symbol_from_the_query_string():
    assert dashboard.requested_symbol("https://h/?symbol=%3Cimg%20src%3Dx%3E") == "<img src=x>"
    assert dashboard.requested_symbol("https://h/?symbol=ETH&symbol=BTC") == "ETH"
    assert dashboard.requested_symbol("https://h/") == ""
    assert len(dashboard.requested_symbol("https://h/?symbol=" + "A" * 500)) == dashboard.MAX_SYMBOL_LENGTH


def test_no_inline_script_style_or_handlers(config):
    page = parse(render(config, "ETH"))
    assert not page.script_text
    scripts = page.find("script")
    assert {a["src"] for a in scripts} == {"/static/vendor/chart.umd.min.js", "/static/js/main.js"}
    assert page.find("script", type="module", src="/static/js/main.js")
    assert not page.find("style")
    for tag, attrs in page.tags:
        assert "style" not in attrs, f"<{tag}> has a style attribute (blocked by the CSP)"
        handlers = [name for name in attrs if name.startswith("on")]
        assert not handlers, f"<{tag}> has inline handlers {handlers}"
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None and tag in ("script", "link"):
                assert value.startswith("/static/"), f"<{tag} {name}={value}> is not a local static file"


def test_the_admin_token_never_reaches_the_page(config):
    html = render(config)
    assert "s3cret-admin-token" not in html
    assert parse(html).by_id("app")["data-control-enabled"] == "true"
    unset = render(Config(admin_token=None))
    assert parse(unset).by_id("app")["data-control-enabled"] == "false"
    assert "ADMIN_TOKEN is not set" in unset


def test_the_read_token_never_reaches_the_page():
    """READ_TOKEN set: the page knows it must ask for it (data-read-protected) and has
    the form to ask with, hidden until the script decides; the token itself never."""
    page = parse(html := render(Config(read_token="s3cret-read-token")))
    assert "s3cret-read-token" not in html
    assert page.by_id("app")["data-read-protected"] == "true"
    assert "hidden" in page.by_id("read-panel") and page.by_id("read-input")["type"] == "password"
    assert parse(render(Config())).by_id("app")["data-read-protected"] == "false"


def test_allowlists_reach_the_page_as_escaped_json():
    """LIGHTER_MARKETS / PARADEX_MARKETS go to the page's script as JSON in a data-
    attribute: a symbol with quotes or markup stays text."""
    import json

    hostile = "<img'x\"=>"
    c = Config(market_symbols=("ETH", hostile), enabled_exchanges=("lighter", "paradex"),
               paradex_market_symbols=("BTC-USD-PERP",))
    html = render(c)
    assert "<img'x" not in html
    assert json.loads(parse(html).by_id("app")["data-allowlists"]) == {
        "lighter": ["ETH", hostile], "paradex": ["BTC-USD-PERP"]}
    assert json.loads(parse(render(Config())).by_id("app")["data-allowlists"]) == {"lighter": []}


def test_config_reaches_the_page(config):
    page = parse(render(Config(window_ms=5000, shards=3, admin_token="t")))
    app = page.by_id("app")
    assert app["data-window-seconds"] == "5"
    assert app["data-shards"] == "3"
    assert app["data-ws-path"] == "/ws"
    assert page.by_id("window-progress")["max"] == "5"


def test_elements_the_scripts_need_exist(config):
    """Every byId("...") in the static JS names an element of the rendered page (the page
    with both exchanges enabled: it has every panel)."""
    page = parse(render(replace(config, enabled_exchanges=("lighter", "paradex"))))
    ids = {a.get("id") for _, a in page.tags if a.get("id")}
    wanted = set()
    for js in (STATIC / "js").glob("*.js"):
        wanted |= set(re.findall(r'byId\("([\w-]+)"\)', js.read_text(encoding="utf-8")))
        # StatsPanel looks its ids up from a list
        if js.name == "status.js":
            block = js.read_text(encoding="utf-8").split("for (const id of [", 1)[1].split("])", 1)[0]
            wanted |= set(re.findall(r'"([\w-]+)"', block))
    assert wanted, "found no byId() calls"
    assert wanted <= ids, f"missing from the page: {sorted(wanted - ids)}"


def test_the_compare_panel_is_there_with_both_exchanges_only(config):
    """One exchange enabled: nothing to put beside it (main.js makes no compare chart)."""
    both = {a.get("id") for _, a in parse(render(replace(config, enabled_exchanges=("lighter", "paradex")))).tags}
    one = {a.get("id") for _, a in parse(render(config)).tags}
    assert "compare-panel" in both and "compare-asset" in both
    assert "compare-panel" not in one and "compare-asset" not in one


def test_static_js_never_uses_html_sinks():
    """Data is set as text only: no innerHTML/outerHTML/insertAdjacentHTML/document.write."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function")
    for js in (STATIC / "js").glob("*.js"):
        text = js.read_text(encoding="utf-8")
        code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)  # comments may name the sinks
        code = re.sub(r"^\s*//.*$", "", code, flags=re.M)
        for sink in sinks:
            assert sink not in code, f"{js.name} uses {sink}"


def test_content_security_policy():
    csp = dashboard.CONTENT_SECURITY_POLICY
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert "unsafe" not in csp
    assert dashboard.PAGE_HEADERS["content-security-policy"] == csp
    assert dashboard.PAGE_HEADERS["content-type"].startswith("text/html")


# -- the exchange switch -----------------------------------------------------------------


def render_at(config: Config, url: str) -> str:
    """The page as render_dashboard makes it for this URL."""
    template = dashboard.build_environment(sources()).get_template(dashboard.PAGE)
    return template.render(dashboard.page_context(
        config, dashboard.requested_symbol(url), dashboard.requested_exchange(url, config.enabled_exchanges)))


def switch_buttons(page: Page) -> list[dict[str, str | None]]:
    return [a for t, a in page.tags if t == "button" and "data-exchange" in a]


def test_one_exchange_has_no_switch(config):
    page = parse(render_at(config, "https://h/?exchange=paradex"))
    assert not [a for _, a in page.tags if a.get("id") in ("exchange-switch", "log-exchange")]
    assert not switch_buttons(page)
    app = page.by_id("app")
    assert app["data-exchanges"] == "lighter" and app["data-exchange"] == "lighter"
    html = render(config)
    assert "Lighter feed" in html


def test_two_exchanges_have_a_switch_and_a_log_picker():
    config = Config(admin_token="t", enabled_exchanges=("lighter", "paradex"),
                    paradex_ws_url="wss://paradex.example/v1?a=1&b=2")
    page = parse(render_at(config, "https://h/"))
    buttons = switch_buttons(page)
    assert [(b["data-exchange"], b["aria-pressed"]) for b in buttons] == [("lighter", "true"), ("paradex", "false")]
    assert buttons[1]["data-feed-url"] == "wss://paradex.example/v1?a=1&b=2"
    assert page.by_id("app")["data-exchanges"] == "lighter,paradex"
    assert [a["value"] for t, a in page.tags if t == "option" and "value" in a][-3:] == ["", "lighter", "paradex"]
    page.by_id("log-exchange")

    # ?exchange=paradex opens on Paradex: pressed, its feed, its name on the feed tile.
    html = render_at(config, "https://h/?exchange=Paradex&symbol=BTC-USD-PERP")
    page = parse(html)
    assert [b["aria-pressed"] for b in switch_buttons(page)] == ["false", "true"]
    assert page.by_id("app")["data-exchange"] == "paradex"
    assert page.by_id("app")["data-initial-symbol"] == "BTC-USD-PERP"
    assert "Paradex feed" in html and "wss://paradex.example/v1?a=1&amp;b=2</span>" in html


@pytest.mark.parametrize("url, enabled, expected", [
    ("https://h/", ("lighter", "paradex"), "lighter"),
    ("https://h/?exchange=paradex", ("lighter", "paradex"), "paradex"),
    ("https://h/?exchange=%20PARADEX%20", ("lighter", "paradex"), "paradex"),
    ("https://h/?exchange=paradex", ("lighter",), "lighter"),
    ("https://h/?exchange=" + "%3Cimg%3E", ("lighter", "paradex"), "lighter"),
    ("https://h/", ("paradex",), "paradex"),
    ("https://h/?exchange=lighter", ("paradex",), "paradex"),
    ("https://h/?exchange=paradex&exchange=lighter", ("lighter", "paradex"), "paradex"),
])
def test_requested_exchange(url, enabled, expected):
    assert dashboard.requested_exchange(url, enabled) == expected


def test_paradex_only_opens_on_paradex_without_a_switch():
    config = Config(admin_token="t", enabled_exchanges=("paradex",), paradex_ws_url="wss://paradex.example/ws")
    html = render_at(config, "https://h/")
    page = parse(html)
    assert not switch_buttons(page)
    assert page.by_id("app")["data-exchange"] == "paradex"
    assert "Paradex feed" in html and "wss://paradex.example/ws" in html


def test_hostile_exchange_in_the_url_never_reaches_the_page():
    config = Config(admin_token="t", enabled_exchanges=("lighter", "paradex"))
    html = render_at(config, "https://h/?exchange=" + HOSTILE.replace(" ", "%20"))
    assert HOSTILE not in html and "onerror" not in html
    assert parse(html).by_id("app")["data-exchange"] == "lighter"
