"""Run-time configuration of the simulator and its command line."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Sequence


EXCHANGES = ("lighter", "paradex")

# Settings whose default depends on the exchange simulated: (Lighter's, Paradex's).
# SimConfig() holds Lighter's; parse_args fills in Paradex's unless the flag was given.
EXCHANGE_DEFAULTS: dict[str, tuple] = {
    "spot": (0, 1),  # Paradex: one SPOT row beside the PERPs, so asset_kind filtering matters
    "rest_limit": (0, 1500),  # Paradex: 1500 public requests a minute per IP
    "max_connections": (255, 0),  # Paradex documents no cap on open connections (0 = none)
    "max_new_connections": (255, 600),  # Paradex: 600 new connections a minute per IP
    "max_new_connections_per_second": (0, 20),  # Paradex: and 20 a second
    "ping_interval": (60.0, 55.0),  # Paradex: a WebSocket protocol ping every 55 s
    "pong_timeout": (20.0, 5.0),  # Paradex: pong within 5 s or the connection is closed
}


@dataclass
class SimConfig:
    exchange: str = "lighter"  # "lighter" or "paradex" (tools/lighter_sim/paradex/)
    host: str = "127.0.0.1"
    port: int = 0  # 0 = pick a free port; the chosen one is logged ("[Sim] listening on ...")
    markets: int = 3  # perp markets, ids 0..N-1
    spot: int = 0  # spot markets, ids 2048..
    wide_ids: bool = False  # add markets 4095 (perp), 50000 (spot), 70000 (perp, above 16 bits)
    hostile_symbol: bool = False  # add a perp whose symbol is an HTML/JS payload
    inactive: int = 0  # add K perps with status "inactive" and an empty book
    rate: float = 2.0  # book updates per second per subscribed market
    seed: int = 1
    levels: int = 20  # target levels per side
    snapshot_depth: int = 0  # 0 = whole book in the snapshot, N = top N levels per side
    snapshot_delay: float = 0.002  # seconds per queued snapshot: makes "in flight" real
    tick: float = 0.02  # ticker period (s); updates are produced in batches per tick
    ping_interval: float = 60.0  # server {"type":"ping"} period (s); 0 disables
    pong_timeout: float = 20.0  # close 1008 "no pong" if no pong within this (s)
    # Lighter's limits (reference README): counted per client IP unless limits_per="connection"
    limits_per: str = "ip"  # "ip" (Lighter) or "connection" (messages and in-flight per socket)
    msg_limit: int = 200  # client messages per rolling window, pongs included (30009 above)
    msg_window: float = 60.0
    limit_close_after: int = 5  # 30009 breaches within the window before closing 1008
    max_subs: int = 500  # per connection, always (23001 above)
    max_inflight: int = 50  # subscribes not yet answered with a snapshot (30010 above)
    max_connections: int = 255  # open connections per IP (23003 above)
    max_new_connections: int = 255  # connection attempts per IP per rolling conn_window (23003)
    conn_window: float = 60.0
    max_new_connections_per_second: int = 0  # connection attempts per IP per second (0 = none)
    rest_limit: int = 0  # REST requests per rolling minute before 429 (0 = no limit)
    unsubscribe_ack: bool = False  # send {"type":"unsubscribed/order_book"} on unsubscribe
    record_limit: int = 200_000  # record entries kept per connection
    record_frames: bool = False  # keep each book frame's text in the record (memory: ~0.4 kB/entry)
    keep_closed: int = 100  # closed connections kept in /_sim/state and the record
    max_queue: int = 200_000  # queued outbound frames before closing 1011 (slow consumer)
    ws_compress: bool = False  # permessage-deflate (off: CPU goes to throughput)
    quiet: bool = False  # no per-subscription log lines
    # Paradex mode only
    options: int = 2  # PERP_OPTION markets listed beside the PERPs
    heartbeat_interval: float = 20.0  # HeartbeatEvent after this long with nothing sent (0 = never)
    empty_deltas: float = 0.3  # share of book updates that are empty DELTAs (seq advances, no level)
    sbe_versions: str = "1"  # schema versions accepted in ?sbeSchemaVersion= (comma-separated)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lighter_sim",
                                description="Local simulator of Lighter's public market-data API.")
    d = SimConfig()
    p.add_argument("--exchange", choices=EXCHANGES, default=d.exchange,
                   help="which exchange's API to simulate (paradex: REST /v1, SBE WebSocket /v1)")
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port)
    p.add_argument("--markets", type=int, default=d.markets, help="perp markets (ids from 0)")
    p.add_argument("--spot", type=int, default=None,
                   help="spot markets (Lighter: ids from 2048, default 0; Paradex: default 1)")
    p.add_argument("--wide-ids", action="store_true", help="add markets 4095, 50000 and 70000")
    p.add_argument("--hostile-symbol", action="store_true",
                   help="add a perp named <img src=x onerror=alert(1)>")
    p.add_argument("--inactive", type=int, default=d.inactive,
                   help="add K perps with status 'inactive' and an empty book")
    p.add_argument("--rate", type=float, default=d.rate, help="updates/s per subscribed market")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--levels", type=int, default=d.levels, help="target levels per side")
    p.add_argument("--snapshot-depth", type=int, default=d.snapshot_depth,
                   help="levels per side in a snapshot (0 = all)")
    p.add_argument("--snapshot-delay", type=float, default=d.snapshot_delay)
    p.add_argument("--tick", type=float, default=d.tick)
    p.add_argument("--ping-interval", type=float, default=None,
                   help="server ping period in s (Lighter: JSON ping, 60; Paradex: protocol ping, 55)")
    p.add_argument("--pong-timeout", type=float, default=None,
                   help="close when no pong within this (Lighter 20 s, Paradex 5 s)")
    p.add_argument("--limits-per", choices=("ip", "connection"), default=d.limits_per,
                   help="count the message and in-flight limits per client IP (Lighter) "
                        "or per connection")
    p.add_argument("--msg-limit", "--max-messages-per-minute", dest="msg_limit", type=int,
                   default=d.msg_limit, help="client messages per --msg-window (30009 above)")
    p.add_argument("--msg-window", type=float, default=d.msg_window)
    p.add_argument("--limit-close-after", type=int, default=d.limit_close_after)
    p.add_argument("--max-subs", "--max-subscriptions", dest="max_subs", type=int,
                   default=d.max_subs, help="subscriptions per connection (23001 above)")
    p.add_argument("--max-inflight", type=int, default=d.max_inflight,
                   help="subscribes awaiting their snapshot (30010 above)")
    p.add_argument("--max-connections", type=int, default=None,
                   help="open connections per IP (Lighter: 255, 23003 above; Paradex: 0 = no cap)")
    p.add_argument("--max-new-connections", type=int, default=None,
                   help="connection attempts per IP per --conn-window (Lighter 255, Paradex 600)")
    p.add_argument("--max-new-connections-per-second", type=int, default=None,
                   help="connection attempts per IP per second (Lighter: 0 = none, Paradex 20)")
    p.add_argument("--conn-window", type=float, default=d.conn_window)
    p.add_argument("--rest-limit", type=int, default=None,
                   help="REST requests per rolling minute (Lighter: 0 = none, all clients together; "
                        "Paradex: 1500 per IP)")
    p.add_argument("--unsubscribe-ack", action="store_true")
    p.add_argument("--record-limit", type=int, default=d.record_limit)
    p.add_argument("--record-frames", action="store_true",
                   help="keep each book frame's JSON text in /_sim/record (field `frame`)")
    p.add_argument("--keep-closed", type=int, default=d.keep_closed)
    p.add_argument("--max-queue", type=int, default=d.max_queue)
    p.add_argument("--ws-compress", action="store_true")
    p.add_argument("--quiet", action="store_true")
    px = p.add_argument_group("Paradex mode (--exchange paradex)")
    px.add_argument("--options", type=int, default=d.options, help="PERP_OPTION markets (default 2)")
    px.add_argument("--heartbeat-interval", type=float, default=d.heartbeat_interval,
                    help="HeartbeatEvent after this many seconds with nothing sent (0 = never)")
    px.add_argument("--empty-deltas", type=float, default=d.empty_deltas,
                    help="share of book updates sent as empty DELTAs (default 0.3)")
    px.add_argument("--sbe-versions", default=d.sbe_versions,
                    help="schema versions accepted on the upgrade, comma-separated (default 1)")
    return p


def parse_args(argv: Sequence[str] | None = None) -> SimConfig:
    ns = build_parser().parse_args(argv)
    values = vars(ns)
    which = EXCHANGES.index(ns.exchange)
    for name, defaults in EXCHANGE_DEFAULTS.items():
        if values.get(name) is None:
            values[name] = defaults[which]
    cfg = SimConfig(**values)
    paradex = cfg.exchange == "paradex"
    if not 1 <= cfg.markets <= 2000:
        raise SystemExit("--markets must be 1..2000 (spot ids start at 2048)")
    if not 0 <= cfg.spot <= 1000:
        raise SystemExit("--spot must be 0..1000")
    if cfg.levels < 4:
        raise SystemExit("--levels must be at least 4")
    if min(cfg.msg_limit, cfg.max_subs, cfg.max_inflight, cfg.max_new_connections) < 1 \
            or cfg.max_connections < (0 if paradex else 1) or cfg.max_new_connections_per_second < 0 \
            or min(cfg.msg_window, cfg.conn_window) <= 0:
        raise SystemExit("limits must be at least 1 and windows above 0")
    if paradex:
        if cfg.wide_ids or cfg.inactive:
            raise SystemExit("--wide-ids and --inactive are Lighter-only")
        if not 0 <= cfg.options <= 200:
            raise SystemExit("--options must be 0..200")
        if not 0.0 <= cfg.empty_deltas < 1.0:
            raise SystemExit("--empty-deltas must be in [0, 1)")
        try:
            versions = [int(v) for v in cfg.sbe_versions.split(",")]
        except ValueError:
            raise SystemExit("--sbe-versions: comma-separated integers") from None
        if not versions or min(versions) < 0 or max(versions) > 65535:
            raise SystemExit("--sbe-versions: versions are 0..65535")
    return cfg
