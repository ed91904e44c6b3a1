"""The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by
PyPI playwright; no `playwright install`) against the session's wrangler dev and
simulator.

One walk through the page as an operator would do it: open it, enter the admin
token (a wrong one first), start tracking, watch the status, the message counter,
the market table and the chart fill in, reload (the token is remembered), stop.
On the way, nothing from the exchange may become markup: no dialog may open, no
<img> may appear, and hostile text shows literally in the table, the chart's
picker and the activity log. The live socket goes through a Playwright proxy
that injects a hostile log line and then drops the connection once, so the
page's reconnect is exercised too.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

from tracker.sql import MINUTE_COLUMNS, OVERVIEW_WINDOW_COLUMNS

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "tests" / "artifacts" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
HOSTILE = "<img src=x onerror=alert(1)>"
TOKEN = "test-token"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Watch:
    """What the page did that it must not: dialogs, script errors, CSP refusals."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.csp: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.csp.append(message.text)

    def check(self) -> None:
        assert self.dialogs == [], f"a dialog opened: {self.dialogs}"
        assert self.errors == [], f"script errors: {self.errors}"
        assert self.csp == [], f"CSP refusals: {self.csp}"


class SocketProxy:
    """Forwards the page's /ws both ways; on the first connection, sends the page a
    hostile log line after the server's hello, then (on request) drops it."""

    def __init__(self) -> None:
        self.connections = 0
        self.routes = []
        self.injected = False

    def __call__(self, ws) -> None:
        self.connections += 1
        server = ws.connect_to_server()
        self.routes.append(ws)
        first = self.connections == 1

        def from_server(message) -> None:
            ws.send(message)
            if first and not self.injected and '"hello"' in str(message)[:40]:
                self.injected = True
                entry = {"ts": int(time.time() * 1000), "level": "warn", "component": HOSTILE, "shard": 0,
                         "message": f"symbol {HOSTILE} says hi"}
                ws.send(json.dumps({"type": "log", "entry": entry}))

        ws.on_message(lambda message: server.send(message))
        server.on_message(from_server)

    def drop_first(self) -> None:
        self.routes[0].close(code=1011, reason="proxy drops the socket")


def messages(page: Page) -> int:
    text = page.locator("#stat-messages").inner_text()
    digits = re.sub(r"[^0-9]", "", text)
    return int(digits) if digits else -1


def painted_pixels(page: Page) -> int:
    """Non-transparent pixels on the chart canvas."""
    return page.evaluate(
        """() => {
            const canvas = document.getElementById("price-chart");
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
            return painted;
        }"""
    )


