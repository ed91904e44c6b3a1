"""Serve a pre-generated stream (bench.stream) as Lighter's API, or Paradex's, as cheaply as possible.

    python -m bench sender --markets 200 --deltas 2500000 --seed 1 [--port P] [--rate 5000]
    python -m bench sender --exchange paradex ...     the same book changes as Paradex SBE

Runs in its own process (the runner talks to it over HTTP). One asyncio server, no
framework, so that sending costs little: every frame is kept pre-framed as a
WebSocket text frame (server frames are unmasked and the 13-digit timestamp keeps
the length fixed), and a batch of frames is one ``transport.write`` of
``head + timestamp + tail`` pieces, with one clock read per batch.

Routes (Lighter, the default)
  GET  /api/v1/orderBooks     Lighter's market list for the stream's markets
  GET  /stream                WebSocket: `connected`, then a snapshot per subscribe,
                              then the deltas of the subscribed markets
Routes (--exchange paradex: the stream's frames re-encoded once as SBE BookEvents by
tests/paradex_frames.py, see bench.stream.sbe_frames, and sent as binary frames)
  GET  /v1/markets            Paradex's market list (`{"results": [...]}`, every market a PERP
                              named `<Lighter symbol>-USD-PERP`)
  GET  /v1?...                WebSocket: JSON-RPC `subscribe` of `order_book.<SYMBOL>.deltas`
                              answered by a `result`, then the market's SNAPSHOT, then its
                              DELTAs (seq = previous + 1)
Both
  GET  /_bench/stats          counters (frames written, per connection, mode, ...)
  POST /_bench/mode?rate=R    R deltas/s per connection; rate=0: flat out (drain-bound);
                              rate=pause: send nothing

Each connection walks the stream's global `order` on its own; a delta of a market the
connection has not subscribed is skipped, and a market's chain restarts from its
snapshot at every (re)subscription, so each market's nonce chain is always intact.
Flat out means: write a batch, ``await drain()`` (the transport's high-water mark is
64 KiB), so the sender goes exactly as fast as the reader (workerd) takes frames.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import socket
import sys
import time
from urllib.parse import parse_qs, urlsplit

from .stream import SNAPSHOT_TAIL, UPDATE_TAIL, Stream, generate, paradex_markets_json, sbe_frames

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HIGH_WATER = 64 * 1024
SNDBUF = 128 * 1024
FLAT_BATCH = 64  # frames per write when flat out
RATE_TICK = 0.005  # s between writes at a fixed rate


def ws_header(payload_len: int, opcode: int = 0x1) -> bytes:
    first = bytes((0x80 | opcode,))
    if payload_len < 126:
        return first + bytes((payload_len,))
    if payload_len < 1 << 16:
        return first + b"\x7e" + payload_len.to_bytes(2, "big")
    return first + b"\x7f" + payload_len.to_bytes(8, "big")


def ws_text(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return ws_header(len(data)) + data


class Sender:
    """Lighter. A frame on the wire is ``heads[k][i] + stamp() + tails[k][i]``, the head
    starting with its WebSocket header (snapshots: ``snapshots[k]`` = (head, tail))."""

    ws_path = "/stream"

    def __init__(self, stream: Stream, rate: float | None, sndbuf: int = SNDBUF,
                 high_water: int = HIGH_WATER) -> None:
        self.stream = stream
        self.sndbuf = sndbuf
        self.high_water = high_water
        self.prepare(stream)
        self.rate: float | None = rate  # None: paused; 0: flat out
        self.mode_changed = asyncio.Event()
        self.conns: dict[int, Conn] = {}
        self.closed_conns: list[dict] = []
        self.next_conn = 1
        self.rest_requests = 0
        self.started = time.time()

    def prepare(self, stream: Stream) -> None:
        n_ts = len(self.stamp())
        # Pre-frame every delta head: WebSocket header + head (timestamp + tail follow).
        # The chains are replaced in place (the stream's heads are not kept twice).
        n_tail = n_ts + len(UPDATE_TAIL)
        for chain in stream.chains:
            chain[:] = [ws_header(len(h) + n_tail) + h for h in chain]
        self.heads = stream.chains
        self.tails = [[UPDATE_TAIL] * len(chain) for chain in stream.chains]  # one shared object
        s_tail = n_ts + len(SNAPSHOT_TAIL)
        self.snapshots = [(ws_header(len(h) + s_tail) + h, SNAPSHOT_TAIL) for h in stream.snapshots]
        self.ids = {spec.market_id: k for k, spec in enumerate(stream.specs)}
        self.rest = {"/api/v1/orderBooks": json.dumps(stream.order_books_json(), separators=(",", ":")).encode()}

    @staticmethod
    def stamp() -> bytes:
        """Now, as the frames carry it: 13 ASCII digits of ms."""
        return b"%d" % (time.time() * 1000)

    def new_conn(self, number: int, reader, writer) -> Conn:
        return Conn(self, number, reader, writer)

    def set_rate(self, rate: float | None) -> None:
        self.rate = rate
        for conn in self.conns.values():
            conn.rate_t0 = time.monotonic()
            conn.rate_sent = 0
        self.mode_changed.set()
        self.mode_changed = asyncio.Event()

    def stats(self) -> dict:
        conns = [c.stats() for c in self.conns.values()]
        every = conns + self.closed_conns
        return {
            "mode": "pause" if self.rate is None else ("flat" if self.rate == 0 else "rate"),
            "rate": self.rate,
            "markets": self.stream.markets,
            "deltas_generated": self.stream.deltas,
            "open_connections": len(conns),
            "connections": every,
            "frames_sent": sum(c["frames_sent"] for c in every),
            "deltas_sent": sum(c["deltas_sent"] for c in every),
            "snapshots_sent": sum(c["snapshots_sent"] for c in every),
            "bytes_sent": sum(c["bytes_sent"] for c in every),
            "exhausted": any(c["exhausted"] for c in conns),
            "rest_requests": self.rest_requests,
            "cpu_seconds": sum(os.times()[:2]),
            "time": time.time(),
        }

    # -- HTTP ------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _ = lines[0].split(" ", 2)
        except ValueError:
            writer.close()
            return
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == self.ws_path and headers.get("upgrade", "").lower() == "websocket":
            await self.websocket(reader, writer, headers)
            return
        length = int(headers.get("content-length", "0") or 0)
        if length:
            await reader.readexactly(length)
        if url.path in self.rest:
            self.rest_requests += 1
            status, body = 200, self.rest[url.path]
        elif url.path == "/_bench/stats":
            status, body = 200, json.dumps(self.stats()).encode()
        elif url.path == "/_bench/mode" and method == "POST":
            raw = query.get("rate", "pause")
            self.set_rate(None if raw == "pause" else float(raw))
            status, body = 200, json.dumps({"ok": True, "rate": self.rate}).encode()
        else:
            status, body = 404, b'{"code":404,"message":"not found"}'
        writer.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, b"OK" if status == 200 else b"Not Found", len(body))
            + body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def websocket(self, reader, writer, headers: dict) -> None:
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        writer.transport.set_write_buffer_limits(high=self.high_water)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # A small kernel send buffer too: what the tracker has not read yet waits
            # here, not in megabytes of loopback buffers (keeps "flat out" honest and
            # the frames' timestamps close to when they are read).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        conn = self.new_conn(self.next_conn, reader, writer)
        self.next_conn += 1
        self.conns[conn.number] = conn
        try:
            await conn.run()
        finally:
            del self.conns[conn.number]
            self.closed_conns.append(conn.stats())
            writer.close()


class Conn:
    """One tracker connection: its subscriptions, cursors and position in the stream."""

    def __init__(self, sender: Sender, number: int, reader, writer) -> None:
        self.sender = sender
        self.number = number
        self.reader = reader
        self.writer = writer
        markets = sender.stream.markets
        self.subscribed = bytearray(markets)
        self.cursor = [0] * markets
        self.position = 0  # in the stream's global order
        self.frames_sent = self.deltas_sent = self.snapshots_sent = self.bytes_sent = 0
        self.client_messages = 0
        self.exhausted = False
        self.closed = False
        self.rate_t0 = time.monotonic()
        self.rate_sent = 0
        self.opened = time.time()
        self.first_delta_at: float | None = None

    def stats(self) -> dict:
        return {
            "conn": self.number, "open": not self.closed, "subscribed": sum(self.subscribed),
            "frames_sent": self.frames_sent, "deltas_sent": self.deltas_sent,
            "snapshots_sent": self.snapshots_sent, "bytes_sent": self.bytes_sent,
            "client_messages": self.client_messages, "position": self.position,
            "exhausted": self.exhausted, "opened": self.opened, "first_delta_at": self.first_delta_at,
        }

    def write(self, data: bytes, frames: int) -> None:
        self.writer.write(data)
        self.frames_sent += frames
        self.bytes_sent += len(data)

    def greeting(self) -> bytes | None:
        return ws_text('{"session_id":"bench-%d","type":"connected"}' % self.number)

    async def run(self) -> None:
        greeting = self.greeting()
        if greeting:
            self.write(greeting, 1)
        pump = asyncio.ensure_future(self.pump())
        try:
            await self.read_loop()
        finally:
            self.closed = True
            pump.cancel()
            try:
                await pump
            except (asyncio.CancelledError, ConnectionError):
                pass

    async def read_loop(self) -> None:
        reader = self.reader
        while True:
            try:
                b0, b1 = await reader.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(await reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await reader.readexactly(8), "big")
                mask = await reader.readexactly(4) if b1 & 0x80 else None
                payload = await reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x8:  # close: answer it, done
                try:
                    self.writer.write(ws_header(len(payload[:2]), 0x8) + payload[:2])
                except ConnectionError:
                    pass
                return
            if opcode == 0x9:  # ping
                self.writer.write(ws_header(len(payload), 0xA) + payload)
                continue
            if opcode == 0x1:
                self.client_messages += 1
                self.on_message(payload)

    def on_message(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
            kind = msg.get("type")
        except (ValueError, AttributeError):
            return
        if kind == "ping":
            self.write(ws_text('{"type":"pong"}'), 1)
            return
        channel = msg.get("channel", "")
        if kind not in ("subscribe", "unsubscribe") or not channel.startswith("order_book/"):
            return
        k = self.sender.ids.get(int(channel[11:])) if channel[11:].isdigit() else None
        if k is None:
            self.write(ws_text('{"type":"error","code":30012,"channel":"%s","message":"failed to subscribe"}'
                               % channel), 1)
            return
        if kind == "unsubscribe":
            self.subscribed[k] = 0
            return
        self.subscribe(k)

    def subscribe(self, k: int) -> None:
        """Subscribed: the snapshot now, and this market's deltas from the chain's start."""
        self.subscribed[k] = 1
        self.cursor[k] = 0
        head, tail = self.sender.snapshots[k]
        self.write(head + self.sender.stamp() + tail, 1)
        self.snapshots_sent += 1

    def batch(self, want: int) -> int:
        """Write up to `want` deltas of subscribed markets, stamped now; how many."""
        order = self.sender.stream.order
        heads, tails = self.sender.heads, self.sender.tails
        subscribed, cursor = self.subscribed, self.cursor
        pos, end = self.position, len(order)
        ts = self.sender.stamp()
        parts = []
        got = 0
        while got < want and pos < end:
            k = order[pos]
            pos += 1
            if subscribed[k]:
                c = cursor[k]
                cursor[k] = c + 1
                parts += (heads[k][c], ts, tails[k][c])
                got += 1
        self.position = pos
        if pos >= end:
            self.exhausted = True
        if got:
            self.deltas_sent += got
            if self.first_delta_at is None:
                self.first_delta_at = time.time()
            self.write(b"".join(parts), got)
        return got

    async def pump(self) -> None:
        sender = self.sender
        writer = self.writer
        while not self.closed and not self.exhausted:
            rate = sender.rate
            if rate is None or not any(self.subscribed):
                changed = sender.mode_changed
                try:
                    await asyncio.wait_for(changed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
                continue
            if rate == 0:
                self.batch(FLAT_BATCH)
                await writer.drain()
                await asyncio.sleep(0)  # drain() does not yield below the high-water mark
                continue
            due = int((time.monotonic() - self.rate_t0) * rate) - self.rate_sent
            if due > 0:
                self.rate_sent += self.batch(min(due, 5000))
                await writer.drain()
            await asyncio.sleep(RATE_TICK)


class ParadexSender(Sender):
    """Paradex: the stream's frames as SBE BookEvents in binary WebSocket frames; a
    frame is ``head + ts_us (8 bytes LE) + tail`` (the head ends with the SBE header)."""

    ws_path = "/v1"

    def prepare(self, stream: Stream) -> None:
        sbe = sbe_frames(stream)
        stream.chains[:] = [[] for _ in stream.chains]  # the JSON heads are not needed any more

        def frame(split: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
            head, tail = split
            return ws_header(len(head) + 8 + len(tail), 0x2) + head, tail

        self.snapshots = [frame(s) for s in sbe.snapshots]
        self.heads, self.tails = [], []
        for chain in sbe.chains:
            framed = [frame(s) for s in chain]
            self.heads.append([h for h, _ in framed])
            self.tails.append([t for _, t in framed])
        self.ids = {symbol: k for k, symbol in enumerate(sbe.symbols)}
        self.rest = {"/v1/markets": json.dumps(paradex_markets_json(stream), separators=(",", ":")).encode()}

    @staticmethod
    def stamp() -> bytes:
        """Now in µs, as BookEvent's int64 ts (little-endian)."""
        return int(time.time() * 1_000_000).to_bytes(8, "little")

    def new_conn(self, number: int, reader, writer) -> Conn:
        return ParadexConn(self, number, reader, writer)


