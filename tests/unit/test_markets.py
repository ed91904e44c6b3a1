"""GET /api/v1/orderBooks parsing on the captures, bad payloads, and sharding."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tracker.markets import Market, MarketListError, parse_order_books, shard_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lighter"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_mainnet_capture():
    assert parse_order_books(load("http_order_books.json")) == [
        Market(market_index=0, symbol="ETH", market_type="perp", status="active", price_decimals=2, size_decimals=4,
               base_asset="ETH")
    ]


def test_widened_ids_and_spot_symbol_with_a_slash():
    markets = parse_order_books(load("http_order_books_widened_ids.json"))
    assert [(m.market_index, m.symbol, m.market_type) for m in markets] == [
        (4095, "ETH", "perp"),
        (50000, "FUTURE/USDC", "spot"),
    ]
    assert all(m.active for m in markets)
    assert markets[1].price_decimals == 2 and markets[1].size_decimals == 4
    # What each trades: a perp is named by its base asset, a spot market BASE/QUOTE.
    assert [m.base_asset for m in markets] == ["ETH", "FUTURE"]


@pytest.mark.parametrize("symbol, market_type, base", [
    ("BTC", "perp", "BTC"), ("1000PEPE", "perp", "1000PEPE"), ("ETH/USDC", "spot", "ETH"),
    ("ODD", "spot", None), ("/USDC", "spot", None), ("X", "option", None),
])
def test_base_asset_of_a_lighter_market(symbol, market_type, base):
    payload = {"code": 200, "order_books": [{"symbol": symbol, "market_id": 1, "market_type": market_type}]}
    assert parse_order_books(payload)[0].base_asset == base


def test_order_book_details_capture_is_not_an_order_books_answer():
    """The details endpoint answers `order_book_details`, not `order_books`: refused clearly."""
    with pytest.raises(MarketListError, match="no order_books list"):
        parse_order_books(load("http_order_book_details.json"))


def test_details_entries_parse_as_markets_when_listed_under_order_books():
    details = load("http_order_book_details.json")
    payload = {"code": 200, "order_books": details["order_book_details"]}
    (market,) = parse_order_books(payload)
    assert (market.market_index, market.symbol, market.price_decimals, market.size_decimals) == (0, "ETH", 2, 4)


def test_sorted_by_id_and_duplicates_collapse():
    payload = load("http_order_books_widened_ids.json")
    entries = payload["order_books"]
    payload["order_books"] = [entries[1], entries[0], {**entries[0], "status": "inactive"}]
    markets = parse_order_books(payload)
    assert [m.market_index for m in markets] == [4095, 50000]
    assert markets[0].status == "inactive" and not markets[0].active


def test_old_success_code_and_optional_fields():
    payload = {"code": 100, "order_books": [{"symbol": "SOL", "market_id": 2}]}
    assert parse_order_books(payload) == [
        Market(market_index=2, symbol="SOL", market_type="perp", status="active", price_decimals=None, size_decimals=None,
               base_asset="SOL")
    ]
    payload["order_books"][0]["supported_price_decimals"] = "2"  # not an int: unknown
    assert parse_order_books(payload)[0].price_decimals is None


def test_empty_market_list():
    assert parse_order_books({"code": 200, "order_books": []}) == []


def _entry(**changes):
    entry = copy.deepcopy(load("http_order_books.json")["order_books"][0])
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    "payload, message",
    [
        (None, "not a JSON object"),
        ([], "not a JSON object"),
        ("ok", "not a JSON object"),
        ({"order_books": []}, "code None"),
        ({"code": 23000, "message": "Too Many Requests!"}, "code 23000: Too Many Requests!"),
        ({"code": "200", "order_books": []}, "code '200'"),
        ({"code": 200}, "no order_books list"),
        ({"code": 200, "order_books": {"0": {}}}, "no order_books list"),
        ({"code": 200, "order_books": ["ETH"]}, "entry is not an object"),
        ({"code": 200, "order_books": [_entry(market_id="0")]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(market_id=-1)]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(market_id=1.0)]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(market_id=True)]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(market_id=2**53)]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(market_id=None)]}, "market_id is not a valid id"),
        ({"code": 200, "order_books": [_entry(symbol="")]}, "market 0 has no symbol"),
        ({"code": 200, "order_books": [_entry(symbol=5)]}, "market 0 has no symbol"),
    ],
)
def test_bad_payloads(payload, message):
    with pytest.raises(MarketListError) as info:
        parse_order_books(payload)
    assert message in str(info.value)


def test_shards_are_stable_and_cover_every_shard():
    ids = [0, 1, 2, 2048, 4095, 50000, 2**53 - 1]
    assert [shard_of(m, 1) for m in ids] == [0] * len(ids)
    assert [shard_of(m, 4) for m in ids] == [m % 4 for m in ids]
    assert {shard_of(m, 3) for m in range(300)} == {0, 1, 2}
    assert all(0 <= shard_of(m, 64) < 64 for m in ids)


def test_a_market_list_saved_under_another_split_keeps_only_this_shards_markets():
    """Seed 206: SHARDS went 1 -> 3 and shard 0 was evicted before its new run saved its
    list; it resumed with the list saved under SHARDS=1 and tracked every market, beside
    shards 1 and 2 (two rows of one window, written differently). A list saved under
    another split keeps only this shard's markets and is read again at once."""
    from tracker.directory import MarketDirectory
    from tracker.exchange import by_name
    from tracker.markets import Market

    before = MarketDirectory(shard=0, shards=1, refresh_ms=300_000)
    before.apply([Market(i, f"M{i}", "perp", "active") for i in range(6)], as_of=1)
    before.refreshed_at = 1_000
    after = MarketDirectory(shard=0, shards=3, refresh_ms=300_000)
    after.restore(before.to_json())
    assert sorted(after.markets) == [0, 3]
    assert after.next_refresh_at() == 0  # due now

    same = MarketDirectory(shard=0, shards=1, refresh_ms=300_000)
    same.restore(before.to_json())
    assert sorted(same.markets) == list(range(6)) and same.next_refresh_at() == 301_000


# -- what shard 0 saves to *_markets, and reads back ------------------------------------------


def test_the_base_asset_is_saved_read_back_and_rewrites_a_row_only_when_it_changed():
    """base_asset (migration 0003) is bound like every other column: saved, read back by a
    shard that takes the list from D1, and an unchanged listing writes nothing."""
    import asyncio

    from d1sqlite import D1Sqlite

    from tracker import sql
    from tracker.directory import MarketDirectory
    from tracker.exchange import by_name

    db = D1Sqlite()
    db.script((Path(__file__).resolve().parents[2] / "schema.sql").read_text())

    def save(listing: list[Market]) -> int:
        written = 0
        for statement, binds in MarketDirectory.save_statements(listing, 1, 1000, sql.PARADEX):
            assert sql.bind_count(statement) == len(binds)
            written += db.run(statement, binds).changes
        return written

    btc = Market(7, "BTC-USD-PERP", "perp", "active", 1, 5, base_asset="BTC")
    assert save([btc]) == 2  # its row, and its (symbol, market) pair in paradex_market_symbols
    assert save([btc]) == 0  # the same listing again: no row rewritten
    # Saved before base_asset existed (NULL): the next refresh fills it in.
    db.run("UPDATE paradex_markets SET base_asset = NULL", ())
    assert save([btc]) == 1

    class Db:
        async def query(self, statement, *binds):
            return db.run(statement, binds).rows

    markets, _ = asyncio.run(MarketDirectory(0, 1, 60_000, by_name("paradex")).from_d1(Db()))
    assert markets == [btc]