def test_dashboard_start_watch_stop(browser, worker, simulator):
    # A known starting point: tracking off (other tests share this wrangler dev).
    assert worker.admin_post("/api/stop").status_code == 200
    sim_symbols = {m["symbol"] for m in simulator.get("/api/v1/orderBooks")["order_books"]}
    real_hostile = HOSTILE in sim_symbols

    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    watch = Watch(page)
    proxy = SocketProxy()
    page.route_web_socket(re.compile(r"/ws$"), proxy)
    if not real_hostile:
        # The simulator has no hostile market: add one to the overview the page sees.
        def hostile_overview(route) -> None:
            try:
                body = route.fetch().json()
            except Exception:  # the page is closing: nothing to answer
                return
            template = next((m for m in body["markets"] if m.get("window")), None)
            body["markets"].append({
                "market_index": 987654, "symbol": HOSTILE, "age_ms": 1234, "minute": None,
                "window": dict(template["window"], tick_count=0) if template else None,
            })
            body["count"] = len(body["markets"])
            route.fulfill(json=body)

        page.route(re.compile(r"/api/overview$"), hostile_overview)

    response = page.goto(worker.url + "/")
    assert response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe" not in csp

    status = page.locator("#status")
    toggle = page.locator("#toggle")
    expect(status).to_have_text("⚪ stopped", timeout=30_000)
    expect(page.locator("#link-text")).to_have_text("live")
    expect(toggle).to_have_text("START TRACKING")

    # No token yet: the page asks for it inline. A wrong one is refused and forgotten.
    toggle.click()
    form = page.locator("#token-form")
    expect(form).to_be_visible()
    page.fill("#token-input", "wrong-token")
    page.click("#token-form button[type=submit]")
    expect(page.locator("#control-note")).to_contain_text("refused", timeout=15_000)
    expect(form).to_be_visible()
    assert page.evaluate("() => localStorage.getItem('lighterTracker.adminToken')") is None
    expect(status).to_have_text("⚪ stopped")

    page.fill("#token-input", TOKEN)
    page.click("#token-form button[type=submit]")
    expect(status).to_have_text("🟢 TRACKING", timeout=30_000)
    expect(form).to_be_hidden()
    expect(toggle).to_have_text("STOP TRACKING")
    assert page.evaluate("() => localStorage.getItem('lighterTracker.adminToken')") == TOKEN

    # The message counter rises live (pushed stats, 1 s apart).
    page.wait_for_function("() => /[1-9]/.test(document.getElementById('stat-messages').textContent)",
                           timeout=30_000)
    first = messages(page)
    page.wait_for_function(
        "n => Number(document.getElementById('stat-messages').textContent.replace(/[^0-9]/g, '')) > n",
        arg=first, timeout=15_000,
    )
    expect(page.locator("#stat-connected")).to_have_text("connected", timeout=30_000)

    # The hostile log line arrived through the proxy and is plain text.
    hostile_log = page.locator("#log li .msg", has_text="says hi")
    expect(hostile_log).to_have_count(1, timeout=10_000)
    assert hostile_log.inner_text() == f"symbol {HOSTILE} says hi"
    assert page.locator("#log li .comp", has_text="onerror").first.inner_text() == f"[{HOSTILE}]"

    # Drop the live socket once: the page says so, then reconnects by itself.
    proxy.drop_first()
    expect(page.locator("#link-state")).to_have_attribute("data-state", re.compile("reconnecting|connecting"),
                                                          timeout=5_000)
    expect(page.locator("#link-text")).to_have_text("live", timeout=20_000)
    assert proxy.connections >= 2
    after_reconnect = messages(page)
    page.wait_for_function(
        "n => Number(document.getElementById('stat-messages').textContent.replace(/[^0-9]/g, '')) > n",
        arg=after_reconnect, timeout=15_000,
    )

    # Rows with prices, once the first window is in D1 (~window + grace after start).
    priced = page.locator("#market-rows tr td.mid", has_text=re.compile(r"\d"))
    expect(priced.first).to_be_visible(timeout=60_000)
    table_symbols = set(page.locator("#market-rows td.symbol").all_inner_texts())
    assert table_symbols and table_symbols <= sim_symbols | {HOSTILE}, table_symbols

    # The hostile symbol is literal text in the table and in the chart's picker.
    cell = page.locator("#market-rows td.symbol", has_text="onerror")
    expect(cell).to_have_count(1, timeout=15_000)
    assert cell.inner_text() == HOSTILE
    options = page.locator("#symbol-select option")
    assert HOSTILE in options.all_inner_texts()

    # A drawn chart: chart.js placed visible points inside its plot area, and the
    # canvas has paint on it.
    page.wait_for_function(
        """() => {
            const chart = window.Chart && Chart.getChart(document.getElementById("price-chart"));
            if (!chart) return false;
            const points = chart.getDatasetMeta(0).data;
            const area = chart.chartArea;
            const inside = (p) => p.x >= area.left && p.x <= area.right && p.y >= area.top && p.y <= area.bottom;
            return points.length > 0 && points.every(inside) && (points.length > 1 || points[0].options.radius > 0);
        }""",
        timeout=45_000,
    )
    assert painted_pixels(page) > 2000
    expect(page.locator("#chart-empty")).to_be_hidden()
    expect(page.locator("#chart-source")).to_contain_text(re.compile(r"windows|averages"))

    # Choosing a market in the table charts it.
    chosen_row = page.locator("#market-rows tr", has=page.locator("td.mid", has_text=re.compile(r"\d"))).last
    chosen = chosen_row.locator("td.symbol").inner_text()
    chosen_row.click()
    expect(page.locator("#symbol-select")).to_have_value(chosen)
    expect(page.locator("#chart-source")).to_contain_text(chosen, timeout=15_000)

    assert page.locator("img").count() == 0, "a symbol became an <img>"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    # The live socket is up (wrangler dev reloads, e.g. on a source edit, drop it for a while).
    expect(page.locator("#link-text")).to_have_text("live", timeout=45_000)
    page.wait_for_timeout(1500)  # let a stats tick and the rows' flash settle
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The token is remembered: after a reload, STOP works without asking.
    page.reload()
    expect(status).to_have_text("🟢 TRACKING", timeout=30_000)
    expect(page.locator("#token-state")).to_be_visible()
    toggle.click()
    expect(status).to_have_text("⚪ stopped", timeout=30_000)
    expect(page.locator("#token-form")).to_be_hidden()
    expect(toggle).to_have_text("START TRACKING")

    assert page.locator("img").count() == 0
    watch.check()
    page.unroute_all(behavior="ignoreErrors")
    context.close()