class ParadexConn(Conn):
    """JSON-RPC subscriptions of `order_book.<SYMBOL>.deltas`; no greeting."""

    def greeting(self) -> bytes | None:
        return None

    def on_message(self, payload: bytes) -> None:
        try:
            msg = json.loads(payload)
            method, rid = msg.get("method"), msg.get("id")
            channel = (msg.get("params") or {}).get("channel", "")
        except (ValueError, AttributeError):
            return
        if method not in ("subscribe", "unsubscribe"):
            return
        parts = channel.split(".")
        k = self.sender.ids.get(parts[1]) if len(parts) == 3 and parts[0] == "order_book" else None
        if k is None or parts[2] not in ("deltas", "interactive_deltas"):
            self.write(ws_text(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32602, "message": "invalid channel", "data": channel}})), 1)
            return
        self.write(ws_text(json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"channel": channel}})), 1)
        if method == "unsubscribe":
            self.subscribed[k] = 0
            return
        self.subscribe(k)


async def serve(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    stream = generate(args.markets, args.deltas, seed=args.seed)
    deltas = stream.deltas
    kind = ParadexSender if args.exchange == "paradex" else Sender
    sender = kind(stream, None if args.rate is None else args.rate, args.sndbuf, args.high_water)
    gen_s = time.perf_counter() - t0
    server = await asyncio.start_server(sender.handle, args.host, args.port, backlog=512)
    port = server.sockets[0].getsockname()[1]
    mb = (sum(len(h) + len(t) for c in zip(sender.heads, sender.tails) for h, t in zip(*c))
          + sum(len(h) + len(t) for h, t in sender.snapshots)) / 1e6
    print(
        f"[bench-sender] listening on http://{args.host}:{port} exchange={args.exchange} markets={stream.markets} "
        f"deltas={deltas} ({mb:.0f} MB) generated in {gen_s:.1f}s pid={os.getpid()}",
        flush=True,
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench sender")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--deltas", type=int, default=500_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exchange", choices=("lighter", "paradex"), default="lighter",
                    help="the protocol served (same markets and book changes either way)")
    ap.add_argument("--rate", type=float, default=None, help="initial deltas/s (0 = flat out; default paused)")
    ap.add_argument("--sndbuf", type=int, default=SNDBUF,
                    help="the kernel send buffer of each WebSocket, bytes: a larger one keeps the tracker's "
                         "socket from ever running dry while the sender waits for the CPU (bench saturation)")
    ap.add_argument("--high-water", type=int, default=HIGH_WATER,
                    help="bytes the sender queues in its own process before waiting for the socket (flat out): "
                         "a deep queue keeps the socket full however rarely the sender gets a CPU (bench saturation)")
    args = ap.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
