"""Soak load: viewers and consoles that come and go at random, for a fixed time.

    python -m bench.soak_client --port 8000 --viewers 300 --consoles 20 --seconds 3600

One asyncio process (uvloop when installed) keeps `--viewers` viewer slots and
`--consoles` console slots busy until `--seconds` have passed. A slot holds
one connection at a time; when it ends, the slot opens the next one after a
short gap (at most half a second, a second for a resume), so the number of
open connections stays close to the number of slots all the time.

Viewers (`GET /events`, raw sockets; the parsing of load_client.Viewer):

- lifetime: 10% leave within a second (some before the response head), the
  rest live log-uniformly between 2 s and `--viewer-max-lifetime` seconds;
- 70% leave with a FIN (the socket closed normally), 30% abruptly with a
  reset (SO_LINGER 0: no FIN, no end of anything);
- 30% of the next connections of a slot resume with `Last-Event-ID` (the last
  id the previous connection saw): their first `metrics` event must carry the
  next `seq` (a skipped one is a gap, a repeated one a duplicate).

Consoles (`/console`, bearer token from $OPERATOR_TOKEN, a minimal RFC 6455
client that answers pings at once):

- lifetime log-uniform between 3 s and `--console-max-lifetime` seconds;
- one request at a time, the next after the reply and a random pause of 0.3 to
  2 s (at most about 3 requests a second, far below CONSOLE_RATE's default of
  20): `status`, `ping`, `top 5`, `ps python`, `help`, `whoami`, `clients`,
  `audit 5`, `alert list`, `hosts`, and about one in 200 a `broadcast`;
- 50% leave with a close handshake (close frame 1000, then wait for the
  server's), 25% close the socket without a close frame (FIN), 25% reset it.

Every reply must be `ok: true`; anything else, a reply that does not come in
10 s, a close the client did not ask for, a stream the server ended, a status
other than 200 or 101, a resync, a gap or a duplicate is counted under
`anomalies` in the result.

Talking to the orchestrator (one JSON object per line):

    stdout  {"type": "started", ...}    every slot started
    stdin   {"cmd": "status"}           -> stdout {"type": "status", ...}
    stdout  {"type": "result", ...}     after --seconds, every connection closed

Closing stdin ends the run early. Every loop is bounded: slots by the end
time and a count of cycles, each connection by its lifetime and the end time,
every wait by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import os
import random
import re
import socket
import struct
import sys
import time

from .console_client import _GUID, frame
from .load_client import HEAD, LOOP, Stats, Viewer, _cpu, auth_header, emit, run_loop

CONNECT_TIMEOUT = 10.0
REPLY_TIMEOUT = 10.0
MIN_CYCLE = 0.05  # every cycle of a slot sleeps at least this long
MAX_FRAMES = 10_000_000  # per console connection (a safety bound, never reached)

# (line, weight): what a console sends. `broadcast` gets a message appended.
COMMANDS = (
    ("status", 30), ("ping", 25), ("top 5", 25), ("ps python", 20), ("help", 20),
    ("whoami", 15), ("clients", 15), ("audit 5", 15), ("alert list", 15), ("hosts", 19),
    ("broadcast", 1),
)

_SEQ = re.compile(rb'"seq":\s*([0-9]+)')
_REASON = re.compile(rb'"reason":\s*"([a-z_]+)"')


def _rst(transport) -> None:
    """Close with a reset: no FIN, unread data and the connection thrown away."""
    sock = transport.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    transport.abort()


def _loguniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo * 1.01))))


class Counts:
    """What happened, by kind; anomalies separately (each one is worth a look)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.anomalies: dict[str, int] = {}

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def anomaly(self, key: str) -> None:
        key = key[:120]
        self.anomalies[key] = self.anomalies.get(key, 0) + 1


# ---- viewers ------------------------------------------------------------------------