def test_symbol_in_the_url_is_text(browser, worker):
    """?symbol=<markup> preselects the chart as text: escaped by Jinja2 into a data-
    attribute, read back and put in an <option> as text."""
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page)
    response = page.goto(f"{worker.url}/?symbol={quote(HOSTILE)}")
    assert response.status == 200
    assert HOSTILE not in response.text()
    select = page.locator("#symbol-select")
    expect(select).to_have_value(HOSTILE, timeout=15_000)
    assert page.locator("#symbol-select option").first.inner_text() == HOSTILE
    page.wait_for_timeout(1000)  # the chart's (failing) fetch for the unknown symbol
    assert page.locator("img").count() == 0
    watch.check()
    context.close()


def test_templates_are_not_served(worker):
    for path in ("/templates/dashboard.html.j2", "/templates/base.html.j2"):
        r = worker.get(path)
        assert r.status_code == 404, f"{path} -> {r.status_code}"
        assert "{%" not in r.text
    assert worker.get("/static/js/main.js").status_code == 200
    assert worker.get("/static/vendor/chart.umd.min.js").status_code == 200


DEPTH_SCREENSHOTS = {1400: ROOT / "tests" / "artifacts" / "dashboard-depth-1400.png",
                     390: ROOT / "tests" / "artifacts" / "dashboard-depth-390.png"}
SLIPPAGE_SCREENSHOT = ROOT / "tests" / "artifacts" / "dashboard-slippage-1400.png"


def _depth_points(page: Page) -> int:
    """Points chart.js placed inside the depth chart's plot area (0 when not drawn)."""
    return page.evaluate(
        """() => {
            const chart = window.Chart && Chart.getChart(document.getElementById("depth-chart"));
            if (!chart) return 0;
            const area = chart.chartArea;
            let inside = 0;
            chart.data.datasets.forEach((_, i) => {
                for (const p of chart.getDatasetMeta(i).data) {
                    if (p.x >= area.left - 1 && p.x <= area.right + 1 && p.y >= area.top - 1 && p.y <= area.bottom + 1) inside++;
                }
            });
            return inside;
        }"""
    )


def _lines(page: Page, selector: str) -> int:
    """Rendered lines of an element's text (a word broken in two makes 2)."""
    return page.evaluate(
        """(selector) => {
            const range = document.createRange();
            range.selectNodeContents(document.querySelector(selector));
            const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            return tops.size;
        }""",
        selector,
    )


