"""Load client: many SSE viewers on raw sockets, in one asyncio process.

Run by the orchestrator (several of these processes when one would saturate a
core or run out of file descriptors), or by hand:

    python -m bench.load_client --port 8000 --viewers 500 --window 10

Each viewer is an `asyncio.Protocol` on its own TCP connection. It parses the
HTTP response head, undoes `Transfer-Encoding: chunked` when the server uses
it (and reads the body as is when it does not), splits the SSE stream into
events at blank lines and reads, cheaply, the `id:` field and the `"ts":` and
`"seq":` numbers in `data:`. Nothing else of the payload is decoded.

Delivery delay is the client's `time.time()` when the bytes arrived minus the
event's `ts` (all processes run on this machine, so they share the clock). It
is counted for every event of every viewer whose `ts` falls in the measured
window, into a histogram with 0.1 ms steps below 100 ms and 1 ms steps up to
10 s, so several processes' results merge exactly.

Talking to the orchestrator (one JSON object per line):

    stdout  {"type": "connected", ...}   all viewers connected (or gave up)
    stdin   {"cmd": "measure", "start": t0, "end": t1, "grace": g}
    stdout  {"type": "result", ...}      after t1 + g; then the process exits

Every loop is bounded: viewers by count, connecting by a deadline, waiting
for the command and measuring by deadlines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import sys
import time

from .histogram import Buckets

# Delivery delays: 0.1 ms steps below 100 ms.
DELAY = Buckets(100.0)


# ---- one viewer ---------------------------------------------------------------

_TS = re.compile(rb'"ts":\s*(-?[0-9][0-9.eE+-]*)')
_SEQ = re.compile(rb'"seq":\s*([0-9]+)')

HEAD, BODY, DONE = 0, 1, 2


class Stats:
    """Shared by all viewers of this process."""

    def __init__(self) -> None:
        self.connected = 0  # got a 200 text/event-stream head
        self.errors: dict[str, int] = {}  # connect failures, bad answers
        self.disconnects = 0  # streams that ended while we still listened
        self.disconnect_reasons: dict[str, int] = {}
        self.window = (math.inf, math.inf)  # ts range counted
        self.listening = True
        self.hist: dict[int, int] = {}
        self.events = 0  # data events with ts in the window
        self.other_events = 0  # data events without a ts (config, notice, ...)
        self.event_bytes = 0
        self.gaps = 0  # seq numbers skipped (events never delivered)
        self.window_seqs: set[int] = set()  # distinct seq numbers with ts in the window
        self.ts_min = math.inf  # first and last ts seen in the window
        self.ts_max = -math.inf
        self.comments = 0
        self.events_total = 0  # all data events since connecting

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Viewer(asyncio.Protocol):
    __slots__ = (
        "stats", "request", "transport", "state", "raw", "sse", "chunked",
        "chunk_left", "skip", "connected", "in_window", "last_seq", "last_id", "ended",
    )

    def __init__(self, stats: Stats, request: bytes) -> None:
        self.stats = stats
        self.request = request
        self.transport = None
        self.state = HEAD
        self.raw = bytearray()  # undecoded bytes (head, a split chunk size line)
        self.sse = bytearray()  # decoded SSE text of an event not complete yet
        self.chunked = False
        self.chunk_left = 0  # data bytes left in the current chunk
        self.skip = 0  # CRLF bytes after a chunk still to skip
        self.connected = False
        self.in_window = 0
        self.last_seq: int | None = None
        self.last_id: bytes | None = None
        self.ended = False

    # asyncio callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc) -> None:
        self.state = DONE
        stats = self.stats
        if not stats.listening:
            return
        if self.connected:
            stats.disconnects += 1
            reason = "server ended the stream" if self.ended or exc is None else str(exc)[:80]
            stats.disconnect_reasons[reason] = stats.disconnect_reasons.get(reason, 0) + 1
        else:
            stats.error("closed before the response head" if exc is None else str(exc)[:80])

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if self.state == BODY:
            self._body(data, now)
        elif self.state == HEAD:
            self.raw += data
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                if len(self.raw) > 65536:
                    self._fail("response head too large")
                return
            if not self._head(bytes(self.raw[:end])):
                return
            rest = bytes(self.raw[end + 4 :])
            self.raw.clear()
            self.state = BODY
            if rest:
                self._body(rest, now)

    # parsing

    def _fail(self, why: str) -> None:
        self.stats.error(why)
        self.state = DONE
        self.transport.close()

    def _head(self, head: bytes) -> bool:
        lines = head.split(b"\r\n")
        parts = lines[0].split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            self._fail("not an HTTP/1.x response")
            return False
        if parts[1] != b"200":
            self._fail(f"status {parts[1].decode('latin-1')}")
            return False
        content_type = b""
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value:
                self.chunked = True
            elif name == b"content-type":
                content_type = value
        if not content_type.startswith(b"text/event-stream"):
            self._fail("content-type is not text/event-stream")
            return False
        self.connected = True
        self.stats.connected += 1
        return True

    def _body(self, data: bytes, now: float) -> None:
        if not self.chunked:
            self._sse(data, now)
            return
        if self.raw or self.chunk_left or self.skip:
            self._dechunk(data, now)
            return
        # Fast path: the read holds whole chunks (the usual case: one write, one
        # chunk, one read), so each chunk's body is sliced out once.
        pos, n = 0, len(data)
        while pos < n:  # each pass consumes one whole chunk or leaves
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                break
            try:
                size = int(data[pos:eol].split(b";", 1)[0], 16)
            except ValueError:
                self._fail("bad chunk size line")
                return
            if size == 0:
                self._end()
                return
            start = eol + 2
            stop = start + size
            if stop + 2 > n:
                break
            self._sse(data[start:stop], now)
            if self.state != BODY:
                return
            pos = stop + 2
        if pos < n:
            self._dechunk(data[pos:], now)

    def _end(self) -> None:
        """The last chunk: the server ended the stream."""
        self.ended = True
        self.state = DONE
        self.transport.close()

    def _dechunk(self, data: bytes, now: float) -> None:
        """General chunked decoding: chunks and size lines split across reads."""
        if self.raw:
            data = bytes(self.raw) + data
            self.raw.clear()
        pos, n = 0, len(data)
        out: list[bytes] = []
        while pos < n:  # each pass consumes bytes or returns
            if self.chunk_left:
                take = min(self.chunk_left, n - pos)
                out.append(data[pos : pos + take])
                pos += take
                self.chunk_left -= take
                if not self.chunk_left:
                    self.skip = 2  # the CRLF after the chunk's data
                continue
            if self.skip:
                take = min(self.skip, n - pos)
                pos += take
                self.skip -= take
                continue
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                self.raw += data[pos:]
                if len(self.raw) > 1024:
                    self._fail("bad chunk size line")
                    return
                break
            try:
                size = int(data[pos:eol].split(b";", 1)[0], 16)
            except ValueError:
                self._fail("bad chunk size line")
                return
            pos = eol + 2
            if size == 0:
                if out:
                    self._sse(b"".join(out), now)
                self._end()
                return
            self.chunk_left = size
        if out:
            self._sse(b"".join(out), now)

    def _sse(self, text: bytes, now: float) -> None:
        """Split decoded stream text into events at blank lines."""
        if self.sse:
            text = bytes(self.sse) + text
            self.sse.clear()
        if b"\r" in text:  # CRLF or CR line ends: fold to LF
            keep_cr = text.endswith(b"\r")  # maybe the first half of a CRLF
            text = text.replace(b"\r\n", b"\n")
            text = (text[:-1].replace(b"\r", b"\n") + b"\r") if keep_cr else text.replace(b"\r", b"\n")
        start = 0
        while True:  # bounded by len(text): start only grows
            end = text.find(b"\n\n", start)
            if end < 0:
                break
            self._event(text, start, end, now)
            start = end + 2
        if start < len(text):
            self.sse += text[start:]
            if len(self.sse) > 1 << 20:
                self._fail("event larger than 1 MiB")

    def _event(self, text: bytes, start: int, end: int, now: float) -> None:
        """One event block text[start:end]: count it, read id, ts and seq."""
        stats = self.stats
        if not (text.startswith(b"data:", start) or text.find(b"\ndata:", start, end) >= 0):
            stats.comments += 1  # comments, retry: nothing is dispatched
            return
        stats.events_total += 1
        if text.startswith(b"id:", start):
            i = start + 3
        else:
            i = text.find(b"\nid:", start, end)
            i = i + 4 if i >= 0 else -1
        if i >= 0:
            j = text.find(b"\n", i, end)
            self.last_id = text[i : j if j >= 0 else end].strip()
        m = _TS.search(text, start, end)
        if m is None:
            stats.other_events += 1
            return
        seq = None
        m2 = _SEQ.search(text, m.end(), end)
        if m2 is not None:
            seq = int(m2.group(1))
            if self.last_seq is not None and seq > self.last_seq + 1:
                stats.gaps += seq - self.last_seq - 1
            self.last_seq = seq
        ts = float(m.group(1))
        lo, hi = stats.window
        if lo <= ts < hi:
            self.in_window += 1
            stats.events += 1
            stats.event_bytes += end - start + 2
            if seq is not None and len(stats.window_seqs) < 100_000:
                stats.window_seqs.add(seq)
            if ts < stats.ts_min:
                stats.ts_min = ts
            if ts > stats.ts_max:
                stats.ts_max = ts
            b = DELAY.index((now - ts) * 1000.0)
            stats.hist[b] = stats.hist.get(b, 0) + 1


# ---- the process -------------------------------------------------------------------


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class LoopLag:
    """How late a 100 ms timer fires: a saturated client shows here first."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.lags: list[float] = []
        self.active = False
        self._due = 0.0

    def start(self) -> None:
        self.active = True
        self._due = self.loop.time() + 0.1
        self.loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        self.lags.append(max(0.0, now - self._due) * 1000.0)
        if self.active and len(self.lags) < 100_000:
            self._due = now + 0.1
            self.loop.call_at(self._due, self._tick)

    def summary(self) -> dict:
        lags = sorted(self.lags)
        if not lags:
            return {"p50_ms": None, "max_ms": None}
        return {"p50_ms": round(lags[len(lags) // 2], 2), "max_ms": round(lags[-1], 2)}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def auth_header() -> str:
    """A viewer's login (the dashboard is private by default): $VIEWER_TOKEN, if set."""
    token = os.environ.get("VIEWER_TOKEN")
    return f"Authorization: Bearer {token}\r\n" if token else ""


async def connect_all(args, stats: Stats, viewers: list) -> float:
    """Open args.viewers streams, args.batch every args.every seconds; returns seconds taken."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Accept: text/event-stream\r\nCache-Control: no-cache\r\n{auth_header()}\r\n"
    ).encode()
    started = time.monotonic()
    deadline = started + args.connect_timeout

    async def one() -> None:
        viewer = Viewer(stats, request)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: viewer, args.host, args.port), args.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            stats.error(f"connect: {type(exc).__name__}: {exc}"[:80])
            return
        viewers.append(viewer)

    opened = 0
    while opened < args.viewers and time.monotonic() < deadline:
        n = min(args.batch, args.viewers - opened)
        batch_start = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        opened += n
        await asyncio.sleep(max(0.0, args.every - (time.monotonic() - batch_start)))
    # Wait (bounded) for every opened connection to get its response head.
    while time.monotonic() < deadline:
        pending = sum(1 for v in viewers if v.state == HEAD)
        if not pending:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def measure_window(seconds: float, delay: float, grace: float,
                         timeout: float) -> tuple[float, float, float] | None:
    """(start, end, grace) of the window to measure: `seconds` from `delay` on
    when run by hand, else the orchestrator's measure command; None if none came."""
    if seconds:
        t0 = time.time() + delay
        return t0, t0 + seconds, grace
    command = await read_command(timeout)
    if command is None:
        return None
    return float(command["start"]), float(command["end"]), float(command["grace"])


async def read_command(timeout: float) -> dict | None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = sys.stdin.fileno()
    buf = bytearray()

    def readable() -> None:
        chunk = os.read(fd, 4096)
        if not chunk:
            if not fut.done():
                fut.set_result(None)
            return
        buf.extend(chunk)
        if b"\n" in buf and not fut.done():
            fut.set_result(json.loads(buf.split(b"\n", 1)[0]))

    loop.add_reader(fd, readable)
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)


async def run(args) -> dict:
    loop = asyncio.get_running_loop()
    stats = Stats()
    viewers: list[Viewer] = []
    cpu0 = _cpu()
    connect_seconds = await connect_all(args, stats, viewers)
    emit({
        "type": "connected",
        "pid": os.getpid(),
        "wanted": args.viewers,
        "connected": stats.connected,
        "errors": stats.errors,
        "seconds": round(connect_seconds, 3),
    })

    window = await measure_window(args.window, 0.2, args.grace, args.command_timeout)
    if window is None:
        return {"type": "result", "error": "no measure command"}
    t0, t1, grace = window
    stats.window = (t0, t1)
    lag = LoopLag(loop)
    gaps_before = stats.gaps
    disconnects_before = stats.disconnects

    await asyncio.sleep(max(0.0, t0 - time.time()))
    lag.start()
    cpu_start, wall_start = _cpu(), time.monotonic()
    await asyncio.sleep(max(0.0, t1 - time.time()))
    cpu_window = _cpu() - cpu_start
    wall_window = time.monotonic() - wall_start
    await asyncio.sleep(max(0.0, grace))  # late events with ts in the window
    lag.active = False
    stats.listening = False
    still_open = sum(1 for v in viewers if v.connected and v.state == BODY)
    per_viewer = sorted(v.in_window for v in viewers if v.connected)
    for v in viewers:
        if v.transport is not None:
            v.transport.abort()

    return {
        "type": "result",
        "pid": os.getpid(),
        "wanted": args.viewers,
        "connected": stats.connected,
        "open_at_end": still_open,
        "errors": stats.errors,
        "disconnects": stats.disconnects,
        "disconnects_in_window": stats.disconnects - disconnects_before,
        "disconnect_reasons": stats.disconnect_reasons,
        "window": [t0, t1],
        "events": stats.events,
        "events_total": stats.events_total,
        "other_events": stats.other_events,
        "event_bytes": stats.event_bytes,
        "gaps": stats.gaps,
        "window_seqs": sorted(stats.window_seqs),
        "window_ts": [stats.ts_min, stats.ts_max] if stats.events else None,
        "gaps_in_window": stats.gaps - gaps_before,
        "events_per_viewer_min": per_viewer[0] if per_viewer else 0,
        "events_per_viewer_max": per_viewer[-1] if per_viewer else 0,
        "hist": {str(k): v for k, v in stats.hist.items()},
        "cpu_seconds": round(cpu_window, 4),
        "cpu_percent": round(100.0 * cpu_window / wall_window, 2) if wall_window > 0 else None,
        "cpu_seconds_total": round(_cpu() - cpu0, 3),
        "loop_lag": lag.summary(),
        "connect_seconds": round(connect_seconds, 3),
        "loop": LOOP[0],
    }


def summarize(result: dict) -> str:
    t0, t1 = result["window"]
    hist = {int(k): v for k, v in result["hist"].items()}
    n = max(1, result["connected"])
    return (
        f"viewers {result['connected']}/{result['wanted']}, "
        f"events/viewer/s {result['events'] / n / (t1 - t0):.3f}, "
        f"delay p50 {DELAY.percentile(hist, 50)} ms p99 {DELAY.percentile(hist, 99)} ms, "
        f"disconnects {result['disconnects']}, gaps {result['gaps']}, errors {result['errors']}, "
        f"client CPU {result['cpu_percent']}%"
    )


def run_loop(coro, which: str = "auto"):
    """Run coro on uvloop when available (it costs the client a third of the CPU
    per event that asyncio's own loop does), else on asyncio's loop."""
    if which != "asyncio":
        try:
            import uvloop
        except ImportError:
            if which == "uvloop":
                raise
        else:
            LOOP[0] = f"uvloop {uvloop.__version__}"
            return uvloop.run(coro)
    LOOP[0] = "asyncio"
    return asyncio.run(coro)


LOOP = ["?"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/events")
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--batch", type=int, default=100, help="viewers opened per step")
    p.add_argument("--every", type=float, default=0.1, help="seconds between steps")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--command-timeout", type=float, default=900.0)
    p.add_argument("--window", type=float, default=0.0,
                   help="measure this many seconds right after connecting (by hand); "
                        "otherwise wait for the orchestrator's command on stdin")
    p.add_argument("--grace", type=float, default=1.5)
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop: uvloop when installed (auto), else asyncio's own")
    args = p.parse_args(argv)
    if args.viewers < 0 or args.batch < 1:
        p.error("--viewers must be >= 0 and --batch >= 1")
    result = run_loop(run(args), args.loop)
    if args.window:
        print(summarize(result), file=sys.stderr)
    emit(result)
    sys.stdout.flush()
    os._exit(0)  # skip tearing down thousands of transports one by one


if __name__ == "__main__":
    sys.exit(main())
