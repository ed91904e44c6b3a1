"""The list of markets and their REST metadata, shaped like Lighter's captures.

Every market's numbers come from a Random seeded with (seed, market id), so the
same command line always lists the same markets with the same metadata.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from .config import SimConfig

SPOT_BASE_ID = 2048
HOSTILE_SYMBOL = "<img src=x onerror=alert(1)>"
# (id, symbol, market_type) added by --wide-ids: 4095 and 50000 as in the capture, and
# 70000 to really go past 16 bits.
WIDE_MARKETS = ((4095, "LIT", "perp"), (50000, "FUTURE/USDC", "spot"), (70000, "WIDE70000", "perp"))

# A realistic head of the perp list; prices set the decimals the way Lighter's do
# (ETH 2/4, BTC 1/5, SOL 3/3, DOGE 6/0 price/size decimals).
KNOWN_PERPS: tuple[tuple[str, float], ...] = (
    ("ETH", 2360.0), ("BTC", 95000.0), ("SOL", 150.0), ("DOGE", 0.16), ("1000PEPE", 0.0098),
    ("WIF", 0.55), ("WLD", 0.9), ("XRP", 2.2), ("LINK", 14.5), ("AVAX", 21.0), ("NEAR", 2.6),
    ("DOT", 3.9), ("TON", 2.9), ("TAO", 380.0), ("POL", 0.21), ("TRUMP", 8.5), ("SUI", 3.1),
    ("1000SHIB", 0.012), ("1000BONK", 0.017), ("1000FLOKI", 0.08), ("BERA", 2.3),
    ("FARTCOIN", 0.95), ("AI16Z", 0.18), ("POPCAT", 0.33), ("HYPE", 38.0), ("BNB", 640.0),
    ("JUP", 0.45), ("AAVE", 260.0), ("MKR", 1700.0), ("ENA", 0.48), ("UNI", 8.1),
    ("APT", 4.6), ("SEI", 0.22), ("KAITO", 1.3), ("IP", 4.2), ("LTC", 88.0), ("CRV", 0.62),
    ("PENDLE", 3.9), ("ONDO", 0.85), ("ADA", 0.66), ("S", 0.41), ("VIRTUAL", 1.4),
    ("SPX", 1.1), ("TRX", 0.27), ("SYRUP", 0.45), ("PUMP", 0.0041), ("LDO", 1.05),
    ("PENGU", 0.031), ("PAXG", 3350.0), ("EIGEN", 1.25), ("ARB", 0.38), ("ZK", 0.061),
    ("OP", 0.66), ("ZRO", 2.1), ("BCH", 470.0), ("HBAR", 0.21), ("GMX", 14.0), ("DYDX", 0.6),
    ("MNT", 0.72), ("ETHFI", 1.1), ("AERO", 0.9), ("TIA", 1.8), ("MORPHO", 1.9), ("XMR", 320.0),
)
KNOWN_SPOT: tuple[tuple[str, float], ...] = (
    ("ETH/USDC", 2360.0), ("LIT/USDC", 1.7), ("BTC/USDC", 95000.0), ("SOL/USDC", 150.0),
)


@dataclass
class MarketSpec:
    market_id: int
    symbol: str
    market_type: str  # "perp" | "spot"
    status: str  # "active" | "inactive" | ...
    price: float  # initial mid
    price_decimals: int
    size_decimals: int
    base_asset_id: int
    quote_asset_id: int
    stats: dict[str, Any] = field(default_factory=dict)  # daily_* etc., fixed per run

    @property
    def empty(self) -> bool:
        """Markets that never trade: their book stays empty (captured empty-book shape)."""
        return self.status != "active"


def decimals_for(price: float) -> tuple[int, int]:
    """(price_decimals, size_decimals) giving ~5-6 significant price digits and lots
    worth cents to a few dollars, like Lighter's listings."""
    mag = math.floor(math.log10(price))
    price_dec = min(6, max(0, 5 - mag))
    size_dec = min(5, max(0, round(math.log10(price)) + 1))
    return price_dec, size_dec


def _spec(market_id: int, symbol: str, market_type: str, price: float, seed: int,
          status: str = "active", base_asset_id: int = 0, quote_asset_id: int = 0) -> MarketSpec:
    rng = random.Random(f"catalog:{seed}:{market_id}")
    pd, sd = decimals_for(price)
    low = price * rng.uniform(0.95, 0.99)
    high = price * rng.uniform(1.01, 1.05)
    base_vol = round(rng.uniform(1e5, 5e7) / price, sd)
    stats = {
        "daily_trades_count": rng.randint(1000, 500_000),
        "daily_base_token_volume": base_vol,
        "daily_quote_token_volume": round(base_vol * price, 6),
        "daily_price_low": round(low, pd),
        "daily_price_high": round(high, pd),
        "daily_price_change": rng.uniform(-5.0, 5.0),
        "open_interest": round(rng.uniform(1e4, 3e7) / price, sd),
        "imf": rng.choice((500, 1000, 2000, 3333)),
    }
    return MarketSpec(market_id, symbol, market_type, status, price, pd, sd,
                      base_asset_id, quote_asset_id, stats)


