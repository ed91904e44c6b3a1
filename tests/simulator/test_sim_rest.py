"""REST: GET /api/v1/orderBooks and /api/v1/orderBookDetails against the captures."""
from __future__ import annotations

from simclient import fixture, shape

SIM_ARGS = dict(markets=4, rate=0, seed=3,
                extra_args=["--spot", "2", "--wide-ids", "--hostile-symbol", "--inactive", "1"])


def test_order_books_has_exactly_the_captured_fields(module_sim) -> None:
    body = module_sim.get("/api/v1/orderBooks")
    ref = fixture("http_order_books.json")
    assert list(body) == list(ref) and body["code"] == 200
    ref_row = shape(ref["order_books"][0])
    for row in body["order_books"]:
        assert shape(row) == ref_row, row["symbol"]
        assert list(row) == list(ref["order_books"][0])
    wide = fixture("http_order_books_widened_ids.json")["order_books"]
    assert {shape(r) == ref_row for r in wide} == {True}  # the widened capture agrees


def test_details_perps_have_the_captured_fields_and_spot_its_own_list(module_sim) -> None:
    body = module_sim.get("/api/v1/orderBookDetails")
    ref = fixture("http_order_book_details.json")
    assert list(body) == list(ref) and body["code"] == 200
    perps, spots = body["order_book_details"], body["spot_order_book_details"]
    for row in perps:
        assert row["market_type"] == "perp"
        assert list(row) == list(ref["order_book_details"][0])
        # same JSON types (numbers may be int or float on Lighter: 2398 vs 2361.31)
        assert shape(row) == shape(ref["order_book_details"][0])
    assert spots and all(r["market_type"] == "spot" and "/" in r["symbol"] for r in spots)
    perp_keys = set(ref["order_book_details"][0])
    for row in spots:
        assert set(row) < perp_keys  # spot rows: the captured fields minus perp-only ones
        assert {"market_config", "open_interest", "quote_multiplier"}.isdisjoint(row)
        assert row["market_id"] >= 2048


def test_ids_symbols_status_and_hostile_market(module_sim) -> None:
    rows = module_sim.get("/api/v1/orderBooks")["order_books"]
    by_id = {r["market_id"]: r for r in rows}
    assert [r["symbol"] for r in rows[:4]] == ["ETH", "BTC", "SOL", "DOGE"]
    assert by_id[2048]["symbol"] == "ETH/USDC" and by_id[2049]["market_type"] == "spot"
    assert by_id[50000]["symbol"] == "FUTURE/USDC" and by_id[50000]["market_type"] == "spot"
    assert by_id[4095]["market_type"] == "perp" and 70000 in by_id  # above 16 bits
    assert by_id[4]["symbol"] == "<img src=x onerror=alert(1)>"
    assert by_id[5]["status"] == "inactive"
    assert {r["status"] for r in rows} == {"active", "inactive"}
    assert by_id[0]["supported_price_decimals"] == 2 and by_id[0]["supported_size_decimals"] == 4


def test_market_id_and_filter_queries(module_sim) -> None:
    one = module_sim.get("/api/v1/orderBooks?market_id=70000")["order_books"]
    assert [r["market_id"] for r in one] == [70000]
    d = module_sim.get("/api/v1/orderBookDetails?market_id=2049")
    assert d["order_book_details"] == [] and [r["market_id"] for r in d["spot_order_book_details"]] == [2049]
    d = module_sim.get("/api/v1/orderBookDetails?market_id=1")
    assert [r["symbol"] for r in d["order_book_details"]] == ["BTC"] and d["spot_order_book_details"] == []
    spot = module_sim.get("/api/v1/orderBooks?filter=spot")["order_books"]
    assert {r["market_type"] for r in spot} == {"spot"} and len(spot) == 3
    perp = module_sim.get("/api/v1/orderBookDetails?filter=perp")
    assert perp["spot_order_book_details"] == [] and len(perp["order_book_details"]) == 8
    # OpenAPI's default market_id=255 means "all" when no market has that id
    assert len(module_sim.get("/api/v1/orderBooks?market_id=255")["order_books"]) == 11
    for bad in ("market_id=9999", "market_id=abc", "filter=options"):
        status, _, body = module_sim.request("GET", f"/api/v1/orderBooks?{bad}")
        assert status == 400 and isinstance(body["code"], int) and body["message"]


def test_content_type_and_last_trade_price_near_the_book(module_sim) -> None:
    status, headers, body = module_sim.request("GET", "/api/v1/orderBookDetails?market_id=0")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    book = module_sim.book(0)
    bid, ask = float(book["bids"][0]["price"]), float(book["asks"][0]["price"])
    assert bid <= body["order_book_details"][0]["last_trade_price"] <= ask


def test_six_hundred_markets(start_sim) -> None:
    sim = start_sim(markets=600, rate=0, seed=1)
    rows = sim.get("/api/v1/orderBooks")["order_books"]
    assert [r["market_id"] for r in rows] == list(range(600))
    assert len({r["symbol"] for r in rows}) == 600
    details = sim.get("/api/v1/orderBookDetails")["order_book_details"]
    assert len(details) == 600
