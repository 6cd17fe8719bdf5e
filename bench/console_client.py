"""Console clients: request/reply round trips over a WebSocket, against our
console or the Node `ws` echo server, measured the same way for both.

Two modes, each its own process, one JSON object per line on stdout:

    python -m bench.console_client rtt --url ws://127.0.0.1:8000/console --token T --messages 2000
    python -m bench.console_client load --url ws://127.0.0.1:8000/console --token T --connections 25

`rtt`: one connection with websocket-client (the library the tests and ws_check
use), requests sent one after another: send `{"id": n, "line": "status"}`,
then read frames until the one carrying id n (pushes have a `type` and no id
and are skipped). Every frame read is decoded with `json.loads`, from our
server and from the echo server alike. A warm-up of `--warmup` requests runs
first and is not counted.

`load`: `--connections` WebSocket connections in one asyncio process (uvloop
when installed) on raw sockets, each keeping `--window` requests in flight (1:
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
import base64
import hashlib
import json
import math
import os
import statistics
import sys
import time
from urllib.parse import urlsplit

from .histogram import Buckets
from .load_client import LOOP, LoopLag, _cpu, emit, measure_window, run_loop

# Round trips: 10 us steps below 100 ms (a command takes well under a millisecond).
RTT = Buckets(10.0)


def exact_percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, math.ceil(q / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def request(n: int, line: str) -> str:
    return json.dumps({"id": n, "line": line})


# ---- rtt: one websocket-client connection, sequential ---------------------------------


def rtt(url: str, token: str | None, messages: int, warmup: int, line: str = "status",
        expect: str = "ok", timeout: float = 10.0) -> dict:
    import websocket  # websocket-client (requirements-dev.txt)

    header = [f"Authorization: Bearer {token}"] if token else []
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = websocket.create_connection(url, header=header, timeout=timeout,
                                             enable_multithread=False)
            break
        except (OSError, websocket.WebSocketException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    pushes = 0
    if expect == "ok":
        hello = json.loads(ws.recv())
        if hello.get("type") != "welcome":
            raise RuntimeError(f"expected the welcome push first, got {str(hello)[:200]}")
    errors: dict[str, int] = {}

    def one(n: int) -> float:
        nonlocal pushes
        msg = request(n, line)
        t0 = time.perf_counter()
        ws.send(msg)
        while True:
            frame = json.loads(ws.recv())
            if frame.get("id") == n:
                break
            if "type" in frame and "id" not in frame:
                pushes += 1
                continue
            raise RuntimeError(f"reply to another request: {str(frame)[:200]}")
        took = (time.perf_counter() - t0) * 1000.0
        if expect == "ok" and frame.get("ok") is not True:
            code = (frame.get("error") or {}).get("code", "?")
            errors[code] = errors.get(code, 0) + 1
        elif expect == "echo" and frame != {"id": n, "line": line}:
            errors["echo_differs"] = errors.get("echo_differs", 0) + 1
        return took

    for i in range(warmup):
        one(-1 - i)
    cpu0 = _cpu()
    started = time.perf_counter()
    times = [one(i) for i in range(messages)]
    elapsed = time.perf_counter() - started
    cpu = _cpu() - cpu0
    ws.close()
    times.sort()
    return {
        "messages": messages,
        "warmup": warmup,
        "rtt_ms_p50": round(statistics.median(times), 4),
        "rtt_ms_p90": round(exact_percentile(times, 90), 4),
        "rtt_ms_p99": round(exact_percentile(times, 99), 4),
        "rtt_ms_max": round(times[-1], 4),
        "rtt_ms_mean": round(statistics.fmean(times), 4),
        "messages_per_s": round(messages / elapsed),
        "client_cpu_percent": round(100.0 * cpu / elapsed, 1),
        "client_cpu_us_per_request": round(cpu / messages * 1e6, 1),
        "pushes_skipped": pushes,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }


# ---- load: many raw WebSocket connections in one asyncio process ----------------------

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HEAD, OPEN, CLOSED = "head", "open", "closed"


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.2), FIN set."""
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + _mask(payload, key)


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
    def __init__(self, stats: Stats, handshake: bytes, accept: bytes, args) -> None:
        self.stats = stats
        self.handshake = handshake
        self.accept = accept
        self.window = args.window
        self.line = args.line
        self.expect_welcome = args.expect == "ok"
        self.echo = args.expect == "echo"
        self.state = HEAD
        self.transport = None
        self.buf = b""
        self.fragments: list[bytes] = []
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
        data = frame(1, request(n, self.line).encode())
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
        self.buf += data
        if self.state == HEAD:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            status = head.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                self.stats.error(f"handshake: {status[:60]}")
                self._close()
                return
            if f"sec-websocket-accept: {self.accept.decode()}".lower() not in head.lower():
                self.stats.error("handshake: bad Sec-WebSocket-Accept")
                self._close()
                return
            self.state = OPEN
            self.stats.connected += 1
            if not self.expect_welcome:
                self.start()
        self._frames(arrived)

    def _frames(self, arrived: float) -> None:
        buf = self.buf
        pos = 0
        while True:
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if b1 & 0x80:
                self.stats.error("masked frame from the server")
                self._close()
                return
            if len(buf) - pos < head + n:
                break
            payload = buf[pos + head:pos + head + n]
            pos += head + n
            opcode = b0 & 0x0F
            if opcode == 0:  # continuation
                self.fragments.append(payload)
                if b0 & 0x80:
                    payload = b"".join(self.fragments)
                    self.fragments = []
                    self._message(payload, arrived)
            elif opcode in (1, 2):
                if b0 & 0x80:
                    self._message(payload, arrived)
                else:
                    self.fragments = [payload]
            elif opcode == 9:  # ping
                self.transport.write(frame(10, payload))
            elif opcode == 8:  # close
                if self.stats.running:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    self.stats.error(f"closed by the server: {code} {payload[2:62].decode(errors='replace')}")
                self._close()
                return
        self.buf = buf[pos:]

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
                self.transport.write(frame(8, (1000).to_bytes(2, "big")))
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
        key = base64.b64encode(os.urandom(16))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
        if args.token:
            lines.append(f"Authorization: Bearer {args.token}")
        handshake = ("\r\n".join(lines) + "\r\n\r\n").encode()
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
    cpu0, wall0, replies0 = _cpu(), time.monotonic(), stats.replies_total
    await asyncio.sleep(max(0.0, t1 - time.time()))
    cpu = _cpu() - cpu0
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