class SoakViewer(Viewer):
    """One /events connection: load_client's parsing, with resume and gap checks."""

    def __init__(self, stats: Stats, counts: Counts, request: bytes, last_seq: int | None,
                 last_id: bytes | None) -> None:
        super().__init__(stats, request)
        self.counts = counts
        self.resumed = last_seq is not None
        self.last_seq = last_seq
        self.last_id = last_id
        self.first_metrics = True
        self.leaving = False
        self.done = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc) -> None:
        self.state = 2  # DONE
        if not self.leaving:
            if self.connected:
                self.counts.anomaly("viewer: stream ended by the server"
                                    + ("" if exc is None else f" ({type(exc).__name__})"))
            elif exc is not None:
                self.counts.anomaly(f"viewer: connection lost before the head: {exc}")
        if not self.done.done():
            self.done.set_result(None)

    def _fail(self, why: str) -> None:
        self.counts.anomaly(f"viewer: {why}")
        self.leaving = True  # not the server ending the stream: we close it
        super()._fail(why)

    def _event(self, text, start: int, end: int, now: float) -> None:
        block = bytes(text[start:end])
        etype, has_data = b"message", False
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                has_data = True
            elif line.startswith(b"event:"):
                etype = line[6:].strip()
            elif line.startswith(b"id:"):
                self.last_id = line[3:].strip()
        c = self.counts
        if not has_data:
            c.add("viewer comments")
            return
        c.add("viewer events")
        if etype == b"metrics":
            m = _SEQ.search(block)
            if m is None:
                c.anomaly("viewer: metrics event without seq")
                return
            seq = int(m.group(1))
            if self.last_seq is not None:
                where = "after a resume" if self.first_metrics and self.resumed else "within a stream"
                if seq > self.last_seq + 1:
                    c.anomaly(f"viewer: seq gap {where}")
                    c.add("viewer seqs missed", seq - self.last_seq - 1)
                elif seq <= self.last_seq:
                    c.anomaly(f"viewer: duplicate or old seq {where}")
                elif self.first_metrics and self.resumed:
                    c.add("viewer resumes without a gap")
            self.last_seq = seq
            self.first_metrics = False
        elif etype == b"notice":
            c.add("viewer notices")
        elif etype == b"resync":
            m = _REASON.search(block)
            c.anomaly(f"viewer: resync {m.group(1).decode() if m else '?'}")
        else:
            c.add(f"viewer {etype.decode(errors='replace')[:20]} events")


