"""LIGHTER_MARKETS / PARADEX_MARKETS (issue 19, item 2): the setting, and the market
directory applying it where a listing is adopted. The whole deployment under faults,
allowlists included: tests/sim (world.py gives one seed in four an allowlist)."""

from __future__ import annotations

import json

import pytest

from tracker.config import Config, ConfigError
from tracker.directory import MarketDirectory
from tracker.markets import Market
from tracker.shardstats import combine


def config(**env) -> Config:
    return Config.from_env(env.get)


# -- the setting -------------------------------------------------------------------------


def test_unset_or_empty_means_every_market():
    for env in ({}, {"LIGHTER_MARKETS": ""}, {"LIGHTER_MARKETS": " , "}):
        c = config(**env)
        assert c.market_symbols == () and c.tracks("ANY")


def test_symbols_are_kept_as_written_in_order_without_repeats():
    c = config(LIGHTER_MARKETS=" ETH, BTC ,ETH,1000PEPE, FUTURE/USDC ")
    assert c.market_symbols == ("ETH", "BTC", "1000PEPE", "FUTURE/USDC")
    assert c.tracks("BTC") and not c.tracks("btc") and not c.tracks("SOL")  # case-sensitive, as the API


def test_each_exchange_has_its_own():
    c = config(LIGHTER_MARKETS="ETH", PARADEX_MARKETS="BTC-USD-PERP,ETH-USD-PERP")
    assert c.for_exchange("lighter").market_symbols == ("ETH",)
    assert c.for_exchange("paradex").market_symbols == ("BTC-USD-PERP", "ETH-USD-PERP")
    assert config(PARADEX_MARKETS="BTC-USD-PERP").for_exchange("lighter").market_symbols == ()


@pytest.mark.parametrize("raw", ["ETH BTC", "ETH,\tBTC X", "A" * 65, "ETH,BT\x00C"])
def test_a_list_that_is_not_symbols_is_a_configuration_error(raw):
    with pytest.raises(ConfigError, match="LIGHTER_MARKETS must be comma-separated market symbols"):
        config(LIGHTER_MARKETS=raw)


# -- the directory ---------------------------------------------------------------------------

LISTING = [
    Market(0, "ETH", "perp", "active"),
    Market(1, "BTC", "perp", "active"),
    Market(2, "SOL", "perp", "active"),
    Market(3, "DOGE", "perp", "inactive"),
    Market(4, "PEPE", "perp", "active"),
]


def test_only_the_allowed_markets_are_this_shards_and_saved():
    d = MarketDirectory(0, 1, 60_000, symbols=("SOL", "ETH"))
    change = d.apply(LISTING, as_of=1)
    assert sorted(d.markets) == [0, 2] and [m.symbol for m in change.added] == ["ETH", "SOL"]
    assert (d.listed, d.kept) == (4, 2)
    assert [m.symbol for m in d.tracked(LISTING)] == ["ETH", "SOL"]  # what shard 0 writes to *_markets
    assert d.not_listed == {}


def test_every_shard_keeps_its_share_of_the_allowed_markets_only():
    allowed = ("ETH", "BTC", "PEPE")
    shards = [MarketDirectory(s, 2, 60_000, symbols=allowed) for s in range(2)]
    for d in shards:
        d.apply(LISTING, as_of=1)
    assert sorted(shards[0].markets) == [0, 4] and sorted(shards[1].markets) == [1]
    # The list saved in D1 holds only those: a shard reading it takes the same share.
    saved = shards[0].tracked(LISTING)
    again = MarketDirectory(1, 2, 60_000, symbols=allowed)
    again.apply(saved, as_of=1)
    assert again.markets == shards[1].markets and again.not_listed == shards[1].not_listed == {}


def test_a_symbol_not_listed_is_reported_with_the_listed_spelling_it_may_mean():
    d = MarketDirectory(0, 1, 60_000, symbols=("ETH", "eth", "Sol", "NOPE", "DOGE"))
    d.apply(LISTING, as_of=1)
    assert sorted(d.markets) == [0]
    # DOGE is listed but inactive: not tracked, so reported too.
    assert d.not_listed == {"DOGE": None, "NOPE": None, "Sol": "SOL", "eth": "ETH"}


def test_a_restored_directory_drops_what_a_new_allowlist_leaves_out():
    before = MarketDirectory(0, 1, 60_000)
    before.apply(LISTING, as_of=1)
    saved = before.to_json()
    after = MarketDirectory(0, 1, 60_000, symbols=("BTC",))  # deployed with LIGHTER_MARKETS=BTC
    after.restore(saved)
    assert sorted(after.markets) == [1]  # not ETH, SOL, PEPE until the next refresh
    assert json.loads(saved)["markets"] and len(json.loads(saved)["markets"]) == 4


def test_without_an_allowlist_nothing_changes():
    d = MarketDirectory(0, 1, 60_000)
    d.apply(LISTING, as_of=1)
    assert sorted(d.markets) == [0, 1, 2, 4] and d.kept == d.listed == 4 and d.not_listed == {}
    assert d.tracked(LISTING) == LISTING


def test_the_shards_reports_combine_into_one_list():
    stats = combine([{"shard": 0, "marketsNotListed": ["NOPE", "btc"]}, {"shard": 1, "marketsNotListed": ["NOPE"]},
                     {"shard": 2, "failed": "unreachable"}])
    assert stats["marketsNotListed"] == ["NOPE", "btc"]
