"""The asset map (tracker/assets.py): Lighter's perp `BTC` and Paradex's `BTC-USD-PERP` are
one asset; odd symbols (`1000PEPE` against `kPEPE`), spot markets and options, delisted
markets, a symbol on one venue only; ASSET_PAIRS over what is derived."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.assets import SET_BY_PAIRS, Listed, NotListed, base_of, build, canonical, listed
from tracker.config import Config

L, P = "lighter", "paradex"


def lighter(i: int, symbol: str, market_type: str = "perp") -> Listed:
    base = symbol if market_type == "perp" else symbol.split("/")[0]
    return Listed(L, i, symbol, market_type, base)


def paradex(symbol: str, base: str | None, market_type: str = "perp", i: int | None = None) -> Listed:
    return Listed(P, i if i is not None else 1000 + sum(map(ord, symbol)), symbol, market_type, base)


def pairs(text: str):
    return Config.from_env({"ASSET_PAIRS": text}.get).asset_pairs


def names(amap) -> dict[str, dict[str, str]]:
    return {a.name: {x: m.symbol for x, m in a.markets.items()} for a in amap.assets.values()}


MARKETS = [
    lighter(0, "ETH"), lighter(1, "BTC"), lighter(2, "SOL"), lighter(4, "1000PEPE"), lighter(5, "HYPE"),
    lighter(2048, "ETH/USDC", "spot"), lighter(2050, "BTC/USDC", "spot"),
    paradex("BTC-USD-PERP", "BTC"), paradex("ETH-USD-PERP", "ETH"), paradex("SOL-USD-PERP", "SOL"),
    paradex("kPEPE-USD-PERP", "kPEPE"), paradex("PEPE-USD-PERP", "PEPE"), paradex("DIME-USD-PERP", "DIME"),
    paradex("BTC-USD-100000-C", "BTC", "perp_option"), paradex("ETH-USD", "ETH", "spot"),
]


def test_the_same_base_asset_is_one_asset_on_both_venues():
    amap = build(MARKETS)
    got = names(amap)
    assert got["BTC"] == {L: "BTC", P: "BTC-USD-PERP"}
    assert got["ETH"] == {L: "ETH", P: "ETH-USD-PERP"} and got["SOL"] == {L: "SOL", P: "SOL-USD-PERP"}
    # 1000 PEPE a contract on both: Lighter's 1000PEPE is Paradex's kPEPE; one PEPE is another asset.
    assert got["1000PEPE"] == {L: "1000PEPE", P: "kPEPE-USD-PERP"}
    assert got["PEPE"] == {P: "PEPE-USD-PERP"}
    # On one venue only: in the map (compare answers it), not among the shared assets.
    assert got["HYPE"] == {L: "HYPE"} and got["DIME"] == {P: "DIME-USD-PERP"}
    assert [a.name for a in amap.shared()] == ["1000PEPE", "BTC", "ETH", "SOL"]
    # Spot markets and options are other instruments: never an asset's market.
    symbols = {m.symbol for a in amap.assets.values() for m in a.markets.values()}
    assert not symbols & {"ETH/USDC", "BTC/USDC", "BTC-USD-100000-C", "ETH-USD"}
    assert amap.assets["BTC"].markets[L].market_index == 1 and amap.not_listed == []
    assert list(amap.assets["BTC"].markets) == [L, P]  # EXCHANGES order, whatever the input order


def test_find_takes_the_name_or_another_spelling_of_a_multiplied_contract():
    amap = build(MARKETS)
    assert amap.find("1000PEPE") is amap.find("kPEPE") is amap.assets["1000PEPE"]
    assert amap.find("BTC").name == "BTC"
    assert amap.find("btc") is None and amap.find("NOPE") is None  # case-sensitive, like symbols


@pytest.mark.parametrize("base, name", [
    ("kPEPE", "1000PEPE"), ("kBONK", "1000BONK"), ("1000PEPE", "1000PEPE"), ("1MBABYDOGE", "1000000BABYDOGE"),
    ("KAITO", "KAITO"), ("k", "k"), ("kx", "kx"), ("1INCH", "1INCH"), ("PEPE", "PEPE"), ("1M", "1M"),
])
def test_canonical(base, name):
    assert canonical(base) == name


def test_a_row_saved_before_base_asset_existed_reads_the_asset_from_its_symbol():
    assert base_of(Listed(L, 1, "BTC")) == "BTC"
    assert base_of(Listed(P, 2, "BTC-USD-PERP")) == "BTC"
    assert base_of(Listed(P, 3, "ODD")) is None and base_of(Listed(P, 4, "-USD-PERP")) is None
    assert base_of(Listed(L, 5, "ETH/USDC", "spot")) is None  # not a perpetual
    assert names(build([Listed(L, 1, "BTC"), Listed(P, 2, "BTC-USD-PERP")]))["BTC"] == {L: "BTC", P: "BTC-USD-PERP"}


def test_delisted_and_untracked_markets_are_not_in_the_map():
    rows = [
        {"market_index": 1, "symbol": "BTC", "market_type": "perp", "base_asset": "BTC", "active": 1},
        {"market_index": 9, "symbol": "OLD", "market_type": "perp", "base_asset": "OLD", "active": 0},
        {"market_index": 3, "symbol": "SOL", "market_type": "perp", "base_asset": None, "active": 1},
    ]
    assert [m.symbol for m in listed(L, rows)] == ["BTC", "SOL"]
    only_btc = Config.from_env({"LIGHTER_MARKETS": "BTC"}.get)
    assert [m.symbol for m in listed(L, rows, only_btc.tracks)] == ["BTC"]
    assert listed(P, rows)[1] == Listed(P, 3, "SOL", "perp", None)


def test_several_markets_of_one_asset_on_a_venue_the_shortest_symbol_then_the_lowest_id():
    amap = build([lighter(7, "BTC"), lighter(3, "BTC"), paradex("BTC-USDC-PERP", "BTC", i=1),
                  paradex("BTC-USD-PERP", "BTC", i=2)])
    assert amap.assets["BTC"].markets[L].market_index == 3
    assert amap.assets["BTC"].markets[P].symbol == "BTC-USD-PERP"


def test_asset_pairs_add_rename_split_and_report():
    amap = build(MARKETS + [lighter(6, "WIF")], pairs(
        "PEPE=1000PEPE:PEPE-USD-PERP,"  # the operator pairs Lighter's 1000PEPE with one-PEPE contracts
        "ETH=ETH:,"                     # ETH on Lighter only
        "DOGE=DOGE:DOGE-USD-PERP,"      # neither venue lists it
        "W=WIF:DIME-USD-PERP"))
    got = names(amap)
    assert got["PEPE"] == {L: "1000PEPE", P: "PEPE-USD-PERP"} and amap.assets["PEPE"].source == SET_BY_PAIRS
    # The derived 1000PEPE lost its Lighter market to PEPE and keeps Paradex's kPEPE.
    assert got["1000PEPE"] == {P: "kPEPE-USD-PERP"}
    assert got["ETH"] == {L: "ETH"}  # ETH-USD-PERP is in no asset now
    assert "ETH-USD-PERP" not in {s for a in got.values() for s in a.values()}
    assert "DOGE" not in got and got["W"] == {L: "WIF", P: "DIME-USD-PERP"} and "DIME" not in got
    assert amap.not_listed == [NotListed("DOGE", L, "DOGE"), NotListed("DOGE", P, "DOGE-USD-PERP")]
    assert [a.name for a in amap.shared()] == ["BTC", "PEPE", "SOL", "W"]


def test_a_pair_may_take_any_tracked_market_and_drop_an_asset():
    amap = build(MARKETS, pairs("ETHS=ETH/USDC:ETH-USD,BTC=:"))
    assert names(amap)["ETHS"] == {L: "ETH/USDC", P: "ETH-USD"}  # the operator's call
    assert "BTC" not in names(amap)


def test_with_one_exchange_enabled_a_pairs_other_side_is_left_out_silently():
    only_lighter = [m for m in MARKETS if m.exchange == L]
    amap = build(only_lighter, pairs("PEPE=1000PEPE:kPEPE-USD-PERP"), exchanges=(L,))
    assert names(amap)["PEPE"] == {L: "1000PEPE"} and amap.not_listed == [] and amap.shared() == []


_symbol = st.sampled_from(["BTC", "ETH", "1000PEPE", "kPEPE", "PEPE", "SOL", "X", "ETH/USDC"])


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([L, P]), st.integers(0, 20), _symbol,
                          st.sampled_from(["perp", "perp", "spot"]), st.sampled_from([None, "BTC", "kPEPE", "ETH"])),
                max_size=25),
       st.sampled_from(["", "A=BTC:BTC-USD-PERP", "PEPE=1000PEPE:,Z=:kPEPE", "ETH=:"]))
def test_every_market_is_in_one_asset_at_most_under_its_own_exchange(rows, pair_text):
    # One row per market id and exchange, as *_markets keys them.
    markets = list({(x, i): Listed(x, i, s, t, b) for x, i, s, t, b in rows}.values())
    amap = build(markets, pairs(pair_text))
    seen = [(x, m.market_index, m.symbol) for a in amap.assets.values() for x, m in a.markets.items()]
    assert len(seen) == len(set(seen))
    for asset in amap.assets.values():
        assert asset.markets and all(m.exchange == x for x, m in asset.markets.items())
        assert all(m in markets for m in asset.markets.values())
        if asset.source != SET_BY_PAIRS:
            assert all(m.market_type == "perp" for m in asset.markets.values())
