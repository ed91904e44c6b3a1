"""A deployment with READ_TOKEN set and ADMIN_TOKEN unset, under its own wrangler dev
(issue 19, item 6): the session's worker has fixed vars, so this module uses the
session's other stack (tests/conftest.py `private_worker`: it never tracks).

- every data route and /ws refuse a request without the read token (401 JSON, CORS
  kept, a Bearer challenge) and answer with it; the contract stays public;
- a browser carries the token to /ws as a subprotocol, and the handshake names the
  dashboard's protocol back (Python's websockets checks that, as browsers do);
- the dashboard asks for the token, says so when it is refused, keeps it in this tab
  only (sessionStorage) and opens everything with it (headless Chromium);
- Schemathesis with every check on the read routes, with the token;
- control is refused (403) on a deployment without ADMIN_TOKEN, whatever is sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import PRIVATE_GROUP, READ_TOKEN
from tracker.openapi import DOCUMENT

pytestmark = pytest.mark.xdist_group(PRIVATE_GROUP)
# A route's first request starts an isolate (Pyodide) and, for /api/stats and /health,
# the shard objects: 20-24 s was seen on a loaded 2-core machine. Generous, not a wait.
REQUEST_TIMEOUT_S = 90
READ_ROUTES = ("/api/stats", "/api/markets", "/api/minutes", "/api/hours", "/api/snapshots", "/api/overview",
               "/api/export", "/api/health")
CONTROL = ("/api/start", "/api/stop")


def get(worker, path: str, token: str | None = None, **headers) -> requests.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(worker.url + path, headers=headers, timeout=REQUEST_TIMEOUT_S)


@pytest.mark.parametrize("path", READ_ROUTES)
def test_every_data_route_needs_the_read_token(private_worker, path):
    r = get(private_worker, path, Origin="https://example.org")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")
    assert "READ_TOKEN" in r.json()["error"] and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["access-control-allow-origin"] == "*"
    assert get(private_worker, path, "not-it").json()["error"] == "wrong read token"
    ok = get(private_worker, path, READ_TOKEN)
    assert ok.status_code in (200, 503), (path, ok.status_code, ok.text[:300])  # health: 503 while shards fail


def test_the_contract_is_public_and_preflights_allow_the_token(private_worker):
    assert get(private_worker, "/api/openapi.json").json() == json.loads(json.dumps(DOCUMENT))
    pre = requests.options(private_worker.url + "/api/minutes", timeout=REQUEST_TIMEOUT_S, headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert pre.status_code == 204 and "authorization" in pre.headers["access-control-allow-headers"]


def ws_url(worker) -> str:
    return worker.url.replace("http://", "ws://") + "/ws"


def bearer_protocol(token: str) -> str:
    return "bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def test_the_live_socket_takes_the_token_as_a_subprotocol(private_worker):
    async def scenario():
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(private_worker), origin=private_worker.url, open_timeout=30):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as wrong:
            async with connect(ws_url(private_worker), origin=private_worker.url, open_timeout=30,
                               subprotocols=["lighter-tracker", bearer_protocol("not-it")]):
                pass
        assert wrong.value.response.status_code == 401
        # The client refuses a handshake that names no protocol it offered (as browsers do).
        async with connect(ws_url(private_worker), origin=private_worker.url, open_timeout=30,
                           subprotocols=["lighter-tracker", bearer_protocol(READ_TOKEN)]) as ws:
            assert ws.subprotocol == "lighter-tracker"
            hello = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert hello["type"] == "hello"

    asyncio.run(scenario())


@pytest.mark.parametrize("path", CONTROL)
def test_control_is_refused_when_no_admin_token_is_configured(private_worker, path):
    for headers in ({}, {"Authorization": f"Bearer {READ_TOKEN}"}, {"Authorization": "Bearer "}):
        r = requests.post(private_worker.url + path, headers=headers, timeout=REQUEST_TIMEOUT_S)
        assert r.status_code == 403, r.text[:300]
        message = r.json()["error"]
        assert "ADMIN_TOKEN" in message and "wrangler secret put ADMIN_TOKEN" in message


# -- the contract, with the token -------------------------------------------------------------

# The reads (what READ_TOKEN guards). Control on this deployment without ADMIN_TOKEN is
# refused with 403 even when no Authorization header came (there is no token that could
# work: `control is disabled`), where Schemathesis' missing-header check wants 401; the
# session's worker, which has ADMIN_TOKEN, runs the control routes' contract
# (tests/integration/test_contract.py).
schema = schemathesis.openapi.from_dict(DOCUMENT).include(method="GET")


@schema.parametrize()
@settings(max_examples=8, derandomize=True, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract_on_a_private_deployment(case, private_worker):
    # With the token: the answers a client that has it gets. Without it every route answers
    # the documented 401 (test_every_data_route_needs_the_read_token).
    case.call_and_validate(base_url=private_worker.url, headers={"Authorization": f"Bearer {READ_TOKEN}"},
                           timeout=30)


# -- the dashboard asks for the token (headless Chromium) ------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_dashboard_asks_for_the_read_token_and_keeps_it_in_the_tab(private_worker):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        # As tests/browser/test_dashboard.py: Debian's chromium, no `playwright install`.
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
            page.goto(private_worker.url + "/")
            panel = page.locator("#read-panel")
            expect(panel).to_be_visible(timeout=30_000)
            # Nothing is asked of the API (or the socket) before a token is at hand.
            expect(page.locator("#link-text")).to_have_text("connecting…")

            page.fill("#read-input", "not-the-token")
            page.click("#read-form button[type=submit]")
            expect(page.locator("#read-note")).to_contain_text("refused (401)", timeout=30_000)
            expect(panel).to_be_visible()

            page.fill("#read-input", READ_TOKEN)
            page.click("#read-form button[type=submit]")
            expect(panel).to_be_hidden()
            # The socket opened with the token as a subprotocol, and the browser took the handshake.
            expect(page.locator("#link-text")).to_have_text(re.compile("^live"), timeout=45_000)
            expect(page.locator("#markets-empty")).to_be_visible()  # the overview answered (no rows: not tracking)
            expect(page.locator("#read-state")).to_be_visible()
            kept = page.evaluate("() => [sessionStorage.getItem('lighterTracker.readToken'),"
                                 " localStorage.getItem('lighterTracker.readToken')]")
            assert kept == [READ_TOKEN, None]  # this tab only, unless "remember on this device"

            page.reload()  # the same tab keeps it: no question again
            expect(page.locator("#link-text")).to_have_text(re.compile("^live"), timeout=45_000)
            expect(panel).to_be_hidden()
            assert errors == [], errors  # no script error, no dialog (no prompt())
        finally:
            browser.close()
