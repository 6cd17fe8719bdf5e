"""A strict server-sent events parser written from the WHATWG rules, and a raw
HTTP client over a socket that feeds it.

The parser follows "Interpreting an event stream" (HTML Living Standard) step
by step, and also records anything a conforming server should never produce
(unknown fields, a bogus retry, NUL in an id, bytes after the last blank
line), so tests can assert the server's output is clean, not only parseable.
"""

from __future__ import annotations

import codecs
import json
import socket
import time
import zlib
from dataclasses import dataclass, field


@dataclass
class SSEEvent:
    type: str
    data: str
    last_event_id: str

    @property
    def json(self):
        return json.loads(self.data)


@dataclass
class SSEParser:
    events: list[SSEEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    retry: int | None = None
    last_event_id: str = ""
    _data: list[str] = field(default_factory=list)
    _type: str = ""
    _buf: str = ""
    _started: bool = False

    def feed(self, text: str) -> list[SSEEvent]:
        """Parse text; returns the events it completed."""
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        self._buf += text
        before = len(self.events)
        while True:
            cut = self._line_end()
            if cut is None:
                break
            line, self._buf = self._buf[: cut[0]], self._buf[cut[1] :]
            self._line(line)
        return self.events[before:]

    def _line_end(self) -> tuple[int, int] | None:
        buf = self._buf
        for i, ch in enumerate(buf):
            if ch == "\n":
                return i, i + 1
            if ch == "\r":
                if i + 1 == len(buf):
                    return None  # a CR at the end may be the first half of CRLF
                return (i, i + 2) if buf[i + 1] == "\n" else (i, i + 1)
        return None

    def _line(self, line: str) -> None:
        if line == "":
            self._dispatch()
            return
        if line.startswith(":"):
            self.comments.append(line[1:].lstrip(" "))
            return
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\x00" in value:
                self.anomalies.append(f"id with NUL: {value!r}")
            else:
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self.retry = int(value)
            else:
                self.anomalies.append(f"bogus retry: {value!r}")
        else:
            self.anomalies.append(f"unknown field: {line!r}")

    def _dispatch(self) -> None:
        if not self._data:
            self._type = ""
            return
        self.events.append(SSEEvent(self._type or "message", "\n".join(self._data), self.last_event_id))
        self._data = []
        self._type = ""

    def finish(self) -> None:
        """The stream ended: a pending, undispatched event is dropped (and noted)."""
        if self._buf or self._data:
            self.anomalies.append(f"stream ended inside an event: {self._buf!r} {self._data!r}")


class Dechunker:
    """Incremental HTTP/1.1 chunked transfer decoding."""

    def __init__(self) -> None:
        self.buf = b""
        self.remaining = None  # bytes left in the current chunk
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = []
        while not self.done:
            if self.remaining is None:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.buf[:end].split(b";")[0], 16)
                self.buf = self.buf[end + 2 :]
                if size == 0:
                    self.done = True
                    break
                self.remaining = size
            if len(self.buf) < self.remaining + 2:
                break
            out.append(self.buf[: self.remaining])
            if self.buf[self.remaining : self.remaining + 2] != b"\r\n":
                raise ValueError("chunk not followed by CRLF")
            self.buf = self.buf[self.remaining + 2 :]
            self.remaining = None
        return b"".join(out)


class SSEClient:
    """GET a stream over a plain socket; exposes status, headers and parsed events."""

    def __init__(
        self,
        port: int,
        path: str = "/events",
        headers: dict | None = None,
        host: str = "127.0.0.1",
        http10: bool = False,
        timeout: float = 10.0,
        auth: bool = True,
    ) -> None:
        self.started = time.monotonic()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        version = "HTTP/1.0" if http10 else "HTTP/1.1"
        lines = [f"GET {path} {version}", f"Host: {host}:{port}", "Accept: text/event-stream"]
        # As a script logged in with the operator's bearer token, unless auth=False.
        headers = {**({"Authorization": "Bearer operator-token-for-tests"} if auth else {}), **(headers or {})}
        lines += [f"{k}: {v}" for k, v in headers.items() if v is not None]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.parser = SSEParser()
        self.wire = b""  # body bytes exactly as received (chunk framing included)
        self.raw = b""  # body bytes after de-chunking
        self.first_byte_at: float | None = None
        self.ended = False
        head = b""
        while b"\r\n\r\n" not in head:
            piece = self.sock.recv(65536)
            if not piece:
                raise ConnectionError(f"connection closed before headers: {head!r}")
            head += piece
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.dechunker = Dechunker() if self.headers.get("transfer-encoding") == "chunked" else None
        # A proxy may compress the stream anyway; then it must still flush each event.
        self.gunzip = (zlib.decompressobj(16 + zlib.MAX_WBITS)
                       if self.headers.get("content-encoding") == "gzip" else None)
        self.arrivals: list[tuple[float, int]] = []  # (time, events parsed so far)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        if rest:
            self._take(rest)

    def _take(self, data: bytes) -> None:
        if self.first_byte_at is None and data:
            self.first_byte_at = time.monotonic()
        self.wire += data
        if self.dechunker is not None:
            data = self.dechunker.feed(data)
            if self.dechunker.done:
                self.ended = True
        if self.gunzip is not None:
            data = self.gunzip.decompress(data)
        self.raw += data
        self.parser.feed(self._decoder.decode(data))
        self.arrivals.append((time.time(), len(self.parser.events)))

    def pump(self, timeout: float) -> bool:
        """Read what arrives within timeout; False once the stream has ended."""
        if self.ended:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        except ConnectionResetError:
            data = b""
        if not data:
            self.ended = True
            return False
        self._take(data)
        return not self.ended

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if not self.pump(min(left, 0.5)):
                return predicate(self)
        return True

    def arrival(self, index: int) -> float:
        """When the index-th event (of any type) had fully arrived."""
        return next(t for t, n in self.arrivals if n > index)

    def events_of(self, type: str) -> list[SSEEvent]:
        return [e for e in self.parser.events if e.type == type]

    def read_events(self, count: int, type: str = "metrics", timeout: float = 10.0) -> list[SSEEvent]:
        self.wait_for(lambda c: len(c.events_of(type)) >= count, timeout)
        got = self.events_of(type)
        assert len(got) >= count, f"wanted {count} {type} events, got {len(got)}: {self.raw[-500:]!r}"
        return got

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
