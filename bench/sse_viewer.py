"""One SSE viewer on a raw socket, as the load clients run thousands of them.

An `asyncio.Protocol` on its own TCP connection: it sends the request, parses
the HTTP response head, undoes `Transfer-Encoding: chunked` when the server
uses it (and reads the body as is when it does not), splits the SSE stream
into events at blank lines and reads, cheaply, the `id:` field and the `"ts":`
and `"seq":` numbers in `data:`. Nothing else of the payload is decoded. What
it sees goes into a `Stats` shared by every viewer of the process; a delivery
delay (arrival `time.time()` minus the event's `ts`) into a histogram of
0.1 ms steps when the `ts` falls in the measured window.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
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


def auth_header() -> str:
    """A viewer's login (the dashboard is private by default): $VIEWER_TOKEN, if set."""
    token = os.environ.get("VIEWER_TOKEN")
    return f"Authorization: Bearer {token}\r\n" if token else ""


def request(host: str, port: int, path: str = "/events", last_id: bytes | None = None) -> bytes:
    """The GET a viewer sends (resuming after `last_id` when given)."""
    extra = f"Last-Event-ID: {last_id.decode('ascii', 'replace')}\r\n" if last_id else ""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Cache-Control: no-cache\r\n{auth_header()}{extra}\r\n").encode()