class Load:
    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.counts = Counts()
        self.vstats = Stats()  # load_client's counters (connected, errors) for the base class
        self.vstats.listening = False  # its own disconnect counting is replaced
        self.started = time.monotonic()
        self.deadline = self.started + args.seconds
        self.stopping = False
        self.viewers_open = 0
        self.consoles_open = 0
        self.reply_ms: list[float] = []  # since the last status
        self.max_cycles = int(args.seconds / MIN_CYCLE) + 10
        self.broadcasts = 0
        self.slowest: dict[str, float] = {}  # verb -> slowest reply (ms)
        self.lines = [line for line, _ in COMMANDS]
        self.weights = [w for _, w in COMMANDS]

    def running(self) -> bool:
        return not self.stopping and time.monotonic() < self.deadline

    def left(self) -> float:
        return 0.0 if self.stopping else max(0.0, self.deadline - time.monotonic())

    async def sleep(self, seconds: float) -> None:
        """Sleep, but not past the end of the run."""
        await asyncio.sleep(max(0.0, min(seconds, self.left())))

    # ---- viewers ----

    def viewer_request(self, last_id: bytes | None) -> bytes:
        a = self.args
        extra = f"Last-Event-ID: {last_id.decode('ascii', 'replace')}\r\n" if last_id else ""
        return (f"GET /events HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\n{auth_header()}{extra}\r\n").encode()

    async def viewer_slot(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        rng, c = self.rng, self.counts
        await asyncio.sleep(rng.uniform(0, min(2.0, self.args.seconds / 4)))  # spread the first connects
        last_id: bytes | None = None
        last_seq: int | None = None
        for _ in range(self.max_cycles):
            if not self.running():
                break
            resume = last_id is not None and rng.random() < 0.3
            v = SoakViewer(self.vstats, c, self.viewer_request(last_id if resume else None),
                           last_seq if resume else None, last_id if resume else None)
            c.add("viewer connections")
            if resume:
                c.add("viewer resumes (Last-Event-ID)")
            try:
                await asyncio.wait_for(loop.create_connection(lambda: v, self.args.host, self.args.port),
                                       CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                c.anomaly(f"viewer: connect failed: {type(exc).__name__}: {exc}"[:120])
                await self.sleep(1.0)
                continue
            if rng.random() < 0.1:
                lifetime = rng.uniform(0.0, 1.0)
            else:
                lifetime = _loguniform(rng, 2.0, self.args.viewer_max_lifetime)
            counted = False
            t_end = time.monotonic() + min(lifetime, self.left())
            # Wait for the head (to count the viewer as open), then for the end of
            # its lifetime or of the stream, whichever comes first.
            while not v.done.done() and time.monotonic() < t_end and not self.stopping:  # bounded by t_end
                if not counted and v.connected:
                    counted = True
                    self.viewers_open += 1
                wait = 0.05 if not counted else 1.0
                try:
                    await asyncio.wait_for(asyncio.shield(v.done), max(0.0, min(wait, t_end - time.monotonic())))
                except asyncio.TimeoutError:
                    pass
            if not v.done.done():
                v.leaving = True
                if v.state == HEAD:
                    c.add("viewer left before the response head")
                if rng.random() < 0.3:
                    c.add("viewer left abruptly (reset)")
                    _rst(v.transport)
                else:
                    c.add("viewer left (FIN)")
                    v.transport.close()
                try:
                    await asyncio.wait_for(asyncio.shield(v.done), 5.0)
                except asyncio.TimeoutError:
                    c.anomaly("viewer: transport not closed within 5 s")
            if counted:
                self.viewers_open -= 1
            if v.last_id:
                last_id, last_seq = v.last_id, v.last_seq
            await self.sleep(rng.uniform(MIN_CYCLE, 1.0 if resume else 0.5))

    # ---- consoles ----

    async def console_slot(self, index: int) -> None:
        rng, c = self.rng, self.counts
        await asyncio.sleep(rng.uniform(0, min(2.0, self.args.seconds / 4)))
        for cycle in range(self.max_cycles):
            if not self.running():
                break
            con = SoakConsole(self, f"soak-{index}-{cycle}")
            c.add("console connections")
            if not await con.open():
                await self.sleep(1.0)
                continue
            self.consoles_open += 1
            try:
                lifetime = _loguniform(rng, 3.0, self.args.console_max_lifetime)
                t_end = time.monotonic() + min(lifetime, self.left())
                for _ in range(int(lifetime / 0.3) + 2):  # bounded by t_end too
                    if time.monotonic() >= t_end or not con.alive or self.stopping:
                        break
                    await con.command(rng.choices(self.lines, self.weights)[0])
                    await asyncio.sleep(max(0.0, min(rng.uniform(0.3, 2.0), t_end - time.monotonic())))
                how = rng.random()
                await con.leave("close" if how < 0.5 else "fin" if how < 0.75 else "reset")
            finally:
                self.consoles_open -= 1
            await self.sleep(rng.uniform(MIN_CYCLE, 0.5))

    # ---- the run ----

    def status(self) -> dict:
        ms = sorted(self.reply_ms)
        self.reply_ms = []
        return {
            "type": "status",
            "t": round(time.monotonic() - self.started, 2),
            "viewers_open": self.viewers_open,
            "consoles_open": self.consoles_open,
            "replies": len(ms),
            "reply_ms_p50": round(ms[len(ms) // 2], 2) if ms else None,
            "reply_ms_p99": round(ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)], 2) if ms else None,
            "reply_ms_max": round(ms[-1], 2) if ms else None,
            "anomalies": sum(self.counts.anomalies.values()),
            "cpu_s": round(_cpu(), 2),
        }

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        buf = bytearray()

        def readable() -> None:
            chunk = os.read(fd, 4096)
            if not chunk:  # the orchestrator went away: end now
                loop.remove_reader(fd)
                self.stopping = True
                return
            buf.extend(chunk)
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                try:
                    cmd = json.loads(line).get("cmd")
                except (ValueError, AttributeError):
                    continue
                if cmd == "status":
                    emit(self.status())

        if not self.args.no_stdin:
            loop.add_reader(fd, readable)
        tasks = [asyncio.ensure_future(self.viewer_slot(i)) for i in range(self.args.viewers)]
        tasks += [asyncio.ensure_future(self.console_slot(i)) for i in range(self.args.consoles)]
        emit({"type": "started", "pid": os.getpid(), "viewers": self.args.viewers,
              "consoles": self.args.consoles, "seconds": self.args.seconds, "loop": LOOP[0]})
        # Slots end by themselves at the deadline (a lifetime never runs past it);
        # then the last connections close, each within its own timeouts.
        while self.running():  # bounded by the deadline
            await asyncio.sleep(min(0.5, max(0.01, self.left())))
        self.stopping = True
        done, pending = await asyncio.wait(tasks, timeout=CONNECT_TIMEOUT + REPLY_TIMEOUT + 15)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                self.counts.anomaly(f"slot crashed: {type(t.exception()).__name__}: {t.exception()}")
        if pending:
            self.counts.anomaly(f"{len(pending)} slots did not end in time")
        if not self.args.no_stdin:
            try:
                loop.remove_reader(fd)
            except (ValueError, OSError):
                pass
        return {
            "type": "result",
            "pid": os.getpid(),
            "seconds": round(time.monotonic() - self.started, 2),
            "viewers": self.args.viewers,
            "consoles": self.args.consoles,
            "viewers_open_at_end": self.viewers_open,
            "consoles_open_at_end": self.consoles_open,
            "counts": dict(sorted(self.counts.counts.items())),
            "anomalies": dict(sorted(self.counts.anomalies.items())),
            "reply_ms_max_by_command": {k: round(v, 1) for k, v in sorted(self.slowest.items())},
            "cpu_s": round(_cpu(), 2),
            "loop": LOOP[0],
        }


class SoakConsole:
    """One /console connection on asyncio streams; a reader task answers pings and
    hands replies to the request waiting for them."""

    def __init__(self, load: Load, name: str) -> None:
        self.load = load
        self.counts = load.counts
        self.name = name
        self.reader = self.writer = None
        self.task = None
        self.pending: dict[int, asyncio.Future] = {}
        self.next_id = 0
        self.alive = False
        self.leaving = False
        self.got_close = asyncio.Event()
        self.welcome = asyncio.get_running_loop().create_future()

    async def open(self) -> bool:
        a, c = self.load.args, self.counts
        key = base64.b64encode(os.urandom(16))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode()
        head = (f"GET /console HTTP/1.1\r\nHost: {a.host}:{a.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {a.token}\r\nX-Operator-Name: {self.name}\r\n\r\n").encode()
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(a.host, a.port, limit=1 << 20), CONNECT_TIMEOUT)
            self.writer.write(head)
            answer = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            c.anomaly(f"console: handshake failed: {type(exc).__name__}: {exc}"[:120])
            self._abort()
            return False
        text = answer.decode("latin-1")
        status = text.split("\r\n", 1)[0]
        if " 101 " not in status + " " or f"sec-websocket-accept: {accept}".lower() not in text.lower():
            c.anomaly(f"console: handshake answered {status[:60]}")
            self._abort()
            return False
        self.alive = True
        self.task = asyncio.ensure_future(self._read())
        try:
            await asyncio.wait_for(asyncio.shield(self.welcome), CONNECT_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError):
            c.anomaly("console: no welcome")
            await self.leave("reset")
            return False
        return True

    def _abort(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()

    async def _read(self) -> None:
        r, c = self.reader, self.counts
        fragments: list[bytes] = []
        try:
            for _ in range(MAX_FRAMES):
                b0, b1 = await r.readexactly(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(await r.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await r.readexactly(8), "big")
                if b1 & 0x80:
                    c.anomaly("console: masked frame from the server")
                    break
                payload = await r.readexactly(n) if n else b""
                op = b0 & 0x0F
                if op == 9:
                    self.writer.write(frame(10, payload))
                    c.add("console pings answered")
                elif op == 10:
                    pass
                elif op == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    if not self.leaving:
                        c.anomaly(f"console: closed by the server: {code} "
                                  f"{payload[2:60].decode(errors='replace')}")
                        self.writer.write(frame(8, payload[:2]))  # answer, then our side ends
                    self.got_close.set()
                    break
                elif op in (0, 1, 2):
                    fragments.append(payload)
                    if b0 & 0x80:
                        self._message(b"".join(fragments))
                        fragments = []
                else:
                    c.anomaly(f"console: unknown opcode {op}")
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            if not self.leaving:
                c.anomaly("console: connection ended by the server without a close frame")
        finally:
            self.alive = False
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("connection ended"))
            if not self.welcome.done():
                self.welcome.set_exception(ConnectionError("connection ended"))
                self.welcome.exception()  # retrieved: nobody may be waiting any more

    def _message(self, payload: bytes) -> None:
        c = self.counts
        try:
            msg = json.loads(payload)
        except ValueError:
            c.anomaly("console: frame is not JSON")
            return
        rid = msg.get("id") if isinstance(msg, dict) else None
        if rid is None:
            kind = msg.get("type") if isinstance(msg, dict) else None
            if kind == "welcome" and not self.welcome.done():
                self.welcome.set_result(msg)
            elif kind:
                c.add(f"console {kind} pushes")
            else:
                c.anomaly("console: frame without id or type")
            return
        fut = self.pending.get(rid)
        if fut is None or fut.done():
            c.anomaly("console: reply to no outstanding request")
            return
        fut.set_result(msg)

    async def command(self, line: str) -> None:
        c = self.counts
        if line == "broadcast":
            self.load.broadcasts += 1
            line = f"broadcast soak notice {self.load.broadcasts} from {self.name}"
        verb = line.split()[0]
        self.next_id += 1
        rid = self.next_id
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = fut
        t0 = time.perf_counter()
        try:
            self.writer.write(frame(1, json.dumps({"id": rid, "line": line}).encode()))
            msg = await asyncio.wait_for(fut, REPLY_TIMEOUT)
        except asyncio.TimeoutError:
            c.anomaly(f"console: no reply to `{verb}` within {REPLY_TIMEOUT:g} s")
            return
        except (ConnectionError, OSError):
            c.add("console requests cut by the connection's end")
            return
        finally:
            self.pending.pop(rid, None)
        ms = (time.perf_counter() - t0) * 1000.0
        load = self.load
        if len(load.reply_ms) < 1_000_000:
            load.reply_ms.append(ms)
        if ms > load.slowest.get(verb, 0.0):
            load.slowest[verb] = ms
        if ms > 100.0:
            c.add(f"console `{verb}` replies over 100 ms")
        c.add(f"console `{verb}` replies")
        if msg.get("ok") is not True:
            code = (msg.get("error") or {}).get("code", "?")
            c.anomaly(f"console: `{verb}` answered {code}: {(msg.get('error') or {}).get('message', '')[:60]}")

    async def leave(self, how: str) -> None:
        c = self.counts
        self.leaving = True
        if self.writer is None:
            return
        if not self.alive:  # the server ended it (counted by the reader)
            self.writer.close()
        elif how == "close":
            c.add("console left with a close handshake")
            try:
                self.writer.write(frame(8, (1000).to_bytes(2, "big")))
                await asyncio.wait_for(self.got_close.wait(), 3.0)
            except asyncio.TimeoutError:
                c.anomaly("console: no close frame back within 3 s")
            except (ConnectionError, OSError):
                pass
            self.writer.close()
        elif how == "fin":
            c.add("console left without a close frame (FIN)")
            self.writer.close()
        else:
            c.add("console left abruptly (reset)")
            _rst(self.writer.transport)
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), 5.0)
            except asyncio.TimeoutError:
                self.task.cancel()
            except Exception:  # the reader's own errors are counted there
                pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--viewers", type=int, default=300)
    p.add_argument("--consoles", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--viewer-max-lifetime", type=float, default=240.0)
    p.add_argument("--console-max-lifetime", type=float, default=600.0)
    p.add_argument("--token", default=os.environ.get("OPERATOR_TOKEN"),
                   help="operator bearer token (default $OPERATOR_TOKEN)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-stdin", action="store_true", help="by hand: no orchestrator on stdin")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = p.parse_args(argv)
    if args.viewers < 0 or args.consoles < 0 or args.seconds <= 0:
        p.error("--viewers and --consoles >= 0, --seconds > 0")
    if args.consoles and not args.token:
        p.error("consoles need an operator token (--token or $OPERATOR_TOKEN)")
    args.viewer_max_lifetime = max(2.5, args.viewer_max_lifetime)
    args.console_max_lifetime = max(3.5, args.console_max_lifetime)

    async def go():
        return await Load(args).run()

    result = run_loop(go(), args.loop)
    emit(result)
    if args.no_stdin:
        print(json.dumps(result, indent=1), file=sys.stderr)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
