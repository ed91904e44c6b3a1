"""Paradex mode, REST under /v1: markets, orderbook, bbo, errors, faults and the per-IP limit."""
from __future__ import annotations

import http.client
import time
from decimal import Decimal

import pytest
from pxclient import market_id

SIM_ARGS = dict(exchange="paradex", markets=4, rate=0, seed=3, extra_args=["--options", "4", "--spot", "2"])

MARKET_FIELDS = {"symbol", "base_currency", "quote_currency", "settlement_currency", "order_size_increment",
                 "price_tick_size", "min_notional", "open_at", "expiry_at", "asset_kind", "market_kind",
                 "position_limit", "price_bands_width", "max_open_orders", "max_slippage", "max_order_size",
                 "trading_mode", "fee_config", "tags"}


@pytest.fixture
def sim(module_sim):
    module_sim.control("reset")
    return module_sim


def test_urls_of_the_paradex_mode(sim) -> None:
    assert sim.url.endswith("/v1") and sim.url == sim.base_url + "/v1"
    assert sim.ws_url == f"ws://127.0.0.1:{sim.port}/v1?sbeSchemaId=1&sbeSchemaVersion=1"
    assert sim.get("/")["exchange"] == "paradex"


def test_markets_list_perps_options_and_spot(sim) -> None:
    body = sim.get("/v1/markets")
    assert list(body) == ["results"]
    rows = body["results"]
    kinds = [r["asset_kind"] for r in rows]
    assert kinds == ["PERP"] * 4 + ["PERP_OPTION"] * 4 + ["SPOT"] * 2
    assert [r["symbol"] for r in rows[:4]] == ["BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP", "DOGE-USD-PERP"]
    for r in rows:
        assert MARKET_FIELDS <= set(r), r["symbol"]
        assert isinstance(r["open_at"], int) and r["open_at"] > 1_700_000_000_000 and r["expiry_at"] == 0
        for key in ("price_tick_size", "order_size_increment", "min_notional", "max_order_size"):
            assert isinstance(r[key], str) and Decimal(r[key]) > 0, key
        assert set(r["fee_config"]) == {"api_fee", "interactive_fee", "rpi_fee"}
        assert set(r["fee_config"]["api_fee"]) == {"maker_fee", "taker_fee"}
        assert r["trading_mode"] == "STANDARD"
    btc = rows[0]
    # as captured: BTC prices are multiples of 0.1, sizes of 0.00001
    assert (btc["price_tick_size"], btc["order_size_increment"]) == ("0.1", "0.00001")
    assert (btc["base_currency"], btc["quote_currency"], btc["settlement_currency"]) == ("BTC", "USD", "USDC")
    options = [r for r in rows if r["asset_kind"] == "PERP_OPTION"]
    assert {r["option_type"] for r in options} == {"CALL", "PUT"}
    for r in options:
        base, quote, strike, cp = r["symbol"].split("-")
        assert (r["strike_price"], cp) == (strike, r["option_type"][0]) and quote == "USD"
    assert all("option_type" not in r for r in rows if r["asset_kind"] != "PERP_OPTION")
    assert [r["symbol"] for r in rows if r["asset_kind"] == "SPOT"] == ["ETH-USDC", "BTC-USDC"]
    assert all("funding_period_hours" in r for r in rows if r["asset_kind"] != "SPOT")
    # ?market= selects one; an unknown one lists nothing
    assert [r["symbol"] for r in sim.get("/v1/markets?market=SOL-USD-PERP")["results"]] == ["SOL-USD-PERP"]
    assert sim.get("/v1/markets?market=NOPE-USD-PERP") == {"results": []}


def test_market_ids_are_the_trackers_hash_of_the_symbol(sim) -> None:
    st = sim.state()
    symbols = {m["symbol"]: int(mid) for mid, m in st["markets"].items()}
    assert len(symbols) == 10
    assert all(mid == market_id(sym) for sym, mid in symbols.items())
    assert market_id("BTC-USD-PERP") == int.from_bytes(
        __import__("hashlib").sha256(b"BTC-USD-PERP").digest()[:6], "big")
    # the control plane and the views take the id or the symbol
    assert sim.book("ETH-USD-PERP") == sim.book(market_id("ETH-USD-PERP"))


