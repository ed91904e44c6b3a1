"""Clients nobody here wrote: Lighter's official Python SDK (PyPI lighter-sdk)."""
from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import lighter
import pytest
from pydantic import ValidationError

SIM_ARGS = dict(markets=3, rate=40, seed=17, extra_args=["--spot", "2", "--snapshot-delay", "0"])

# Fields the SDK's models declare as required that Lighter's captured answers do not
# carry (so the simulator does not send them either). The SDK parses responses with
# model_construct (no validation), so its clients still work; strict validation fails.
SDK_ONLY_ORDER_BOOK = {"created_at", "multiplier", "start_timestamp", "end_timestamp",
                       "settlement_type", "settlement_price", "settlement_cap", "outcome",
                       "default_price", "operator_account_index", "is_frozen", "open_interest"}
SDK_ONLY_PERP_DETAIL = {"funding_clamp_small", "funding_clamp_big", "base_interest_rate",
                        "created_at", "mark_price", "index_price", "multiplier", "market_flags",
                        "funding_premium_multiplier", "start_timestamp", "end_timestamp",
                        "settlement_type", "settlement_price", "settlement_cap", "outcome",
                        "default_price", "operator_account_index", "is_frozen"}
SDK_ONLY_SPOT_DETAIL = {"created_at", "multiplier", "start_timestamp", "end_timestamp",
                        "settlement_type", "settlement_price", "settlement_cap", "outcome",
                        "default_price", "operator_account_index", "is_frozen", "open_interest"}


async def _rest(url: str):
    async with lighter.ApiClient(lighter.Configuration(host=url)) as client:
        api = lighter.OrderApi(client)
        return (await api.order_books(), await api.order_book_details(),
                await api.order_book_details(market_id=2049), await api.order_books(filter="spot"))


def test_sdk_rest_parses_order_books_and_details(module_sim) -> None:
    books, details, one, spot = asyncio.run(_rest(module_sim.url))
    assert isinstance(books, lighter.OrderBooks) and books.code == 200
    assert [b.market_id for b in books.order_books] == [0, 1, 2, 2048, 2049]
    assert [b.symbol for b in books.order_books] == ["ETH", "BTC", "SOL", "ETH/USDC", "LIT/USDC"]
    assert all(isinstance(b, lighter.OrderBook) and b.status == "active" for b in books.order_books)
    assert isinstance(details, lighter.OrderBookDetails)
    perp = details.order_book_details[0]
    assert isinstance(perp, lighter.PerpsOrderBookDetail)
    assert (perp.size_decimals, perp.price_decimals) == (4, 2)
    assert isinstance(perp.market_config, lighter.MarketConfig) and perp.market_config.hidden is False
    assert [s.market_id for s in details.spot_order_book_details] == [2048, 2049]
    assert all(isinstance(s, lighter.SpotOrderBookDetail) for s in details.spot_order_book_details)
    assert one.order_book_details == [] and [s.symbol for s in one.spot_order_book_details] == ["LIT/USDC"]
    assert {b.market_type for b in spot.order_books} == {"spot"}


def test_sdk_models_strictly_validated_miss_only_sdk_only_fields(module_sim) -> None:
    """Documents where the SDK's schema and Lighter's real answers disagree."""
    rows = module_sim.get("/api/v1/orderBookDetails")
    books = module_sim.get("/api/v1/orderBooks")

    def missing(model, row) -> set[str]:
        with pytest.raises(ValidationError) as e:
            model.model_validate(row)
        errs = e.value.errors()
        assert {err["type"] for err in errs} == {"missing"}  # nothing mistyped, only absent
        return {err["loc"][0] for err in errs}
    assert missing(lighter.OrderBook, books["order_books"][0]) == SDK_ONLY_ORDER_BOOK
    assert missing(lighter.PerpsOrderBookDetail, rows["order_book_details"][0]) == SDK_ONLY_PERP_DETAIL
    assert missing(lighter.SpotOrderBookDetail, rows["spot_order_book_details"][0]) == SDK_ONLY_SPOT_DETAIL
    # wrappers and nested models validate as they are
    lighter.MarketConfig.model_validate(rows["order_book_details"][0]["market_config"])
    assert lighter.ResultCode.model_validate({"code": rows["code"]}).code == 200


def test_sdk_ws_client_gets_snapshot_and_updates_and_ends_with_the_simulator_book(module_sim) -> None:
    sim = module_sim
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def on_update(market_id: str, state: dict) -> None:
        with lock:
            calls[market_id] = calls.get(market_id, 0) + 1

    client = lighter.WsClient(ws_url=sim.ws_url, order_book_ids=[0, 2048],
                              on_order_book_update=on_update)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            client.run()
        except Exception as e:  # noqa: BLE001 - closing the socket ends run() one way or another
            errors.append(e)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while min(calls.get("0", 0), calls.get("2048", 0)) < 15:
        assert time.monotonic() < deadline, calls
        time.sleep(0.02)
    sim.control("rate", rate=0)  # freeze the books
    st = sim.wait_flushed()
    conn = max(c["conn"] for c in st["connections"] if c["open"])
    expected = {str(m): len(sim.record(market_id=m, conn=conn)) for m in (0, 2048)}
    deadline = time.monotonic() + 5
    while calls != expected:  # the SDK has handled every frame sent to it
        assert time.monotonic() < deadline, (calls, expected)
        time.sleep(0.02)
    client.ws.close()
    t.join(5)
    assert not t.is_alive()
    try:
        for mid in (0, 2048):
            book = sim.book(mid)
            state = client.order_book_states[str(mid)]
            asks = sorted(state["asks"], key=lambda lv: Decimal(lv["price"]))
            bids = sorted(state["bids"], key=lambda lv: Decimal(lv["price"]), reverse=True)
            assert [(lv["price"], lv["size"]) for lv in asks] == [(lv["price"], lv["size"]) for lv in book["asks"]]
            assert [(lv["price"], lv["size"]) for lv in bids] == [(lv["price"], lv["size"]) for lv in book["bids"]]
            rec = sim.record(market_id=mid, conn=conn)
            assert rec[0]["type"] == "subscribed/order_book" and rec[-1]["nonce"] == book["nonce"]
            assert all(r["valid"] for r in rec)
    finally:
        sim.control("rate", rate=40)
