"""The dashboard's live push period, LIVE_PUSH_SECONDS (issue 19, item 3).

While a dashboard is open, every push of the hub (runtime/dashboard_hub.py) is one
alarm invocation and one /stats request per tracker shard, all billed as Durable
Object requests: at one a second that is (1 + shards) x 86,400 a day, past the Free
plan's 100,000 in about 14 hours. Here: the setting, the hub's alarm following it,
the figure DEPLOY.md quotes, and the page's reading of it (live.js under node).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import types
from pathlib import Path

import pytest

import devstack
from test_dashboard_exchange import FakeCtx, FakeSocket, hub_module, shard  # noqa: F401  (a fixture)
from tracker.config import Config, ConfigError, estimate_live_requests_per_day

ROOT = Path(__file__).resolve().parents[2]
LIVE_JS = ROOT / "frontend" / "static" / "js" / "live.js"
FREE_PLAN_DO_REQUESTS_A_DAY = 100_000  # developers.cloudflare.com/durable-objects/platform/pricing/


def config(**env) -> Config:
    return Config.from_env(env.get)


def test_the_default_is_ten_seconds_and_the_setting_is_checked():
    assert config().live_push_ms == 10_000
    assert config(LIVE_PUSH_SECONDS="1").live_push_ms == 1_000
    assert config(LIVE_PUSH_SECONDS="3600").live_push_ms == 3_600_000
    for bad in ("0", "3601", "1.5", "soon"):
        with pytest.raises(ConfigError, match="LIVE_PUSH_SECONDS"):
            config(LIVE_PUSH_SECONDS=bad)


def test_the_requests_a_day_of_an_open_dashboard():
    # The figure for the old one-second push: (1 + shards) x 86,400.
    assert estimate_live_requests_per_day(1_000, 1) == 172_800
    assert estimate_live_requests_per_day(1_000, 4) == 5 * 86_400
    # The default: an open dashboard on the Free plan's one shard stays far inside its
    # 100,000 requests a day, next to the shard's own 5,760 alarms (15 s windows).
    assert estimate_live_requests_per_day(10_000, 1) == 17_280
    assert estimate_live_requests_per_day(10_000, 1) + 5_760 < FREE_PLAN_DO_REQUESTS_A_DAY / 4


def test_deploy_md_quotes_the_figures_of_the_code():
    """Each `LIVE_PUSH_SECONDS` line of the cost section is the formula's result."""
    text = (ROOT / "DEPLOY.md").read_text()
    lines = re.findall(r"`LIVE_PUSH_SECONDS=(\d+)`, (\d+) shards?: [^=\n]*= ([\d,]+) requests a day", text)
    assert len(lines) >= 3, "DEPLOY.md's cost section lists the hub's requests a day per setting"
    for seconds, shards, quoted in lines:
        assert int(quoted.replace(",", "")) == estimate_live_requests_per_day(int(seconds) * 1000, int(shards)), \
            (seconds, shards, quoted)


# -- the hub follows the setting -------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "every_ms"), [(None, 10_000), ("1", 1_000), ("30", 30_000)])
def test_the_hub_pushes_at_the_configured_period(hub_module, monkeypatch, seconds, every_ms):  # noqa: F811
    async def call_all(env, config, path, method="GET", skip=None, exchange="lighter"):
        return [shard(0, 5)]

    monkeypatch.setattr(hub_module.shards, "call_all", call_all)
    monkeypatch.setattr(hub_module, "_now_ms", lambda: 1_000_000)
    socket = FakeSocket()
    env = types.SimpleNamespace(LIVE_PUSH_SECONDS=seconds)
    hub = hub_module.DashboardHub(FakeCtx([socket]), env)
    asyncio.run(hub.alarm())
    assert hub.ctx.storage.alarm == 1_000_000 + every_ms  # the next push, one period later
    assert socket.sent[-1]["hub"]["pushEveryMs"] == every_ms  # the page learns the period
    # A socket arriving while the next alarm is further away than a period (a failed
    # alarm's retry backoff) brings it forward; one within a period is left alone.
    hub.ctx.storage.alarm = 1_000_000 + 10 * every_ms
    asyncio.run(hub._ensure_alarm())
    assert hub.ctx.storage.alarm == 1_000_000 + every_ms
    hub.ctx.storage.alarm = 1_000_000 + every_ms // 2
    asyncio.run(hub._ensure_alarm())
    assert hub.ctx.storage.alarm == 1_000_000 + every_ms // 2


def test_the_hub_counts_the_log_batches_it_receives(hub_module):  # noqa: F811
    class Request:
        url = "https://hub/logs"

        async def text(self):
            return json.dumps([{"message": "a"}, {"message": "b"}])

    socket = FakeSocket()
    hub = hub_module.DashboardHub(FakeCtx([socket]), types.SimpleNamespace())
    hub_module.json_response = lambda body, status=200: body
    for _ in range(3):
        asyncio.run(hub.fetch(Request()))
    assert hub._counters()["logBatches"] == 3
    assert [m["type"] for m in socket.sent] == ["logs"] * 3


# -- the page (live.js's pure parts, under node) ----------------------------------------------------


def run_js(body: str):
    script = (
        f"import * as L from {json.dumps(LIVE_JS.as_uri())};\n"
        f"const out = await (async () => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(out));\n"
    )
    done = subprocess.run([devstack.node_executable(), "--input-type=module", "-e", script],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_waits_for_the_push_period_before_calling_the_socket_silent():
    out = run_js("return [1000, 10000, 60000, 0, NaN, undefined].map((p) => L.silentAfterMs(p));")
    # Never sooner than 10 s (as before), and two periods and 5 s at slow pushes: a
    # 10 s or 60 s period must not be taken for a dead socket.
    assert out == [10_000, 25_000, 125_000, 25_000, 25_000, 25_000]


def test_the_page_says_when_the_next_update_comes():
    out = run_js("""
      return [
        L.liveText(0, 10000, 5000),            // nothing heard yet
        L.liveText(100000, 10000, 103000),     // 7 s to go
        L.liveText(100000, 10000, 109500),     // under a second: rounds up
        L.liveText(100000, 10000, 112000),     // late
        L.liveText(100000, 1000, 100500),      // one-second pushes: no countdown
      ];
    """)
    assert out == ["live", "live · next update in 7 s", "live · next update in 1 s", "live · update due", "live"]