def test_orderbook_shape_depth_and_price_tick(sim) -> None:
    body = sim.get("/v1/orderbook/BTC-USD-PERP")
    assert list(body) == ["market", "seq_no", "last_updated_at", "bids", "asks", "best_bid_api",
                          "best_ask_api", "best_bid_interactive", "best_ask_interactive"]
    assert body["market"] == "BTC-USD-PERP" and isinstance(body["seq_no"], int) and body["seq_no"] > 10 ** 9
    assert 1_700_000_000_000 < body["last_updated_at"] < 10 ** 13  # ms
    assert len(body["bids"]) == len(body["asks"]) == 20  # depth defaults to 20
    book = sim.book("BTC-USD-PERP")
    assert body["bids"] == book["bids"][:20] and body["asks"] == book["asks"][:20]
    assert body["seq_no"] == book["seq"]
    for side in ("bids", "asks"):
        for price, size in body[side]:
            assert isinstance(price, str) and isinstance(size, str)
            assert Decimal(price) % Decimal("0.1") == 0 and Decimal(size) % Decimal("0.00001") == 0
    assert Decimal(body["bids"][0][0]) < Decimal(body["asks"][0][0])
    assert body["best_bid_api"] == body["best_bid_interactive"] == body["bids"][0]
    assert body["best_ask_api"] == body["best_ask_interactive"] == body["asks"][0]
    three = sim.get("/v1/orderbook/BTC-USD-PERP?depth=3")
    assert three["bids"] == body["bids"][:3] and three["asks"] == body["asks"][:3]
    assert sim.get("/v1/orderbook/BTC-USD-PERP/interactive?depth=3") == three
    # price_tick groups levels: bids down, asks up, sizes summed
    grouped = sim.get("/v1/orderbook/BTC-USD-PERP?price_tick=1&depth=500")
    for side, rnd in (("bids", lambda p: p.to_integral_value(rounding="ROUND_FLOOR")),
                      ("asks", lambda p: p.to_integral_value(rounding="ROUND_CEILING"))):
        expect: dict[Decimal, Decimal] = {}
        for p, s in book[side]:
            expect[rnd(Decimal(p))] = expect.get(rnd(Decimal(p)), Decimal(0)) + Decimal(s)
        got = {Decimal(p): Decimal(s) for p, s in grouped[side]}
        assert got == expect, side
    for bad in ("depth=0", "depth=x", "depth=501", "price_tick=0.05", "price_tick=-1", "price_tick=abc"):
        status, _, err = sim.request("GET", f"/v1/orderbook/BTC-USD-PERP?{bad}")
        assert status == 400 and err["error"] == "VALIDATION_ERROR", bad


def test_bbo_and_market_not_found(sim) -> None:
    bbo = sim.get("/v1/bbo/ETH-USD-PERP")
    assert list(bbo) == ["market", "seq_no", "bid", "bid_size", "ask", "ask_size", "last_updated_at"]
    book = sim.book("ETH-USD-PERP")
    assert [bbo["bid"], bbo["bid_size"]] == book["bids"][0] and [bbo["ask"], bbo["ask_size"]] == book["asks"][0]
    assert bbo["seq_no"] == book["seq"] and sim.get("/v1/bbo/ETH-USD-PERP/interactive") == bbo
    before = sim.state()["errors_sent"]["MARKET_NOT_FOUND"]
    for path in ("/v1/orderbook/NOPE-USD-PERP", "/v1/bbo/BTC-USD", "/v1/orderbook/btc-usd-perp/interactive"):
        status, _, body = sim.request("GET", path)
        assert status == 404 and body["error"] == "MARKET_NOT_FOUND" and body["message"], path
    assert sim.state()["errors_sent"]["MARKET_NOT_FOUND"] == before + 3