@pytest.mark.parametrize("width", [1400, 390])
def test_depth_chart_and_columns(browser, worker, width):
    """With tracking on: the depth chart of the chosen market (windows for 1 h, hours for
    longer) and its slippage view, the depth, imbalance and slippage columns sortable,
    "connected" on one line; a screenshot at a desktop and a phone width."""
    assert worker.admin_post("/api/start").status_code == 200
    try:
        overview = worker.wait_json(
            "/api/overview",
            lambda o: any(m["window"] and m["window"]["bid_depth_50"] is not None for m in o["markets"]),
            timeout=60,
        )
        symbol = next(m["symbol"] for m in overview["markets"] if m["window"] and m["window"]["bid_depth_50"] is not None)
        context = browser.new_context(viewport={"width": width, "height": 1000}, color_scheme="dark")
        page = context.new_page()
        watch = Watch(page)
        assert page.goto(f"{worker.url}/?symbol={quote(symbol)}").status == 200
        expect(page.locator("#stat-connected")).to_have_text("connected", timeout=30_000)
        tile = page.evaluate(
            "() => { const v = document.getElementById('stat-connected');"
            " return {tile: v.clientWidth, font: getComputedStyle(v).fontSize, viewport: innerWidth}; }"
        )
        assert _lines(page, "#stat-connected") == 1, f"'connected' wraps in the feed tile: {tile}"

        # The 1 h range draws windows: six series, points inside the plot.
        expect(page.locator(".depth-panel button[data-range='1h']")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#depth-source")).to_contain_text(f"{symbol} ·", timeout=30_000)
        expect(page.locator("#depth-source")).to_contain_text("s windows")
        page.wait_for_function(
            "() => { const c = window.Chart && Chart.getChart(document.getElementById('depth-chart'));"
            " return c && c.data.datasets.length === 6 && c.data.datasets.every((d) => d.data.length > 0); }",
            timeout=30_000,
        )
        assert _depth_points(page) >= 6
        expect(page.locator("#depth-empty")).to_be_hidden()
        labels = page.evaluate("() => Chart.getChart(document.getElementById('depth-chart')).data.datasets.map((d) => d.label)")
        assert labels == ["bid 10 bps", "bid 50 bps", "bid 100 bps", "ask 10 bps", "ask 50 bps", "ask 100 bps"]

        # The market table: depth within 50 bps and imbalance, as numbers, sortable.
        depth_cells = page.locator("#market-rows td.depth50", has_text=re.compile(r"\d"))
        expect(depth_cells.first).to_be_visible(timeout=30_000)
        imbalances = page.locator("#market-rows td.imbalance").all_inner_texts()
        assert any(re.fullmatch(r"-?[01]\.\d\d", v) for v in imbalances), imbalances
        page.click("#markets thead button[data-sort='depth50']")
        expect(page.locator("#markets thead button[data-sort='depth50']")).to_have_attribute("aria-sort", "descending")
        shown = page.evaluate(
            """() => [...document.querySelectorAll('#market-rows tr')].map((tr) => tr.querySelector('td.depth50').textContent)"""
        )
        scale = {"k": 1e3, "M": 1e6, "B": 1e9}
        values = [float(v[:-1].replace(",", "")) * scale[v[-1]] if v[-1] in scale else float(v.replace(",", ""))
                  for v in shown if v != "—"]
        assert values == sorted(values, reverse=True) and len(values) >= 2, shown

        # Slippage at 10k and 100k (bps, the mean of buy and sell; each side in the title),
        # the cheapest first on the first click.
        worker.wait_json("/api/overview", lambda o: sum(
            1 for m in o["markets"] if m["window"] and m["window"]["slip_buy_100k"] is not None) >= 2, timeout=60)
        for column in ("slip10k", "slip100k"):
            cells = page.locator(f"#market-rows td.{column}", has_text=re.compile(r"\d"))
            expect(cells.first).to_be_visible(timeout=30_000)
            assert re.fullmatch(r"\d+\.\d\d", cells.first.inner_text()), cells.first.inner_text()
            assert re.search(r"buy \d+\.\d\d bps, sell \d+\.\d\d bps", cells.first.get_attribute("title"))
            page.click(f"#markets thead button[data-sort='{column}']")
            expect(page.locator(f"#markets thead button[data-sort='{column}']")).to_have_attribute("aria-sort", "ascending")
            shown = page.evaluate(
                "(column) => [...document.querySelectorAll('#market-rows tr')].map((tr) => tr.querySelector('td.' + column).textContent)",
                column,
            )
            values = [float(v) for v in shown if v != "—"]
            assert values == sorted(values) and len(values) >= 2, shown
            assert "—" not in shown or shown.index("—") >= len(values), f"unfilled rows sort last: {shown}"

        # The depth panel's slippage view: buy and sell at the four sizes, in bps, from the
        # same rows; and back.
        page.click(".depth-panel button[data-view='slippage']")
        expect(page.locator(".depth-panel button[data-view='slippage']")).to_have_attribute("aria-pressed", "true")
        expect(page.locator(".depth-panel button[data-view='depth']")).to_have_attribute("aria-pressed", "false")
        page.wait_for_function(
            "() => { const c = window.Chart && Chart.getChart(document.getElementById('depth-chart'));"
            " return c && c.data.datasets.length === 8 && c.data.datasets[0].data.length > 0; }",
            timeout=30_000,
        )
        labels = page.evaluate("() => Chart.getChart(document.getElementById('depth-chart')).data.datasets.map((d) => d.label)")
        assert labels == [f"{side} {size}" for side in ("sell", "buy") for size in ("1K", "10K", "100K", "1M")]
        assert page.evaluate("() => Chart.getChart(document.getElementById('depth-chart')).options.scales.y.title.text") \
            == "slippage (bps of the mid)"
        expect(page.locator("#depth-source")).to_contain_text("latest at 10k: buy")
        assert _depth_points(page) >= 4
        if width == 1400:
            page.wait_for_timeout(500)
            page.locator(".depth-panel").screenshot(path=str(SLIPPAGE_SCREENSHOT))
        page.click(".depth-panel button[data-view='depth']")
        page.wait_for_function(
            "() => { const c = window.Chart && Chart.getChart(document.getElementById('depth-chart'));"
            " return c && c.data.datasets.length === 6 && c.data.datasets.every((d) => d.data.length > 0); }",
            timeout=10_000,
        )

        if width == 390:
            # Nothing wider than the phone: the page does not scroll sideways.
            assert page.evaluate("() => document.documentElement.scrollWidth") <= width
        page.wait_for_timeout(1000)  # a stats tick and the rows' flash settle
        DEPTH_SCREENSHOTS[width].parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DEPTH_SCREENSHOTS[width]), full_page=True)

        # Longer ranges read hour rows (written when an hour completes or tracking stops).
        page.click(".depth-panel button[data-range='7d']")
        expect(page.locator(".depth-panel button[data-range='7d']")).to_have_attribute("aria-pressed", "true")
        expect(page.locator(".depth-panel button[data-range='1h']")).to_have_attribute("aria-pressed", "false")
        has_hours = bool(worker.get_json(f"/api/hours?symbol={quote(symbol)}")["hours"])
        expect(page.locator("#depth-source")).to_contain_text("hourly averages" if has_hours else "no depth rows",
                                                              timeout=15_000)
        watch.check()
        context.close()
    finally:
        worker.admin_post("/api/stop")


