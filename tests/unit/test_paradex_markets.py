"""GET /markets (Paradex) parsing: ccxt's captured answer, asset kinds, open/expiry
status, decimals, the symbol -> market_index rule, and bad payloads."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import paradex_markets
from tracker.markets import Market, MarketListError
from tracker.paradex_markets import MARKETS_PATH, market_index_of, parse_markets

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "paradex"
NOW = 1_760_000_000_000  # ms


def ccxt_answer() -> dict:
    return json.loads((FIXTURES / "rest-markets-ccxt-2024.json").read_text())


def entry(symbol: str, **changes) -> dict:
    e = copy.deepcopy(ccxt_answer()["results"][0])
    e["symbol"] = symbol
    e.update(changes)
    return e


def test_path():
    assert MARKETS_PATH == "/markets"


def test_ccxt_capture():
    boden = Market(
        market_index=market_index_of("BODEN-USD-PERP"),
        symbol="BODEN-USD-PERP",
        market_type="perp",
        status="active",
        price_decimals=5,  # price_tick_size "0.00001"
        size_decimals=0,  # order_size_increment "1"
        base_asset="BODEN",  # base_currency
    )
    assert parse_markets(ccxt_answer()) == [boden]
    assert parse_markets(ccxt_answer(), now_ms=NOW) == [boden]  # opened 2024-05-30, no expiry
    assert boden.active


def test_market_index_is_pinned():
    """The rule must not change: rows already stored are keyed on these ids."""
    assert market_index_of("BTC-USD-PERP") == 252258115184701 == 0xE56D6B58E83D
    assert market_index_of("ETH-USD-PERP") == 218822092976482
    assert market_index_of("BODEN-USD-PERP") == 63506711021281


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_market_index_rule_and_range(symbol):
    index = market_index_of(symbol)
    assert index == int(hashlib.sha256(symbol.encode()).hexdigest()[:12], 16)
    assert 0 <= index < 2**48 and index < 2**53  # exact as a JavaScript number
    assert market_index_of(str(symbol)) == index


def test_asset_kind_filtering():
    payload = {
        "results": [
            entry("BTC-USD-PERP", asset_kind="PERP"),
            entry("BTC-USD-100000-C", asset_kind="PERP_OPTION"),
            entry("ETH-USD", asset_kind="SPOT"),
            entry("ETH-USD-PERP", asset_kind="PERP"),
        ]
    }
    assert [m.symbol for m in parse_markets(payload)] == sorted(
        ["BTC-USD-PERP", "ETH-USD-PERP"], key=market_index_of
    )
    both = parse_markets(payload, asset_kinds=frozenset({"PERP", "PERP_OPTION"}))
    assert {(m.symbol, m.market_type) for m in both} == {
        ("BTC-USD-PERP", "perp"),
        ("ETH-USD-PERP", "perp"),
        ("BTC-USD-100000-C", "perp_option"),
    }
    assert [m.symbol for m in parse_markets(payload, asset_kinds=frozenset({"SPOT"}))] == ["ETH-USD"]
    assert parse_markets(payload, asset_kinds=frozenset()) == []


@pytest.mark.parametrize("base, kept", [("BTC", "BTC"), ("kPEPE", "kPEPE"), ("", None), ("  ", None), (None, None),
                                        (7, None), (["BTC"], None)])
def test_base_currency_is_the_base_asset(base, kept):
    e = entry("BTC-USD-PERP")
    if base is None:
        del e["base_currency"]
    else:
        e["base_currency"] = base
    (market,) = parse_markets({"results": [e]})
    assert market.base_asset == kept


def test_sorted_by_market_index():
    symbols = [f"M{i}-USD-PERP" for i in range(30)]
    markets = parse_markets({"results": [entry(s) for s in symbols]})
    assert [m.market_index for m in markets] == sorted(market_index_of(s) for s in symbols)
    assert {m.symbol for m in markets} == set(symbols)


@pytest.mark.parametrize(
    "open_at, expiry_at, status",
    [
        (NOW - 1, 0, "active"),
        (NOW, 0, "active"),
        (NOW + 1, 0, "inactive"),  # lists before it opens
        (NOW - 10, NOW + 1, "active"),
        (NOW - 10, NOW, "inactive"),  # expired
        (NOW - 10, NOW - 1, "inactive"),
        (None, None, "active"),
        ("soon", "later", "active"),  # not integers: unknown, not a reason to drop it
        (True, 0, "active"),
    ],
)
def test_status_from_open_and_expiry(open_at, expiry_at, status):
    e = entry("BTC-USD-PERP", open_at=open_at, expiry_at=expiry_at)
    (market,) = parse_markets({"results": [e]}, now_ms=NOW)
    assert market.status == status and market.active == (status == "active")
    (without_now,) = parse_markets({"results": [e]})
    assert without_now.status == "active"


def test_missing_open_and_expiry():
    e = entry("BTC-USD-PERP")
    del e["open_at"], e["expiry_at"]
    assert parse_markets({"results": [e]}, now_ms=NOW)[0].status == "active"


@pytest.mark.parametrize(
    "step, decimals",
    [
        ("0.1", 1),
        ("0.00001", 5),
        ("1", 0),
        ("10", 0),
        ("0.50", 1),
        ("0.0100", 2),
        ("1e-8", 8),
        ("1E+2", 0),
        (5, 0),
        ("0", None),
        ("-0.1", None),
        ("NaN", None),
        ("Infinity", None),
        ("abc", None),
        ("", None),
        (None, None),
        (0.1, None),  # decimals come as strings; a float is not trusted
        (True, None),
        ("1e-19", None),
        ("1e-99999999999999999999", None),
    ],
)
def test_decimals(step, decimals):
    e = entry("BTC-USD-PERP", price_tick_size=step, order_size_increment=step)
    (market,) = parse_markets({"results": [e]})
    assert (market.price_decimals, market.size_decimals) == (decimals, decimals)


def test_missing_decimals():
    e = entry("BTC-USD-PERP")
    del e["price_tick_size"], e["order_size_increment"]
    (market,) = parse_markets({"results": [e]})
    assert (market.price_decimals, market.size_decimals) == (None, None)


def test_empty_list():
    assert parse_markets({"results": []}) == []


def test_same_symbol_twice_last_wins():
    payload = {"results": [entry("BTC-USD-PERP", price_tick_size="0.1"), entry("BTC-USD-PERP", price_tick_size="1")]}
    (market,) = parse_markets(payload)
    assert market.price_decimals == 0


def test_colliding_ids_are_both_kept(monkeypatch):
    """Collisions are left for the market directory to report, never merged here."""
    monkeypatch.setattr(paradex_markets, "market_index_of", lambda symbol: 7)
    markets = parse_markets({"results": [entry("B-USD-PERP"), entry("A-USD-PERP")]})
    assert [(m.market_index, m.symbol) for m in markets] == [(7, "A-USD-PERP"), (7, "B-USD-PERP")]


@pytest.mark.parametrize(
    "payload, message",
    [
        (None, "not a JSON object"),
        ([], "not a JSON object"),
        ("ok", "not a JSON object"),
        ({}, "no results list"),
        ({"results": None}, "no results list"),
        ({"results": {"BTC-USD-PERP": {}}}, "no results list"),
        ({"results": ["BTC-USD-PERP"]}, "entry is not an object"),
        ({"results": [entry("")]}, "without a symbol"),
        ({"results": [entry(5)]}, "without a symbol"),
        ({"results": [{"asset_kind": "PERP"}]}, "without a symbol"),
        ({"results": [entry("\ud800")]}, "not valid text"),
        ({"results": [entry("BTC-USD-PERP", asset_kind=None)]}, "'BTC-USD-PERP' has no asset_kind"),
        ({"results": [entry("BTC-USD-PERP", asset_kind="")]}, "has no asset_kind"),
        ({"results": [entry("BTC-USD-PERP", asset_kind=1)]}, "has no asset_kind"),
        (
            {"error": "MARKET_NOT_FOUND", "message": "market not found", "data": None},
            "markets answered error MARKET_NOT_FOUND: market not found",
        ),
        ({"error": "INTERNAL_ERROR"}, "markets answered error INTERNAL_ERROR"),
        ({"error": "RATE_LIMITED", "results": []}, "error RATE_LIMITED"),
    ],
)
def test_bad_payloads(payload, message):
    with pytest.raises(MarketListError) as info:
        parse_markets(payload, now_ms=NOW)
    assert message in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
entries = st.fixed_dictionaries(
    {},
    optional={
        "symbol": st.one_of(json_values, st.text(max_size=12)),
        "asset_kind": st.one_of(json_values, st.sampled_from(["PERP", "SPOT", "PERP_OPTION"])),
        "price_tick_size": json_values,
        "order_size_increment": json_values,
        "open_at": json_values,
        "expiry_at": json_values,
    },
)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.one_of(json_values, st.fixed_dictionaries({"results": st.lists(entries, max_size=5)})), st.integers())
def test_anything_raises_only_market_list_error(payload, now_ms):
    try:
        markets = parse_markets(payload, now_ms=now_ms)
    except MarketListError:
        return
    assert all(isinstance(m, Market) and m.market_type == "perp" for m in markets)


def test_a_hash_collision_is_reported_and_only_the_first_symbol_is_tracked():
    """Two symbols with one id would share rows: the directory reports them
    (`collisions`, logged as id_collision) and keeps the first."""
    from tracker.directory import MarketDirectory
    from tracker.markets import Market

    directory = MarketDirectory(0, 1, 300_000)
    directory.apply([Market(7, "AAA-USD-PERP", "perp", "active"), Market(7, "BBB-USD-PERP", "perp", "active"),
                     Market(8, "CCC-USD-PERP", "perp", "active")], as_of=1)
    assert directory.collisions == {7: ["AAA-USD-PERP", "BBB-USD-PERP"]}
    assert directory.symbols == {7: "AAA-USD-PERP", 8: "CCC-USD-PERP"}
