"""POST /_sim/<action>: fault injection and live settings.

Each action takes the JSON body as a dict. Unless `conn` is given it applies to every
open connection. It returns a dict that is merged into {"ok": true, "action": ...}.
Bad parameters raise ValueError, KeyError or TypeError, which become HTTP 400.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from .connection import Connection
from .faults import RefuseRule
from .market import MarketSim

if TYPE_CHECKING:
    from .engine import Simulator


class UnknownAction(LookupError):
    pass


def run(sim: "Simulator", action: str, params: dict) -> dict[str, Any]:
    fn = ACTIONS.get(action) or sim.extra_actions.get(action)
    if fn is None:
        raise UnknownAction(action)
    out = fn(sim, params)
    sim.log(f"control {action} {json.dumps(params, sort_keys=True)} -> {json.dumps(out)}")
    return {"ok": True, "action": action, **out}


def _targets(sim: "Simulator", p: dict) -> list[Connection]:
    cid = p.get("conn")
    if cid is None:
        return list(sim.conns.values())
    conn = sim.conns.get(int(cid))
    return [conn] if conn else []


def _market(sim: "Simulator", p: dict) -> Optional[int]:
    """market_id (or `market`, a symbol) from the body: None for "all" or absent."""
    v = p.get("market_id", p.get("market", "all"))
    if v in ("all", None):
        return None
    return sim.market_ref(v)


def close(sim: "Simulator", p: dict) -> dict:
    code = int(p.get("code", 1000))
    if not (1000 <= code <= 4999) or code in (1004, 1005, 1015):  # not sendable in a frame
        raise ValueError("code must be 1000-4999 (1006 = drop TCP, no close frame)")
    reason = str(p.get("reason", ""))
    if len(reason.encode()) > 123:  # the most a close frame can carry
        raise ValueError("reason longer than 123 bytes")
    targets = _targets(sim, p)
    for conn in targets:
        sim.faults.counts["close"] += 1
        sim.request_close(conn, code, reason)
    return {"affected": len(targets)}


def gap(sim: "Simulator", p: dict) -> dict:
    """Lighter: each matching subscription swallows its next update. Paradex: the same
    (mode "drop"), or the market's seq skips a number for every subscriber (mode "skip")."""
    return {"affected": sim.arm_gap(_targets(sim, p), _market(sim, p), p)}


def malformed(sim: "Simulator", p: dict) -> dict:
    kinds = sim.malformed_kinds
    kind = p.get("kind", kinds[0])
    if kind not in kinds:
        raise ValueError(f"kind must be one of {kinds}")
    count = int(p.get("count", 1))
    mid = _market(sim, p)
    n = 0
    for conn in _targets(sim, p):
        target = mid if mid is not None else (min(conn.subs) if conn.subs else None)
        if target is None:
            continue
        m = sim.markets[target]
        for i in range(count):
            sim.send_malformed(conn, kind, m, i)
            sim.faults.counts[f"malformed_{kind}"] += 1
            n += 1
    return {"affected": n}


def stall(sim: "Simulator", p: dict) -> dict:
    until = asyncio.get_running_loop().time() + float(p.get("seconds", 5))
    targets = _targets(sim, p)
    for conn in targets:
        conn.stalled_until = until
        sim.faults.counts["stall"] += 1
    return {"affected": len(targets)}


def refuse_subscriptions(sim: "Simulator", p: dict) -> dict:
    count, seconds = p.get("count"), p.get("seconds")
    if count is None and seconds is None:
        count = 1
    until = time.monotonic() + float(seconds) if seconds is not None else None
    sim.faults.refuse.append(RefuseRule(None if count is None else int(count), until,
                                        None if p.get("conn") is None else int(p["conn"])))
    return {"affected": 1}


def rest_fail(sim: "Simulator", p: dict) -> dict:
    status = int(p.get("status", 500))
    if status not in (429, 500, 502, 503):
        raise ValueError("status must be 429, 500, 502 or 503")
    sim.faults.rest_fail_status = status
    sim.faults.rest_fail_remaining = int(p.get("count", 1))
    return {"affected": sim.faults.rest_fail_remaining}


def rest_delay(sim: "Simulator", p: dict) -> dict:
    sim.faults.rest_delay_seconds = float(p.get("seconds", 1))
    sim.faults.rest_delay_remaining = int(p.get("count", 1))
    return {"affected": sim.faults.rest_delay_remaining}


def reset(sim: "Simulator", p: dict) -> dict:
    sim.faults.reset()
    sim.errors_sent.clear()
    for conn in sim.conns.values():
        conn.stalled_until = 0.0
        for sub in conn.subs.values():
            sub.drop_next = False
    sim.reset_faults()
    return {"affected": len(sim.conns)}


def rate(sim: "Simulator", p: dict) -> dict:
    value = float(p["rate"])
    if value < 0:
        raise ValueError("rate must be >= 0")
    sim.rate = value
    return {"rate": value}


def step(sim: "Simulator", p: dict) -> dict:
    """Produce n updates now, whatever the rate: step-exact tests run at rate 0."""
    mid = _market(sim, p)
    n = int(p.get("n", 1))
    empty = p.get("empty")
    if empty is not None and (sim.exchange != "paradex" or not isinstance(empty, bool)):
        raise ValueError("empty (true or false) is for Paradex only")
    ms: list[MarketSim] = ([sim.markets[mid]] if mid is not None
                           else sorted(sim.live, key=lambda m: m.market_id))
    for m in ms:
        if m.spec.status != "active":
            raise ValueError(f"market {m.market_id} is not active")
    ts_ms, now_us = sim.stamps()
    for m in ms:
        for _ in range(n):
            sim.emit_update(m, ts_ms, now_us, empty=empty)
    sim.close_overflowed()
    return {"affected": len(ms) * n}


def set_status(sim: "Simulator", p: dict) -> dict:
    """Change a market's REST status live (a book that streams keeps streaming)."""
    mid = _market(sim, p)
    if mid is None:
        raise ValueError("market_id required")
    sim.markets[mid].spec.status = str(p["status"])
    return {"affected": 1}


def record_frames(sim: "Simulator", p: dict) -> dict:
    """Keep (or stop keeping) each book frame's text in the record, on open and new connections."""
    on = p.get("on", True)
    if not isinstance(on, bool):
        raise ValueError("on must be true or false")
    sim.cfg.record_frames = on
    for conn in sim.conns.values():
        conn.record_frames = on
    return {"affected": len(sim.conns), "on": on}


ACTIONS: dict[str, Callable[["Simulator", dict], dict]] = {
    f.__name__: f for f in (close, gap, malformed, stall, refuse_subscriptions, rest_fail,
                            rest_delay, reset, rate, step, set_status, record_frames)}