def _symbols(overview: dict) -> set[str]:
    return {m["symbol"] for m in overview["markets"]}


def _table_symbols(page: Page) -> set[str]:
    return set(page.locator("#market-rows td.symbol").all_inner_texts())


EXCHANGE_SCREENSHOTS = {1400: ROOT / "tests" / "artifacts" / "dashboard-paradex-1400.png",
                        390: ROOT / "tests" / "artifacts" / "dashboard-exchanges-390.png"}


def _request_started_ms(request) -> float:
    """When the browser issued a request (epoch ms; known once its response came)."""
    request.response()  # waits for it to finish
    return request.timing["startTime"]


def test_exchange_switch(browser, worker):
    """With Lighter and Paradex enabled: the switch is shown, and choosing Paradex puts
    its markets in the table, its stats in the panel, ?exchange=paradex in the URL and
    on the data requests, and start/stop act on Paradex only. The choice survives a
    reload (URL) and a visit without it (localStorage); the activity log names each
    line's exchange and can show one exchange's lines."""
    stats = worker.get_json("/api/stats")
    assert set(stats["exchanges"]) == {"lighter", "paradex"}  # the session enables both (tests/conftest.py)

    # Lighter stopped, Paradex tracking: the stats panel tells them apart.
    assert worker.admin_post("/api/stop?exchange=lighter").status_code == 200
    assert worker.admin_post("/api/start?exchange=paradex").status_code == 200
    try:
        paradex = _symbols(worker.wait_json("/api/overview?exchange=paradex", lambda o: o["markets"], timeout=60))
        lighter = _symbols(worker.get_json("/api/overview"))
        assert paradex and not paradex & lighter, (paradex, lighter)

        context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
        page = context.new_page()
        watch = Watch(page)
        data_requests: list = []
        page.on("request", lambda r: data_requests.append(r) if re.search(r"/api/(overview|minutes|snapshots|hours)", r.url) else None)
        assert page.goto(worker.url + "/").status == 200

        switch = page.locator("#exchange-switch")
        expect(switch).to_be_visible()
        buttons = switch.locator("button[data-exchange]")
        assert buttons.all_inner_texts() == ["Lighter", "Paradex"]
        lighter_button = switch.locator("button[data-exchange='lighter']")
        paradex_button = switch.locator("button[data-exchange='paradex']")
        expect(lighter_button).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#stat-connected-label")).to_have_text("Lighter feed")
        expect(page.locator("#status")).to_have_text("⚪ stopped", timeout=30_000)
        if lighter:
            expect(page.locator("#market-rows tr").first).to_be_attached(timeout=15_000)
            assert _table_symbols(page) <= lighter

        # Paradex: its markets, its stats, its name; the URL says so.
        page.evaluate("t => localStorage.setItem('lighterTracker.adminToken', t)", TOKEN)
        clicking_ms = time.time() * 1000
        paradex_button.click()
        # Requests the page issued once the click was dispatched (a Lighter refresh that
        # started just before it may reach this process after the click: not counted).
        switched_ms = time.time() * 1000
        expect(paradex_button).to_have_attribute("aria-pressed", "true")
        expect(lighter_button).to_have_attribute("aria-pressed", "false")
        expect(page).to_have_url(re.compile(r"[?&]exchange=paradex"))
        expect(page.locator("#stat-connected-label")).to_have_text("Paradex feed")
        expect(page.locator("#status")).to_have_text("🟢 TRACKING", timeout=15_000)
        page.wait_for_function(
            """known => {
                const shown = [...document.querySelectorAll('#market-rows td.symbol')].map((td) => td.textContent);
                return shown.length > 0 && shown.every((s) => known.includes(s));
            }""",
            arg=sorted(paradex), timeout=15_000,
        )
        assert not _table_symbols(page) & lighter
        expect(page.locator("#symbol-select")).to_be_enabled(timeout=15_000)
        options = set(page.locator("#symbol-select option").all_inner_texts())
        assert options and options <= paradex, options
        page.wait_for_timeout(1500)  # the chart's and the depth chart's fetches for a Paradex market
        after = [r.url for r in data_requests if _request_started_ms(r) > switched_ms]
        assert after and all("exchange=paradex" in url for url in after), after
        since_click = [r.url for r in data_requests if _request_started_ms(r) > clicking_ms]
        assert any("/api/minutes" in url and "exchange=paradex" in url for url in since_click), since_click

        EXCHANGE_SCREENSHOTS[1400].parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(EXCHANGE_SCREENSHOTS[1400]), full_page=True)

        # STOP / START act on Paradex only.
        toggle = page.locator("#toggle")
        expect(toggle).to_have_text("STOP TRACKING")
        with page.expect_request(re.compile(r"/api/stop\?exchange=paradex$")):
            toggle.click()
        expect(page.locator("#status")).to_have_text("⚪ stopped", timeout=30_000)
        assert worker.get_json("/api/stats?exchange=paradex")["isTracking"] is False
        with page.expect_request(re.compile(r"/api/start\?exchange=paradex$")):
            toggle.click()
        expect(page.locator("#status")).to_have_text("🟢 TRACKING", timeout=30_000)
        assert worker.get_json("/api/stats?exchange=paradex")["isTracking"] is True
        assert worker.get_json("/api/stats?exchange=lighter")["isTracking"] is False

        # The activity log: every line, Paradex's named so, and a picker for one exchange.
        paradex_lines = page.locator("#log li[data-exchange='paradex']")
        expect(paradex_lines.first).to_be_attached(timeout=30_000)
        expect(paradex_lines.first.locator(".exch")).to_have_text("Paradex")
        expect(paradex_lines.first.locator(".exch")).to_be_visible()
        page.select_option("#log-exchange", "paradex")
        visible = page.evaluate(
            "() => [...document.querySelectorAll('#log li')].filter((li) => !li.hidden).map((li) => li.dataset.exchange)")
        assert visible and set(visible) == {"paradex"}, visible
        page.select_option("#log-exchange", "")

        # Remembered: in the URL (reload) and in this browser (a visit without it).
        page.reload()
        expect(paradex_button).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#status")).to_have_text("🟢 TRACKING", timeout=30_000)
        page.goto(worker.url + "/")
        expect(paradex_button).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#market-rows tr").first).to_be_attached(timeout=15_000)
        assert _table_symbols(page) <= paradex | _symbols(worker.get_json("/api/overview?exchange=paradex"))

        # And back to Lighter.
        lighter_button.click()
        expect(page).to_have_url(re.compile(r"[?&]exchange=lighter"))
        expect(page.locator("#status")).to_have_text("⚪ stopped", timeout=15_000)
        page.wait_for_timeout(1000)
        assert not _table_symbols(page) & paradex

        # On a phone the switch takes a line of its own; nothing scrolls sideways.
        page.set_viewport_size({"width": 390, "height": 900})
        expect(paradex_button).to_be_visible()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(EXCHANGE_SCREENSHOTS[390]), full_page=True)

        assert page.locator("img").count() == 0
        watch.check()
        context.close()
    finally:
        worker.admin_post("/api/stop?exchange=paradex")