def test_rest_faults(sim) -> None:
    sim.control("rest_fail", status=429, count=1)
    status, headers, body = sim.request("GET", "/v1/markets")
    assert status == 429 and body["error"] == "RATE_LIMIT_EXCEEDED" and headers.get("Retry-After") == "1"
    for code, name in ((500, "INTERNAL_ERROR"), (502, "BAD_GATEWAY"), (503, "SERVICE_UNAVAILABLE")):
        sim.control("rest_fail", status=code, count=1)
        status, _, body = sim.request("GET", "/v1/orderbook/BTC-USD-PERP")
        assert (status, body["error"]) == (code, name)
    assert sim.request("GET", "/v1/bbo/BTC-USD-PERP")[0] == 200
    sim.control("rest_delay", seconds=0.3, count=1)
    t0 = time.monotonic()
    assert sim.request("GET", "/v1/markets")[0] == 200
    assert time.monotonic() - t0 >= 0.3
    assert sim.state()["faults"]["rest_fail"] >= 4


def test_set_status_takes_a_market_off_the_list(sim) -> None:
    try:
        sim.control("set_status", market="SOL-USD-PERP", status="delisted")
        assert "SOL-USD-PERP" not in [r["symbol"] for r in sim.get("/v1/markets")["results"]]
    finally:
        sim.control("set_status", market="SOL-USD-PERP", status="active")
    assert "SOL-USD-PERP" in [r["symbol"] for r in sim.get("/v1/markets")["results"]]


def test_rest_limit_is_per_ip(start_sim) -> None:
    sim = start_sim(exchange="paradex", markets=1, rate=0, seed=1, extra_args=["--rest-limit", "3"])
    assert sim.state()["limits"]["rest_per_minute"] == 3
    for _ in range(3):
        assert sim.request("GET", "/v1/markets")[0] == 200
    status, _, body = sim.request("GET", "/v1/bbo/BTC-USD-PERP")
    assert status == 429 and body == {"error": "RATE_LIMIT_EXCEEDED", "message": "rate limit exceeded"}
    # another IP (a client bound to loopback 127.0.0.2) has its own 3 a minute
    other = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5, source_address=("127.0.0.2", 0))
    other.request("GET", "/v1/markets")
    assert other.getresponse().status == 200
    other.close()
    assert sim.state()["errors_sent"]["RATE_LIMIT_EXCEEDED"] == 1


def test_paradex_defaults(start_sim) -> None:
    from lighter_sim.config import SimConfig, parse_args
    cfg = parse_args(["--exchange", "paradex"])
    assert (cfg.rest_limit, cfg.max_new_connections, cfg.max_new_connections_per_second, cfg.conn_window,
            cfg.max_connections, cfg.ping_interval, cfg.pong_timeout, cfg.heartbeat_interval,
            cfg.spot, cfg.options, cfg.sbe_versions) == (1500, 600, 20, 60.0, 0, 55.0, 5.0, 20.0, 1, 2, "1")
    assert parse_args([]) == SimConfig()  # Lighter's defaults are unchanged
    assert parse_args(["--exchange", "paradex", "--spot", "0", "--rest-limit", "0"]).spot == 0
    for bad in (["--wide-ids"], ["--inactive", "1"], ["--empty-deltas", "1"], ["--sbe-versions", "x"]):
        with pytest.raises(SystemExit):
            parse_args(["--exchange", "paradex", *bad])
    sim = start_sim(exchange="paradex", markets=2, rate=0, seed=1)
    assert sim.state()["limits"] == {"per": "ip", "new_connections_per_second": 20, "new_connections": 600,
                                     "connection_window_s": 60.0, "connections": None, "rest_per_minute": 1500}
    kinds = [r["asset_kind"] for r in sim.get("/v1/markets")["results"]]
    assert kinds == ["PERP", "PERP", "PERP_OPTION", "PERP_OPTION", "SPOT"]
