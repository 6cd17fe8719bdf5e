"""Console clients: request/reply round trips over a WebSocket, against our
console or the Node `ws` echo server, measured the same way for both.

Two modes, each its own process, one JSON object per line on stdout:

    python -m bench.console_client rtt --url ws://127.0.0.1:8000/console --token T --messages 2000
    python -m bench.console_client load --url ws://127.0.0.1:8000/console --token T --connections 25

`rtt`: one connection with websocket-client (the library the tests and ws_check
use), requests sent one after another (console_rtt.py).

`load`: `--connections` WebSocket connections in one asyncio process (uvloop
when installed) on raw sockets, speaking ws_frames.py's framing, each keeping
`--window` requests in flight (1:
each console sends its next request when the reply to the previous one
arrived). A reply whose frame arrives inside the measured window counts, with
its round trip (perf_counter from just before the send to the arrival of the
bytes) in a histogram of 10 us steps below 100 ms. Talks to the orchestrator
like load_client.py:

    stdout  {"type": "connected", ...}   all connections greeted (or gave up)
    stdin   {"cmd": "measure", "start": t0, "end": t1, "grace": g}
    stdout  {"type": "result", ...}      after t1 (+ up to g for replies in flight)

`--expect ok` (our console): the first frame must be the `welcome` push and
every reply `{"id", "ok": true, ...}`; `--expect echo` (the Node echo server):
every frame must be the request itself. Anything else counts as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from urllib.parse import urlsplit

from . import ws_frames
from .client_process import LOOP, LoopLag, cpu_seconds, emit, measure_window, run_loop
from .console_rtt import request, rtt
from .histogram import Buckets

# Round trips: 10 us steps below 100 ms (a command takes well under a millisecond).
RTT = Buckets(10.0)


HEAD, OPEN, CLOSED = "head", "open", "closed"


class Stats:
    def __init__(self) -> None:
        self.connected = 0
        self.greeted = 0
        self.errors: dict[str, int] = {}
        self.disconnects = 0
        self.window: tuple[float, float] | None = None
        self.replies = 0  # arrived inside the window
        self.replies_total = 0
        self.sent_total = 0
        self.pushes = 0
        self.hist: dict[int, int] = {}
        self.running = True  # send new requests

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Console(asyncio.Protocol):
    def __init__(self, stats: Stats, handshake: bytes, accept: str, args) -> None:
        self.stats = stats
        self.handshake = handshake
        self.accept = accept
        self.window = args.window
        self.line = args.line
        self.expect_welcome = args.expect == "ok"
        self.echo = args.expect == "echo"
        self.state = HEAD
        self.transport = None
        self.head = b""  # the response head, until its blank line
        self.reader = ws_frames.Reader()
        self.outstanding: dict[int, float] = {}
        self.next_id = 1
        self.ready = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.handshake)

    def connection_lost(self, exc) -> None:
        if self.state != CLOSED:
            self.state = CLOSED
            if self.stats.running:
                self.stats.disconnects += 1

    def send_request(self) -> None:
        n = self.next_id
        self.next_id += 1
        data = ws_frames.frame(ws_frames.TEXT, request(n, self.line).encode())
        self.outstanding[n] = time.perf_counter()
        self.transport.write(data)
        self.stats.sent_total += 1

    def start(self) -> None:
        self.ready = True
        self.stats.greeted += 1
        for _ in range(self.window):
            self.send_request()

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        if self.state == HEAD:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end].decode("latin-1"), self.head[end + 4:]
            self.head = b""
            refused = ws_frames.refused(head, self.accept)
            if refused:
                self.stats.error(f"handshake: {refused}")
                self._close()
                return
            self.state = OPEN
            self.stats.connected += 1
            if not self.expect_welcome:
                self.start()
        elif self.state == CLOSED:
            return
        try:
            frames = self.reader.feed(data)
        except ws_frames.ProtocolError as exc:
            self.stats.error(str(exc))
            self._close()
            return
        for opcode, payload in frames:
            if opcode == ws_frames.TEXT or opcode == ws_frames.BINARY:
                self._message(payload, arrived)
            elif opcode == ws_frames.PING:
                self.transport.write(ws_frames.frame(ws_frames.PONG, payload))
            elif opcode == ws_frames.CLOSE:
                if self.stats.running:
                    code, reason = ws_frames.close_reason(payload)
                    self.stats.error(f"closed by the server: {code} {reason}")
                self._close()
                return

    def _message(self, payload: bytes, arrived: float) -> None:
        stats = self.stats
        try:
            msg = json.loads(payload)
        except ValueError:
            stats.error("frame is not JSON")
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        if rid is None:
            if isinstance(msg, dict) and "type" in msg:
                if not self.ready and msg["type"] == "welcome":
                    self.start()
                else:
                    stats.pushes += 1
                return
            stats.error("frame without id or type")
            return
        sent = self.outstanding.pop(rid, None)
        if sent is None:
            stats.error("reply to no outstanding request")
            return
        if self.echo:
            if msg != {"id": rid, "line": self.line}:
                stats.error("echo differs")
        elif msg.get("ok") is not True:
            stats.error(f"error reply: {(msg.get('error') or {}).get('code', '?')}")
        stats.replies_total += 1
        w = stats.window
        if w is not None and w[0] <= time.time() <= w[1]:
            stats.replies += 1
            b = RTT.index((arrived - sent) * 1000.0)
            stats.hist[b] = stats.hist.get(b, 0) + 1
        if stats.running:
            self.send_request()

    def _close(self) -> None:
        if self.state == OPEN and self.transport is not None:
            try:
                self.transport.write(ws_frames.frame(ws_frames.CLOSE, ws_frames.NORMAL_CLOSURE))
            except Exception:
                pass
        self.state = CLOSED
        if self.transport is not None:
            self.transport.close()


async def connect_all(args, stats: Stats, consoles: list) -> float:
    loop = asyncio.get_running_loop()
    u = urlsplit(args.url)
    host, port = u.hostname, u.port or 80
    path = u.path or "/"
    started = time.monotonic()

    async def one() -> None:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        handshake, accept = ws_frames.handshake(host, port, path, headers)
        console = Console(stats, handshake, accept, args)
        try:
            await asyncio.wait_for(loop.create_connection(lambda: console, host, port), args.connect_timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            stats.error(f"connect: {type(exc).__name__}: {exc}"[:80])
            return
        consoles.append(console)

    await asyncio.gather(*(one() for _ in range(args.connections)))
    deadline = started + args.connect_timeout
    while time.monotonic() < deadline and any(c.state != CLOSED and not c.ready for c in consoles):
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def run_load(args) -> dict:
    loop = asyncio.get_running_loop()
    stats = Stats()
    consoles: list[Console] = []
    connect_seconds = await connect_all(args, stats, consoles)
    emit({"type": "connected", "pid": os.getpid(), "wanted": args.connections,
          "connected": stats.greeted, "errors": stats.errors, "seconds": round(connect_seconds, 3)})
    window = await measure_window(args.seconds, args.warmup, 1.0, args.command_timeout)
    if window is None:
        return {"type": "result", "error": "no measure command"}
    t0, t1, grace = window
    stats.window = (t0, t1)
    lag = LoopLag(loop)
    errors_before = sum(stats.errors.values())
    await asyncio.sleep(max(0.0, t0 - time.time()))
    lag.start()
    cpu0, wall0, replies0 = cpu_seconds(), time.monotonic(), stats.replies_total
    await asyncio.sleep(max(0.0, t1 - time.time()))
    cpu = cpu_seconds() - cpu0
    wall = time.monotonic() - wall0
    replies_in_window = stats.replies_total - replies0
    lag.active = False
    stats.running = False
    # Let the replies in flight arrive (bounded), so the servers see orderly closes.
    end = time.monotonic() + grace
    while time.monotonic() < end and any(c.outstanding and c.state == OPEN for c in consoles):
        await asyncio.sleep(0.01)
    open_at_end = sum(1 for c in consoles if c.state == OPEN)
    for c in consoles:
        c._close()
    await asyncio.sleep(0.05)
    return {
        "type": "result",
        "pid": os.getpid(),
        "wanted": args.connections,
        "connected": stats.greeted,
        "open_at_end": open_at_end,
        "window": [t0, t1],
        "replies": stats.replies,
        "replies_counted": replies_in_window,
        "replies_total": stats.replies_total,
        "sent_total": stats.sent_total,
        "pushes": stats.pushes,
        "errors": sum(stats.errors.values()),
        "errors_in_window": sum(stats.errors.values()) - errors_before,
        "error_kinds": stats.errors,
        "disconnects": stats.disconnects,
        "hist": {str(k): v for k, v in stats.hist.items()},
        "cpu_seconds": round(cpu, 4),
        "cpu_percent": round(100.0 * cpu / wall, 2) if wall > 0 else None,
        "cpu_us_per_reply": round(cpu / replies_in_window * 1e6, 1) if replies_in_window else None,
        "loop_lag": lag.summary(),
        "connect_seconds": round(connect_seconds, 3),
        "loop": LOOP[0],
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("rtt", "load"):
        s = sub.add_parser(mode)
        s.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/console (or the echo server's /)")
        s.add_argument("--token", default=os.environ.get("OPERATOR_TOKEN"),
                       help="bearer token (default $OPERATOR_TOKEN); none for the echo server")
        s.add_argument("--line", default="status", help="the command line sent (default status)")
        s.add_argument("--expect", choices=("ok", "echo"), default="ok",
                       help="ok: our console (welcome first, ok replies); echo: the echo server")
    r = sub.choices["rtt"]
    r.add_argument("--messages", type=int, default=2000)
    r.add_argument("--warmup", type=int, default=200)
    ld = sub.choices["load"]
    ld.add_argument("--connections", type=int, default=50)
    ld.add_argument("--window", type=int, default=1, help="requests in flight per connection")
    ld.add_argument("--connect-timeout", type=float, default=30.0)
    ld.add_argument("--command-timeout", type=float, default=900.0)
    ld.add_argument("--seconds", type=float, default=0.0,
                    help="by hand: measure this long after --warmup seconds, without the orchestrator")
    ld.add_argument("--warmup", type=float, default=1.0)
    ld.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = p.parse_args(argv)
    if args.mode == "rtt":
        emit(rtt(args.url, args.token, max(1, args.messages), max(0, args.warmup), args.line, args.expect))
        return 0
    if args.connections < 1 or args.window < 1:
        p.error("--connections and --window must be >= 1")
    result = run_loop(run_load(args), args.loop)
    if args.seconds and "hist" in result:
        hist = {int(k): v for k, v in result["hist"].items()}
        t0, t1 = result["window"]
        print(f"{result['replies'] / (t1 - t0):.0f} replies/s, p50 {RTT.percentile(hist, 50)} ms, "
              f"p99 {RTT.percentile(hist, 99)} ms, client CPU {result['cpu_percent']}%, "
              f"errors {result['error_kinds']}", file=sys.stderr)
    emit(result)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