def test_the_price_chart_asks_only_for_minutes_it_does_not_hold(browser, worker):
    """Once it holds minutes, a refresh of the chart asks for those from its newest one on
    (`from`), never again for up to a thousand rows: D1 bills every row a query reads
    (issue 19). The API is answered here (rows of a past hour) and the page's clock is
    Playwright's, so the refresh comes at once instead of a window later."""
    now = 1_800_000_000_000
    newest = now - 10 * 60_000
    asked: list[dict] = []

    def minute(t: int) -> dict:
        return {c: (t if c == "timestamp" else "ETH" if c == "symbol" else 1) for c in MINUTE_COLUMNS}

    def minutes(route) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(route.request.url).query).items()}
        asked.append(query)
        rows = [minute(int(query["from"]))] if "from" in query else [minute(newest - 60_000), minute(newest)]
        route.fulfill(json={"minutes": rows, "count": len(rows), "limit": 1000, "offset": 0})

    window = {c: (newest if c == "timestamp" else 15_000 if c == "window_ms" else 1) for c in OVERVIEW_WINDOW_COLUMNS}
    overview = {"markets": [{"market_index": 1, "symbol": "ETH", "window": window, "minute": None, "age_ms": 1000}],
                "count": 1, "now": now, "exchange": "lighter"}
    context = browser.new_context()
    page = context.new_page()
    page.clock.install(time=now)
    page.route(re.compile(r"/api/overview"), lambda route: route.fulfill(json=overview))
    page.route(re.compile(r"/api/minutes"), minutes)
    page.route(re.compile(r"/api/snapshots"), lambda route: route.fulfill(
        json={"snapshots": [], "count": 0, "limit": 1000, "offset": 0}))
    page.goto(worker.url + "/")
    expect(page.locator("#chart-source")).to_contain_text("ETH", timeout=30_000)
    assert asked and all("from" not in q for q in asked), asked  # the first load: everything
    with page.expect_request(lambda request: urlparse(request.url).path == "/api/minutes", timeout=10_000) as next_:
        page.clock.run_for(2 * 15_000 + 1_000)  # past the chart's own refresh (every other window)
    query = parse_qs(urlparse(next_.value.url).query)
    assert query.get("from") == [str(newest)] and query.get("symbol") == ["ETH"], (next_.value.url, asked)
    expect(page.locator("#chart-source")).to_contain_text("2 one-minute averages", timeout=10_000)
    context.close()


