"""Config.from_env: defaults, overrides, and clear errors for values the tracker cannot run with."""

from __future__ import annotations

import pytest

from tracker.config import MAINNET_API_URL, MAINNET_WS_URL, VALID_WINDOW_SECONDS, Config, ConfigError


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
        ("SNAPSHOT_RETENTION_MINUTES", "0", "SNAPSHOT_RETENTION_MINUTES must be between 1 and 10080"),
        ("MINUTE_RETENTION_HOURS", "1e9", "MINUTE_RETENTION_HOURS must be between 1 and 8760"),
        ("STALE_FEED_SECONDS", "4", "STALE_FEED_SECONDS must be between 5 and 3600, got '4'"),
        ("SHARDS", "0", "SHARDS must be between 1 and 64, got '0'"),
        ("SHARDS", "65", "SHARDS must be between 1 and 64"),
        ("SHARDS", "two", "SHARDS must be a number, got 'two'"),
        ("SHARDS", "1.5", "SHARDS must be a whole number, got '1.5'"),
        ("ALERT_AFTER_MINUTES", "0.05", "ALERT_AFTER_MINUTES must be between 0.1 and 1440"),
        ("LIGHTER_API_URL", "mainnet.zklighter.elliot.ai", "LIGHTER_API_URL must be an http(s) URL"),
        ("LIGHTER_API_URL", "ws://127.0.0.1:1", "LIGHTER_API_URL must be an http(s) URL, got 'ws://127.0.0.1:1'"),
        ("LIGHTER_WS_URL", "https://mainnet.zklighter.elliot.ai/stream", "LIGHTER_WS_URL must be a ws(s) URL"),
    ],
)
def test_invalid_values_raise_a_clear_config_error(name, value, message):
    with pytest.raises(ConfigError) as info:
        from_env(**{name: value})
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_config_is_immutable():
    config = from_env()
    with pytest.raises(AttributeError):
        config.shards = 3  # type: ignore[misc]


def test_hour_retention_days():
    assert Config().hour_retention_ms == 90 * 86_400_000
    assert from_env(HOUR_RETENTION_DAYS="400").hour_retention_ms == 400 * 86_400_000
    with pytest.raises(ConfigError, match="HOUR_RETENTION_DAYS must be between 1 and 3650"):
        from_env(HOUR_RETENTION_DAYS="0")
