"""Paradex's market list: symbols, asset kinds and the MarketResp rows of GET /v1/markets.

Every market is a MarketSpec (so the engine's MarketSim books and random walk work
unchanged) plus the Paradex metadata in a ParadexMarket. Its `market_id` is the id the
tracker gives a Paradex symbol, restated here (the simulator does not import src/):

    market_id = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:6], "big")

so the record, /_sim/book?market_id= and the control plane speak the tracker's ids
(a symbol works wherever an id does).
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

from ..catalog import HOSTILE_SYMBOL, KNOWN_PERPS, MarketSpec, decimals_for
from ..config import SimConfig

PERP, PERP_OPTION, SPOT = "PERP", "PERP_OPTION", "SPOT"
LISTED_AT_MS = 1_717_065_600_000  # 2024-05-30: open_at of the oldest markets
# Paradex lists BTC, ETH and SOL first; the rest of Lighter's head list follows.
PARADEX_PERPS: tuple[tuple[str, float], ...] = (
    ("BTC", 95000.0), ("ETH", 2360.0), ("SOL", 150.0),
    *((b, p) for b, p in KNOWN_PERPS if b not in ("BTC", "ETH", "SOL")),
)
SPOT_BASES: tuple[tuple[str, float], ...] = (("ETH", 2360.0), ("BTC", 95000.0), ("SOL", 150.0))


def market_id_for(symbol: str) -> int:
    """The tracker's id of a Paradex symbol: the first 6 bytes of its SHA-256, big-endian."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:6], "big")


def dec_str(value: Decimal) -> str:
    """A decimal as Paradex writes it: no exponent, no trailing zeros ("0.1", "62002")."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def step_str(decimals: int) -> str:
    return dec_str(Decimal(1).scaleb(-decimals))


@dataclass
class ParadexMarket:
    spec: MarketSpec
    asset_kind: str
    base: str
    quote: str
    open_at: int  # ms
    expiry_at: int = 0  # ms, 0 = never (perpetuals)
    option_type: Optional[str] = None  # PERP_OPTION: CALL | PUT
    strike: Optional[int] = None

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    @property
    def price_scale(self) -> int:
        """Mantissa (exponent -8) of one price tick."""
        return 10 ** (8 - self.spec.price_decimals)

    @property
    def size_scale(self) -> int:
        return 10 ** (8 - self.spec.size_decimals)


def _spec(symbol: str, price: float, kind: str, seed: int) -> MarketSpec:
    mid = market_id_for(symbol)
    rng = random.Random(f"paradex-catalog:{seed}:{symbol}")
    pd, sd = decimals_for(price)
    stats = {"max_order_size": round(rng.uniform(5e5, 5e6) / price, sd),
             "position_limit": round(rng.uniform(5e6, 5e7) / price, sd),
             "open_days": rng.randint(0, 400), "imf": rng.choice(("0.02", "0.05", "0.1", "0.2"))}
    return MarketSpec(mid, symbol, kind.lower(), "active", price, pd, sd, 0, 0, stats)


def build_catalog(cfg: SimConfig) -> list[ParadexMarket]:
    rng = random.Random(f"paradex-catalog:{cfg.seed}")
    out: list[ParadexMarket] = []

    def add(symbol: str, price: float, kind: str, base: str, quote: str, **kw: Any) -> None:
        spec = _spec(symbol, price, kind, cfg.seed)
        open_at = LISTED_AT_MS + spec.stats["open_days"] * 86_400_000
        out.append(ParadexMarket(spec, kind, base, quote, open_at, **kw))

    for i in range(cfg.markets):
        if i < len(PARADEX_PERPS):
            base, price = PARADEX_PERPS[i]
        else:
            base, price = f"SYN{i:04d}", 10 ** rng.uniform(-2.5, 3.5)
        add(f"{base}-USD-PERP", price, PERP, base, "USD")
    if cfg.hostile_symbol:
        add(HOSTILE_SYMBOL, 1.2345, PERP, "XSS", "USD")
    for j in range(cfg.options):
        base, under = PARADEX_PERPS[j % 2]  # BTC and ETH options, alternately
        call = (j // 2) % 2 == 0
        step = 5000 if base == "BTC" else 200
        strike = int(round(under / step) * step) + step * (j // 4 + 1) * (1 if call else -1)
        premium = max(under * 0.002, abs(under - strike) * 0.2 + under * 0.03)
        add(f"{base}-USD-{strike}-{'C' if call else 'P'}", premium, PERP_OPTION, base, "USD",
            option_type="CALL" if call else "PUT", strike=strike)
    for k in range(cfg.spot):
        base, price = SPOT_BASES[k] if k < len(SPOT_BASES) else (f"SPT{k:03d}", 10 ** rng.uniform(-2.0, 3.0))
        add(f"{base}-USDC", price, SPOT, base, "USDC")
    ids = [m.spec.market_id for m in out]
    syms = [m.symbol for m in out]
    assert len(set(ids)) == len(ids) and len(set(syms)) == len(syms), "duplicate market"
    return out


def market_row(m: ParadexMarket) -> dict[str, Any]:
    """One MarketResp of GET /v1/markets (the fields a tracker reads, and the usual rest;
    decimals as strings, times in ms)."""
    s = m.spec
    st = s.stats
    row: dict[str, Any] = {
        "symbol": m.symbol,
        "base_currency": m.base,
        "quote_currency": m.quote,
        "settlement_currency": "USDC",
        "order_size_increment": step_str(s.size_decimals),
        "price_tick_size": step_str(s.price_decimals),
        "min_notional": "10",
        "open_at": m.open_at,
        "expiry_at": m.expiry_at,
        "asset_kind": m.asset_kind,
        "market_kind": "" if m.asset_kind == SPOT else "cross",
        "position_limit": dec_str(Decimal(str(st["position_limit"]))),
        "price_bands_width": "0.05",
        "max_open_orders": 100,
        "max_slippage": "0.05",
        "max_order_size": dec_str(Decimal(str(st["max_order_size"]))),
        "trading_mode": "STANDARD",
        "fee_config": {name: {"maker_fee": maker, "taker_fee": taker}
                       for name, maker, taker in (("api_fee", "0.00003", "0.0002"),
                                                  ("interactive_fee", "0", "0"),
                                                  ("rpi_fee", "-0.00001", "0.0002"))},
        "tags": [],
    }
    if m.asset_kind != SPOT:
        row.update({
            "max_funding_rate": "0.05",
            "max_funding_rate_change": "0.0005",
            "funding_period_hours": 8,
            "interest_rate": "0.0001",
            "clamp_rate": "0.0005",
            "max_tob_spread": "0.2",
            "oracle_ewma_factor": "0.2",
            "price_feed_id": hashlib.sha256(f"feed:{m.base}".encode()).hexdigest()[:44],
            "delta1_cross_margin_params": {"imf_base": st["imf"], "imf_factor": "0", "imf_shift": "0",
                                           "mmf_factor": "0.5"},
        })
    if m.asset_kind == PERP_OPTION:
        row.update({"option_type": m.option_type, "strike_price": str(m.strike),
                    "iv_bands_width": "0.05",
                    "option_cross_margin_params": {"imf": {"long_itm": "0.2", "premium_multiplier": "1.2",
                                                           "short_itm": "0.4", "short_otm": "0.25",
                                                           "short_put_cap": "0.5"},
                                                   "mmf": {"long_itm": "0.1", "premium_multiplier": "1",
                                                           "short_itm": "0.2", "short_otm": "0.125",
                                                           "short_put_cap": "0.25"}}})
    return row