COMPARE_SCREENSHOT = ROOT / "tests" / "artifacts" / "dashboard-compare-1400.png"


def _compare_lines(page: Page) -> list[dict]:
    """The compare chart's datasets: label, axis and points (x, y)."""
    return page.evaluate(
        """() => {
            const c = window.Chart && Chart.getChart(document.getElementById("compare-chart"));
            return c ? c.data.datasets.map((d) => ({label: d.label, axis: d.yAxisID, data: d.data})) : [];
        }"""
    )


def test_compare_view(browser, worker):
    """With both exchanges tracking: the compare panel lists the assets on both (GET
    /api/assets), draws BTC's spread on Lighter and on Paradex and the basis on its own
    axis, each point the API's own number at its timestamp; the depth and slippage views
    draw each venue's bands and sizes from the same rows; a longer range reads minutes."""
    assert worker.admin_post("/api/start").status_code == 200  # both exchanges
    try:
        worker.wait_json("/api/compare?asset=BTC&resolution=windows",
                         lambda b: any(v is not None for v in b["basis_bps"] or []), timeout=90)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
        page = context.new_page()
        watch = Watch(page)
        assert page.goto(worker.url + "/").status == 200
        panel = page.locator("#compare-panel")
        expect(panel).to_be_visible()
        expect(page.locator("#compare-asset")).to_be_enabled(timeout=30_000)
        assets = [a["asset"] for a in worker.get_json("/api/assets")["assets"]]
        assert page.locator("#compare-asset option").all_inner_texts() == assets and "BTC" in assets
        page.select_option("#compare-asset", "BTC")
        expect(page.locator("#compare-source")).to_contain_text("BTC ·", timeout=30_000)
        expect(page.locator("#compare-source")).to_contain_text("s windows")
        page.wait_for_function(
            "() => { const c = window.Chart && Chart.getChart(document.getElementById('compare-chart'));"
            " return c && c.data.datasets.length === 3 && c.data.datasets.every((d) => d.data.length > 0); }",
            timeout=30_000,
        )
        lines = _compare_lines(page)
        assert [(d["label"], d["axis"]) for d in lines] == [
            ("Lighter spread", "y"), ("Paradex spread", "y"), ("basis (bps)", "basis")]
        # Every point drawn is the API's number at its timestamp (rows read after the page's).
        body = worker.get_json("/api/compare?asset=BTC&resolution=windows&limit=1000")
        at = {"Lighter spread": dict(zip(body["timestamps"], body["series"]["lighter"]["avg_spread_bps"])),
              "Paradex spread": dict(zip(body["timestamps"], body["series"]["paradex"]["avg_spread_bps"])),
              "basis (bps)": dict(zip(body["timestamps"], body["basis_bps"]))}
        for line in lines:
            for point in line["data"]:
                assert at[line["label"]][point["x"]] == pytest.approx(point["y"], rel=1e-12), (line["label"], point)
        expect(page.locator("#compare-empty")).to_be_hidden()
        expect(page.locator("#compare-note")).to_be_hidden()  # both exchanges: nothing to say

        page.click("#compare-panel button[data-view='depth']")
        expect(page.locator("#compare-panel button[data-view='depth']")).to_have_attribute("aria-pressed", "true")
        page.wait_for_function("() => Chart.getChart(document.getElementById('compare-chart')).data.datasets.length === 7")
        labels = [d["label"] for d in _compare_lines(page)]
        assert labels == [f"{v} depth ±{b} bps" for v in ("Lighter", "Paradex") for b in (10, 50, 100)] + ["basis (bps)"]
        page.click("#compare-panel button[data-view='slippage']")
        page.wait_for_function("() => Chart.getChart(document.getElementById('compare-chart')).data.datasets.length === 9")
        lines = _compare_lines(page)
        assert [d["label"] for d in lines] == [f"{v} slippage {s}" for v in ("Lighter", "Paradex")
                                               for s in ("1K", "10K", "100K", "1M")] + ["basis (bps)"]
        assert lines[1]["data"] and lines[5]["data"], "10k fills on both simulated books"
        page.wait_for_timeout(500)
        panel.screenshot(path=str(COMPARE_SCREENSHOT))

        # The last day reads minutes (GET /api/compare?resolution=minutes).
        with page.expect_request(lambda r: "/api/compare" in r.url and "resolution=minutes" in r.url, timeout=10_000):
            page.click("#compare-panel button[data-range='24h']")
        expect(page.locator("#compare-panel button[data-range='24h']")).to_have_attribute("aria-pressed", "true")
        has_minutes = worker.get_json("/api/compare?asset=BTC&resolution=minutes&limit=1")["count"] > 0
        expect(page.locator("#compare-source")).to_contain_text("minutes" if has_minutes else "no rows", timeout=15_000)
        watch.check()
        context.close()
    finally:
        worker.admin_post("/api/stop")
