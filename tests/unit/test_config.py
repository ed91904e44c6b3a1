"""Config.from_env: defaults, overrides, and clear errors for values the tracker cannot run with."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from tracker.alerts import Alert
from tracker.config import (
    D1_MAX_DATABASE_BYTES,
    MAINNET_API_URL,
    MAINNET_WS_URL,
    ROW_BYTES,
    SERVICE_NAME,
    VALID_WINDOW_SECONDS,
    Config,
    ConfigError,
    estimate_d1_bytes,
    estimate_d1_rows,
)

SCHEMA = Path(__file__).resolve().parents[2] / "schema.sql"


def from_env(**env):
    return Config.from_env(env.get)


def test_defaults_match_the_design():
    config = from_env()
    assert config == Config()
    assert config.api_url == MAINNET_API_URL == "https://mainnet.zklighter.elliot.ai"
    # Lighter's read-only stream: market data past its regional access restrictions.
    assert config.ws_url == MAINNET_WS_URL == "wss://mainnet.zklighter.elliot.ai/stream?readonly=true"
    assert config.window_ms == 15_000
    assert config.flush_grace_ms == 1_500
    assert config.snapshot_retention_ms == 60 * 60_000
    assert config.minute_retention_ms == 24 * 3_600_000
    assert config.stale_feed_ms == 30_000
    assert config.shards == 1
    assert config.admin_token is None and config.alert_webhook_url is None
    assert config.alert_after_ms == 5 * 60_000


def test_empty_and_blank_values_mean_default():
    assert from_env(WINDOW_SECONDS="", SHARDS="   ", LIGHTER_API_URL="", ADMIN_TOKEN=" ") == Config()


def test_overrides():
    config = from_env(
        LIGHTER_API_URL=" http://127.0.0.1:8765/ ",
        LIGHTER_WS_URL="ws://127.0.0.1:8765/stream",
        WINDOW_SECONDS="5",
        FLUSH_GRACE_MS="0",
        SNAPSHOT_RETENTION_MINUTES="90",
        MINUTE_RETENTION_HOURS="48",
        STALE_FEED_SECONDS="12.5",
        SHARDS="4",
        ADMIN_TOKEN=" s3cret ",
        ALERT_WEBHOOK_URL="https://hooks.example/x",
        ALERT_AFTER_MINUTES="2",
    )
    assert config == Config(
        api_url="http://127.0.0.1:8765",
        ws_url="ws://127.0.0.1:8765/stream",
        window_ms=5_000,
        flush_grace_ms=0,
        snapshot_retention_ms=90 * 60_000,
        minute_retention_ms=48 * 3_600_000,
        stale_feed_ms=12_500,
        shards=4,
        admin_token="s3cret",
        alert_webhook_url="https://hooks.example/x",
        alert_after_ms=2 * 60_000,
    )


def test_numbers_given_as_numbers_work_too():
    """wrangler.toml [vars] may hold numbers rather than strings."""
    config = from_env(WINDOW_SECONDS=30, SHARDS=2, FLUSH_GRACE_MS=2_000)
    assert (config.window_ms, config.shards, config.flush_grace_ms) == (30_000, 2, 2_000)


@pytest.mark.parametrize("seconds", VALID_WINDOW_SECONDS)
def test_every_window_that_divides_a_minute(seconds):
    assert 60 % seconds == 0
    assert from_env(WINDOW_SECONDS=str(seconds)).window_ms == seconds * 1000
    assert from_env(WINDOW_SECONDS=f"{seconds}.0").window_ms == seconds * 1000


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("WINDOW_SECONDS", "abc", "WINDOW_SECONDS must be a number, got 'abc'"),
        ("WINDOW_SECONDS", "15s", "WINDOW_SECONDS must be a number, got '15s'"),
        ("WINDOW_SECONDS", "0", "WINDOW_SECONDS must be between 1 and 60, got '0'"),
        ("WINDOW_SECONDS", "61", "WINDOW_SECONDS must be between 1 and 60, got '61'"),
        ("WINDOW_SECONDS", "-15", "WINDOW_SECONDS must be between 1 and 60"),
        ("WINDOW_SECONDS", "nan", "WINDOW_SECONDS must be between 1 and 60, got 'nan'"),
        ("WINDOW_SECONDS", "inf", "WINDOW_SECONDS must be between 1 and 60, got 'inf'"),
        ("WINDOW_SECONDS", "7", "WINDOW_SECONDS must divide a minute evenly"),
        ("WINDOW_SECONDS", "7.5", "WINDOW_SECONDS must divide a minute evenly"),
        ("WINDOW_SECONDS", "45", "WINDOW_SECONDS must divide a minute evenly"),
        ("FLUSH_GRACE_MS", "-1", "FLUSH_GRACE_MS must be between 0 and 10000, got '-1'"),
        ("FLUSH_GRACE_MS", "10001", "FLUSH_GRACE_MS must be between 0 and 10000"),
        ("FLUSH_GRACE_MS", "1500.5", "FLUSH_GRACE_MS must be a whole number, got '1500.5'"),
        ("ALERT_WEBHOOK_URL", "http://hooks.slack.com/services/T0/B0/x", "must be an https URL (http only for 127.0.0.1/localhost), got one with scheme 'http'"),
        ("ALERT_WEBHOOK_URL", "hooks.slack.com/services/x", "ALERT_WEBHOOK_URL must be an https URL"),
        ("ALERT_WEBHOOK_URL", "ftp://example.com/x", "got one with scheme 'ftp'"),
        ("ALERT_WEBHOOK_URL", "https://", "got one without a host"),
        ("ALERT_WEBHOOK_URL", "http://127.0.0.2.example.com/x", "ALERT_WEBHOOK_URL must be an https URL"),
        ("EXPECTED_MARKETS", "0", "EXPECTED_MARKETS must be between 1 and 10000"),
        ("SNAPSHOT_RETENTION_MINUTES", "0", "SNAPSHOT_RETENTION_MINUTES must be between 1 and 10080"),
        ("MINUTE_RETENTION_HOURS", "1e9", "MINUTE_RETENTION_HOURS must be between 1 and 8760"),
        ("STALE_FEED_SECONDS", "4", "STALE_FEED_SECONDS must be between 5 and 3600, got '4'"),
        ("SHARDS", "0", "SHARDS must be between 1 and 36, got '0'"),
        ("SHARDS", "37", "SHARDS must be at most 36: Lighter allows 200 messages a minute"),
        ("SHARDS", "two", "SHARDS must be a number, got 'two'"),
        ("SHARDS", "1.5", "SHARDS must be a whole number, got '1.5'"),
        ("ALERT_AFTER_MINUTES", "0.05", "ALERT_AFTER_MINUTES must be between 0.1 and 1440"),
        ("LIGHTER_API_URL", "mainnet.zklighter.elliot.ai", "LIGHTER_API_URL must be an http(s) URL"),
        ("LIGHTER_API_URL", "ws://127.0.0.1:1", "LIGHTER_API_URL must be an http(s) URL, got 'ws://127.0.0.1:1'"),
        ("LIGHTER_WS_URL", "https://mainnet.zklighter.elliot.ai/stream", "LIGHTER_WS_URL must be a ws(s) URL"),
        ("ASSET_PAIRS", "BTC", "ASSET_PAIRS entries are NAME=LIGHTER_SYMBOL:PARADEX_SYMBOL"),
        ("ASSET_PAIRS", "BTC=BTC", "ASSET_PAIRS entries are NAME=LIGHTER_SYMBOL:PARADEX_SYMBOL"),
        ("ASSET_PAIRS", "BTC=BTC:BTC-USD-PERP:X", "e.g. BTC=BTC:BTC-USD-PERP; got 'BTC=BTC:BTC-USD-PERP:X'"),
        ("ASSET_PAIRS", "=BTC:BTC-USD-PERP", "ASSET_PAIRS: the asset name of '=BTC:BTC-USD-PERP' must be"),
        ("ASSET_PAIRS", "B TC=BTC:BTC-USD-PERP", "the asset name of 'B TC=BTC:BTC-USD-PERP'"),
        ("ASSET_PAIRS", "BTC=B TC:BTC-USD-PERP", "the lighter symbol of 'BTC=B TC:BTC-USD-PERP' must be a market symbol"),
        ("ASSET_PAIRS", "BTC=BTC:BTC=USD", "the paradex symbol of 'BTC=BTC:BTC=USD'"),
        ("ASSET_PAIRS", "BTC=BTC:,BTC=:BTC-USD-PERP", "ASSET_PAIRS names the asset 'BTC' twice"),
        ("ASSET_PAIRS", "A=:kPEPE-USD-PERP,B=:kPEPE-USD-PERP",
         "ASSET_PAIRS gives the paradex market 'kPEPE-USD-PERP' to both 'A' and 'B'"),
    ],
)
def test_invalid_values_raise_a_clear_config_error(name, value, message):
    with pytest.raises(ConfigError) as info:
        from_env(**{name: value})
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_asset_pairs_add_or_override_with_either_side_left_out():
    assert from_env().asset_pairs == ()
    config = from_env(ASSET_PAIRS=" PEPE = 1000PEPE : kPEPE-USD-PERP ,, HYPE=HYPE:, GONE=: ")
    assert [(p.name, p.symbol("lighter"), p.symbol("paradex")) for p in config.asset_pairs] == [
        ("PEPE", "1000PEPE", "kPEPE-USD-PERP"), ("HYPE", "HYPE", None), ("GONE", None, None)]
    # Symbols keep their case (they are case-sensitive), `/` and `-` included.
    assert from_env(ASSET_PAIRS="eth=ETH/USDC:ETH-USD").asset_pairs[0].symbols == ("ETH/USDC", "ETH-USD")


def test_config_is_immutable():
    config = from_env()
    with pytest.raises(AttributeError):
        config.shards = 3  # type: ignore[misc]


def test_hour_retention_days():
    assert Config().hour_retention_ms == 90 * 86_400_000
    assert from_env(HOUR_RETENTION_DAYS="400").hour_retention_ms == 400 * 86_400_000
    with pytest.raises(ConfigError, match="HOUR_RETENTION_DAYS must be between 1 and 3650"):
        from_env(HOUR_RETENTION_DAYS="0")
def test_webhook_https_anywhere_http_only_on_loopback():
    """Local tests post to a receiver on 127.0.0.1; a real deployment must use https."""
    for url in ("https://hooks.slack.com/services/T0/B0/x", "https://discord.com/api/webhooks/1/x"):
        assert from_env(ALERT_WEBHOOK_URL=url).alert_webhook_url == url
    for url in ("http://127.0.0.1:8799/hook", "http://localhost/hook", "http://[::1]:9/x"):
        assert from_env(ALERT_WEBHOOK_URL=url).alert_webhook_url == url


def test_webhook_error_does_not_echo_the_secret_url():
    with pytest.raises(ConfigError) as info:
        from_env(ALERT_WEBHOOK_URL="http://hooks.example/SECRET-KEY")
    assert "SECRET-KEY" not in str(info.value) and "hooks.example" not in str(info.value)


def test_flush_grace_in_whole_ms_also_as_a_float_that_is_whole():
    assert from_env(FLUSH_GRACE_MS="2000.0").flush_grace_ms == 2000
    assert from_env(FLUSH_GRACE_MS=0).flush_grace_ms == 0


def test_stale_feed_below_one_window_is_accepted():
    """Health judges staleness at every request; the reconnect waits for the alarm
    (documented in DEPLOY.md's configuration table), so it is not refused."""
    assert from_env(STALE_FEED_SECONDS="5", WINDOW_SECONDS="15").stale_feed_ms == 5_000


def test_alert_service_name_defaults_to_the_worker_name_and_reaches_the_alert():
    assert from_env().alert_service_name == SERVICE_NAME == "lighter-orderbook-tracker"
    config = from_env(ALERT_SERVICE_NAME="lighter-orderbook-tracker-staging")
    alert = Alert("feed_down", 0, 60_000, "socket error")
    text = alert.payload(0, config.alert_service_name)["text"]
    assert text == "lighter-orderbook-tracker-staging shard 0: Lighter feed down for 1.0 min (socket error)"
    assert alert.payload(0)["text"].startswith("lighter-orderbook-tracker shard 0:")


# -- D1 size: the estimator and the check at start ------------------------------------


def test_estimated_rows_are_a_row_per_market_per_window_and_per_minute_kept():
    # 60 min of 15 s windows = 240 rows, 24 h of minutes = 1440 rows, per market
    assert estimate_d1_rows(1, 15_000, 60 * 60_000, 24 * 3_600_000) == 240 + 1440
    assert estimate_d1_rows(600, 15_000, 60 * 60_000, 24 * 3_600_000) == 600 * 1680
    # a retention that is not a whole number of windows keeps the partial one too
    assert estimate_d1_rows(1, 15_000, 20_000, 60_000) == 2 + 1
    assert estimate_d1_bytes(10, 15_000, 60 * 60_000, 24 * 3_600_000) == 10 * 1680 * ROW_BYTES


def test_default_retention_fits_d1_with_room_to_spare():
    config = from_env()
    size = estimate_d1_bytes(config.expected_markets, config.window_ms,
                             config.snapshot_retention_ms, config.minute_retention_ms)
    assert size < D1_MAX_DATABASE_BYTES / 10


def test_retention_beyond_d1s_size_is_refused_with_the_estimate():
    with pytest.raises(ConfigError) as info:
        from_env(MINUTE_RETENTION_HOURS="8760")
    message = str(info.value)
    rows = 600 * (240 + 8760 * 60 + 90 * 24)  # windows, minutes and hours of their retention
    assert f"keep about {rows:,} rows" in message
    assert f"an estimated {rows * ROW_BYTES / 1e9:.1f} GB" in message
    assert "above D1's 10 GB per database" in message and "EXPECTED_MARKETS=600" in message


def test_the_size_check_plans_for_expected_markets():
    # a year of minutes: too much for 600 markets, fine for 50
    assert from_env(MINUTE_RETENTION_HOURS="8760", EXPECTED_MARKETS="50").minute_retention_ms == 8760 * 3_600_000
    # the boundary is the estimate itself
    rows_per_market = D1_MAX_DATABASE_BYTES // (ROW_BYTES * 600)
    # 240 rows of windows (an hour of 15 s) and 2160 of hours (90 days)
    hours_that_fit = (rows_per_market - 240 - 90 * 24) // 60
    from_env(MINUTE_RETENTION_HOURS=str(hours_that_fit))
    with pytest.raises(ConfigError):
        from_env(MINUTE_RETENTION_HOURS=str(hours_that_fit + 1))


def _measured_row_bytes(table: str, rows: int = 20_000) -> float:
    """Bytes a row of `table` takes in SQLite with its indexes, as the tracker writes
    them (a window of every market at a time), measured with dbstat."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA.read_text())
    columns = [(r[1], r[2].upper()) for r in db.execute(f"PRAGMA table_info({table})")]
    rnd = random.Random(1)
    markets = 200
    insert = f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})"
    for i in range(rows):
        market, window = i % markets, i // markets
        price = rnd.uniform(0.01, 100_000)
        values = []
        for name, kind in columns:
            if name == "symbol":
                values.append(f"SYM{market}")
            elif name == "market_index":
                values.append(market)
            elif name == "timestamp":
                values.append(1_795_484_700_000 + window * 15_000)
            elif kind == "INTEGER":
                values.append(rnd.randint(1, 15_000))
            else:
                values.append(price * rnd.uniform(0.99, 1.01))
        db.execute(insert, values)
    names = [table] + [r[1] for r in db.execute(f"PRAGMA index_list({table})")]
    placeholders = ", ".join("?" * len(names))
    used = db.execute(f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({placeholders})", names).fetchone()[0]
    return used / rows


@pytest.mark.parametrize("table", ["lighter_snapshots", "lighter_minutes"])
def test_row_bytes_is_a_close_upper_bound_of_a_real_row(table):
    measured = _measured_row_bytes(table)
    assert 100 < measured <= ROW_BYTES <= 1.5 * measured, f"{table}: {measured:.0f} B a row, ROW_BYTES {ROW_BYTES}"


def test_staging_repeats_every_binding_and_var_with_its_own_database_and_name():
    """wrangler does not inherit bindings or vars into [env.staging]: a missing one would
    leave staging without it (or, for DB, writing nowhere), and the same database id
    would write staging's rows into production's D1."""
    import tomllib

    cfg = tomllib.loads((SCHEMA.parent / "wrangler.toml").read_text())
    staging = cfg["env"]["staging"]
    assert staging["durable_objects"] == cfg["durable_objects"]
    (prod_db,), (stage_db,) = cfg["d1_databases"], staging["d1_databases"]
    assert stage_db["binding"] == prod_db["binding"] == "DB"
    assert stage_db["database_name"] != prod_db["database_name"]
    assert stage_db["database_id"] != prod_db["database_id"]
    assert set(staging["vars"]) == set(cfg["vars"]) | {"ALERT_SERVICE_NAME"}
    assert all(staging["vars"][k] == v for k, v in cfg["vars"].items())
    assert staging["vars"]["ALERT_SERVICE_NAME"] == f"{cfg['name']}-staging"  # the Worker wrangler deploys
    assert Config.from_env(staging["vars"].get).alert_service_name == "lighter-orderbook-tracker-staging"