def build_catalog(cfg: SimConfig) -> list[MarketSpec]:
    rng = random.Random(f"catalog:{cfg.seed}")
    specs: list[MarketSpec] = []
    for i in range(cfg.markets):
        if i < len(KNOWN_PERPS):
            sym, price = KNOWN_PERPS[i]
        else:
            sym, price = f"SYN{i:04d}", 10 ** rng.uniform(-2.5, 3.5)
        specs.append(_spec(i, sym, "perp", price, cfg.seed))
    next_perp = cfg.markets
    if cfg.hostile_symbol:
        specs.append(_spec(next_perp, HOSTILE_SYMBOL, "perp", 1.2345, cfg.seed))
        next_perp += 1
    for k in range(cfg.inactive):
        specs.append(_spec(next_perp, f"DELISTED{k}", "perp", 1.0, cfg.seed, status="inactive"))
        next_perp += 1
    for j in range(cfg.spot):
        if j < len(KNOWN_SPOT):
            sym, price = KNOWN_SPOT[j]
        else:
            sym, price = f"SPT{j:03d}/USDC", 10 ** rng.uniform(-2.0, 3.0)
        specs.append(_spec(SPOT_BASE_ID + j, sym, "spot", price, cfg.seed,
                           base_asset_id=j + 1, quote_asset_id=3))
    if cfg.wide_ids:
        for mid, sym, mtype in WIDE_MARKETS:
            spot = mtype == "spot"
            specs.append(_spec(mid, sym, mtype, 0.75 if spot else 42.0, cfg.seed,
                               base_asset_id=1 if spot else 0, quote_asset_id=3 if spot else 0))
    ids = [s.market_id for s in specs]
    syms = [s.symbol for s in specs]
    assert len(set(ids)) == len(ids) and len(set(syms)) == len(syms), "duplicate market"
    return specs


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def order_books_row(s: MarketSpec) -> dict[str, Any]:
    """One entry of GET /api/v1/orderBooks: exactly the captured field set and order."""
    spot = s.market_type == "spot"
    return {
        "symbol": s.symbol,
        "market_id": s.market_id,
        "market_type": s.market_type,
        "base_asset_id": s.base_asset_id,
        "quote_asset_id": s.quote_asset_id,
        "status": s.status,
        "taker_fee": "0.0000",
        "is_taker_fee_enabled": True,
        "maker_fee": "0.0000",
        "is_maker_fee_enabled": True,
        "liquidation_fee": "0.0000" if spot else "1.0000",
        "min_base_amount": _fmt(max(10 ** -s.size_decimals, 10.0 / s.price), s.size_decimals),
        "min_quote_amount": "10.000000",
        "order_quote_limit": "2500000.000000" if spot else "281474976.710655",
        "supported_size_decimals": s.size_decimals,
        "supported_price_decimals": s.price_decimals,
        "supported_quote_decimals": 6,
    }


def details_row(s: MarketSpec, last_trade_price: float) -> dict[str, Any]:
    """One entry of GET /api/v1/orderBookDetails. Perps: the captured field set.
    Spot: no capture exists, so only the captured fields that the SDK's
    SpotOrderBookDetail also has (no margin fields, no market_config, no
    open_interest, whose type the SDK gives as a string for spot)."""
    st = s.stats
    row = order_books_row(s)
    row.update({
        "size_decimals": s.size_decimals,
        "price_decimals": s.price_decimals,
    })
    perp_only = {
        "quote_multiplier": 1,
        "default_initial_margin_fraction": st["imf"],
        "min_initial_margin_fraction": st["imf"] * 2 // 5,
        "maintenance_margin_fraction": st["imf"] * 6 // 25,
        "closeout_margin_fraction": st["imf"] * 4 // 25,
    }
    if s.market_type != "spot":
        row.update(perp_only)
    row.update({
        "last_trade_price": last_trade_price,
        "daily_trades_count": st["daily_trades_count"],
        "daily_base_token_volume": st["daily_base_token_volume"],
        "daily_quote_token_volume": st["daily_quote_token_volume"],
        "daily_price_low": st["daily_price_low"],
        "daily_price_high": st["daily_price_high"],
        "daily_price_change": st["daily_price_change"],
    })
    if s.market_type != "spot":
        row["open_interest"] = st["open_interest"]
    row["daily_chart"] = {}
    if s.market_type != "spot":
        row["market_config"] = {
            "market_margin_mode": 0,
            "insurance_fund_account_index": 281474976710655,
            "liquidation_mode": 0,
            "force_reduce_only": False,
            "trading_hours": "",
            "funding_fee_discounts_enabled": False,
            "hidden": False,
            "rfq_enabled": True,
        }
        row["strategy_index"] = 2
    return row
