"""Throughput check: python -m lighter_sim.bench --markets 600 --rate 10 --conns 3 --seconds 5

Starts a simulator subprocess, subscribes every market (spread over --conns
connections), counts the frames received for --seconds and reports msgs/s and the
simulator's CPU use. The receiving side runs in this process (aiohttp).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

import aiohttp

from .testing import SimulatorProcess


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _client(url: str, ids: list[int], counts: list[int], stop: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url, max_msg_size=0) as ws:
            for mid in ids:
                await ws.send_str(json.dumps({"type": "subscribe", "channel": f"order_book/{mid}"}))
            while not stop.is_set():
                try:
                    msg = await asyncio.wait_for(ws.receive(), 0.5)
                except asyncio.TimeoutError:
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if '"update/order_book"' in msg.data:
                    counts[0] += 1


async def _run(args: argparse.Namespace) -> None:
    extra = ["--quiet", "--msg-limit", "100000", "--max-inflight", "100000",
             "--snapshot-delay", "0", "--max-subs", "100000"]
    with SimulatorProcess(markets=args.markets, rate=args.rate, seed=1, extra_args=extra) as sim:
        ids = list(range(args.markets))
        counts = [0]
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(_client(sim.ws_url, ids[i::args.conns], counts, stop))
                 for i in range(args.conns)]
        await asyncio.sleep(1.0)  # subscriptions settle
        c0, cpu0, t0 = counts[0], _cpu_seconds(sim.proc.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        c1, cpu1, t1 = counts[0], _cpu_seconds(sim.proc.pid), time.monotonic()
        dropped = [c["close_reason"] for c in sim.state()["connections"] if not c["open"]]
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        rate = (c1 - c0) / (t1 - t0)
        print(f"markets={args.markets} rate/market={args.rate} conns={args.conns}: "
              f"received {rate:,.0f} updates/s (asked {args.markets * args.rate:,.0f}), "
              f"simulator CPU {100 * (cpu1 - cpu0) / (t1 - t0):.0f}%"
              + (f"; server closed {len(dropped)} connection(s): {dropped}" if dropped else ""))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--markets", type=int, default=200)
    p.add_argument("--rate", type=float, default=10)
    p.add_argument("--conns", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5)
    asyncio.run(_run(p.parse_args()))


if __name__ == "__main__":
    main()
