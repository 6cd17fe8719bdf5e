"""Fan-out: every event is encoded once and the same bytes go to every viewer.

The hot path is one sample and N open streams. `publish` gives the event its
id, frames it once (the HTTP/1.1 chunk around it included), keeps it in a ring
buffer and, in the publishing greenlet, offers those bytes to every caught-up
viewer with one non-blocking send each. No viewer greenlet wakes, nothing is
queued per viewer, nothing is serialized per viewer.

Under gunicorn the hub owns each viewer's socket once its head is sent
(sockets.py): no greenlet per viewer. A viewer whose socket cannot take a
whole frame (a slow reader) leaves that fast set: a writer greenlet spawned
for it finishes the partial write and catches up from the ring by position. Its backlog is a position in the shared ring, never a copy,
so memory stays flat however many viewers stall; one that falls more than
`backlog` events behind, or stalls a write for `write_timeout`, is dropped.
Resuming with Last-Event-ID is the same catch-up from an older position.

Viewers served by a server that exposes no socket (Flask's test client, the
development server) follow the ring through the WSGI iterator instead; it is
the same cursor logic, one wake per event.
"""

from __future__ import annotations

import bisect
import logging
import time
from dataclasses import dataclass
from typing import Iterator

import gevent

from . import sse
from .events import Event, EventKey, IdClock, Resync, format_id, parse_id, to_json
from .frame import Frame
from .sockets import SocketStreams
from .subscriber import Subscriber

log = logging.getLogger(__name__)


@dataclass
class HubStats:  # counters for status and /metrics
    published: int = 0
    dropped_slow: int = 0
    dropped_buffer: int = 0
    opened: int = 0


class Hub:
    def __init__(self, *, history_seconds: float = 3600, max_events: int | None = None, backlog: int = 64,
                 write_timeout: float = 10.0, heartbeat: float = 15.0, retry_ms: int = 2000,
                 send_buffer: int = 0, clock: IdClock | None = None) -> None:
        self.history_ms = int(history_seconds * 1000)
        # Four samples a second (the fastest interval) for the whole history,
        # plus room for notices and alerts.
        self.max_events = max_events or int(history_seconds * 4) + 1024
        self.backlog = backlog
        self.write_timeout = write_timeout
        self.heartbeat_seconds = heartbeat
        self.retry_ms = retry_ms
        self.send_buffer = send_buffer
        self.clock, self.stats = clock or IdClock(), HubStats()
        self._buf: list[Frame | None] = []
        self._start = 0  # index in _buf of the oldest frame kept
        self._n = 0  # n of the newest frame (frames are numbered from 1)
        # Every event with a key above the floor is still in the buffer.
        self.floor: EventKey = self.clock.next()
        self._fast: dict[Subscriber, None] = {}
        self._waiting: dict[Subscriber, None] = {}  # followers without a raw socket
        self._slow: dict[Subscriber, None] = {}  # catching up in a writer greenlet
        self.sockets = SocketStreams(self)
        self.subscribers: dict[Subscriber, None] = {}
        self.last_write = time.monotonic()
        self._heartbeat_wire = sse.chunk(sse.comment("heartbeat"))
        self._heartbeat_start = len(self._heartbeat_wire) - len(sse.comment("heartbeat")) - 2

    # ---- the buffer -------------------------------------------------------

    def __len__(self) -> int:
        return len(self._buf) - self._start

    def frames(self) -> list[Frame]:
        return self._buf[self._start :]  # type: ignore[return-value]

    @property
    def head(self) -> Frame | None:
        return self._buf[-1] if len(self) else None

    def _evict(self, now_ms: int) -> None:
        buf, limit = self._buf, now_ms - self.history_ms
        while self._start < len(buf):
            oldest = buf[self._start]
            if oldest.ms >= limit and len(buf) - self._start <= self.max_events:
                break
            self.floor = oldest.key
            buf[self._start] = None
            self._start += 1
        if self._start > 1024 and self._start * 2 > len(buf):
            del buf[: self._start]
            self._start = 0

    def _after(self, n: int) -> list[Frame] | None:
        """Frames newer than n, or None when some of them were already evicted."""
        if not len(self):
            return []
        first = self._buf[self._start].n
        if n + 1 < first:
            return None
        return self._buf[self._start + n + 1 - first :]  # type: ignore[return-value]

    def restore(self, events) -> list[tuple[Frame, str]]:
        """Fill the empty buffer with stored (key, type, data) events, oldest first (at start)."""
        assert not len(self), "restore() is only for an empty buffer"
        kept: list[tuple[Frame, str]] = []
        for key, type, data in events:
            if not kept or key > kept[-1][0].key:
                self._n += 1
                kept.append((Frame(self._n, key, type, data), data))
                self._buf.append(kept[-1][0])
        if kept:  # ids go on from the newest; nothing lies between the floor and the first
            first = kept[0][0].key
            self.floor = (first[0], first[1] - 1) if first[1] else (first[0] - 1, 10**12)
            self.clock.observe(kept[-1][0].key)
        return kept

    # ---- publishing ---------------------------------------------------------

    def publish(self, event: Event) -> Frame:
        """Encode event once and deliver it to every viewer."""
        return self.publish_raw(event.type, to_json(event.payload()))

    def publish_raw(self, type: str, data: str, key: EventKey | None = None) -> Frame:
        """Deliver already-encoded data (with an id assigned elsewhere, e.g. by Redis)."""
        if key is None:
            key = self.clock.next()
        else:
            head = self.head
            if key <= (head.key if head else self.floor):
                raise ValueError(f"event id {format_id(key)} is not above the stream's head")
            self.clock.observe(key)
        self._n += 1
        frame = Frame(self._n, key, type, data)
        self._buf.append(frame)
        self._evict(int(time.time() * 1000))
        self.stats.published += 1
        self._fan_out(frame.n, frame.wire, frame._start)
        for sub in self._waiting:
            sub.wake.set()
        if self._slow:
            self._drop_laggards()
        return frame

    def _lag(self, sub: Subscriber) -> int:
        """Events published since open that sub has not been given yet."""
        return self._n - max(sub.cursor, sub.floor_n)

    def _drop_laggards(self) -> None:
        for sub in [s for s in self._slow if self._lag(s) > self.backlog]:
            self.stats.dropped_slow += 1
            sub.broken = True
            self.close(sub, f"more than {self.backlog} events behind")

    def _fan_out(self, n: int, wire: bytes, start: int, count: bool = True) -> None:
        """Offer wire (or its unchunked part) to every fast viewer, without blocking."""
        body = None
        trouble: list[Subscriber] = []
        # No greenlet switch happens in this loop (non-blocking sends; Event.set
        # only schedules), so the dict cannot change under it.
        for sub in self._fast:
            if sub.chunked:
                data = wire
            else:
                if body is None:
                    body = memoryview(wire)[start : len(wire) - 2]
                data = body
            try:
                sent = sub.sock.send(data, 0, 0.0)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                sub.reason = f"write failed: {exc.strerror or exc}"
                trouble.append(sub)
                continue
            if count:
                sub.cursor = n
                sub.events += 1
            sub.bytes += sent
            if sent < len(data):
                sub.pending = memoryview(data)[sent:]
                trouble.append(sub)
        self.last_write = time.monotonic()
        for sub in trouble:
            del self._fast[sub]
            if sub.owned:
                self.sockets.behind(sub)
            else:
                sub.wake.set()

    def heartbeat(self) -> None:
        """A comment to every fast viewer: keeps routers from cutting idle streams
        and finds dead peers (a write is the only way to notice some of them)."""
        self._fan_out(self._n, self._heartbeat_wire, self._heartbeat_start, count=False)

    def heartbeat_due(self) -> bool:
        return time.monotonic() - self.last_write >= self.heartbeat_seconds

    # ---- viewers ------------------------------------------------------------

    def open(
        self,
        last_event_id: str | None,
        *,
        sock=None,
        chunked: bool = True,
        addr: str = "?",
        host: str | None = None,
        client: str | None = None,
        login: str | None = None,
    ) -> tuple[Subscriber, bytes]:
        """Register a viewer; returns it and the bytes to send before anything else."""
        sub = Subscriber(sock, chunked, addr, host, client, login)
        parts = [sse.retry(self.retry_ms), sse.comment("connected")]
        sub.cursor = sub.floor_n = self._n
        if last_event_id is not None:
            resume = self._resume_point(last_event_id)
            if isinstance(resume, int):
                sub.cursor = resume
            else:
                head = self.head
                parts.append(sse.frame(to_json(resume.payload()), event=resume.type,
                                       id=head.id if head else None))
        self.subscribers[sub] = None
        self.stats.opened += 1
        return sub, b"".join(parts)

    def _resume_point(self, last_event_id: str) -> int | Resync:
        frames = self.frames()
        oldest = frames[0].id if frames else None
        latest = frames[-1].id if frames else None
        key = parse_id(last_event_id)
        shown = last_event_id[:64]
        if key is None:
            return Resync("invalid", shown, oldest, latest)
        if key < self.floor:
            return Resync("stale", shown, oldest, latest)
        if key > (frames[-1].key if frames else self.floor):
            return Resync("unknown", shown, oldest, latest)
        i = bisect.bisect_right(frames, key, key=lambda f: f.key)
        return frames[i - 1].n if i else self._n - len(frames)

    def close(self, sub: Subscriber, reason: str) -> None:
        """End a viewer's stream (now if the hub owns its socket, else its greenlet finishes it)."""
        if sub.closed:
            return
        sub.closed = True
        sub.reason = sub.reason or reason
        self._fast.pop(sub, None)
        if sub.owned:
            self.sockets.close(sub)
        else:
            sub.wake.set()

    def close_all(self, reason: str) -> int:
        subs = list(self.subscribers)
        for sub in subs:
            self.close(sub, reason)
        return len(subs)

    def release(self, sub: Subscriber) -> None:
        """Forget a viewer whose stream has ended (idempotent)."""
        sub.closed = True
        self._fast.pop(sub, None)
        self._waiting.pop(sub, None)
        self._slow.pop(sub, None)
        self.subscribers.pop(sub, None)
        if sub.watcher is not None:
            sub.watcher.stop()
            sub.watcher.close()
            sub.watcher = None

    def _next_batch(self, sub: Subscriber) -> list[Frame] | None:
        """What sub must be sent next; None if it must be dropped (reason set)."""
        frames = self._after(sub.cursor)
        if frames is None:
            self.stats.dropped_buffer += 1
            self.close(sub, "fell out of the buffer")
            return None
        if self._lag(sub) > self.backlog:
            self.stats.dropped_slow += 1
            self.close(sub, f"more than {self.backlog} events behind")
            return None
        return frames

    def attach(self, sub: Subscriber) -> None:
        """Own sub's socket from here on (its head and preamble are sent); returns at once."""
        self.sockets.attach(sub)

    def iter_frames(self, sub: Subscriber) -> Iterator[bytes]:
        """Follow the stream through a WSGI iterator (no raw socket available)."""
        heartbeat = sse.comment("heartbeat")
        try:
            while not sub.closed:
                frames = self._next_batch(sub)
                if frames is None:
                    break
                if not frames:
                    sub.wake.clear()
                    self._waiting[sub] = None
                    woke = sub.wake.wait(self.heartbeat_seconds)
                    self._waiting.pop(sub, None)
                    if not woke and not sub.closed:
                        yield heartbeat
                    continue
                for frame in frames:
                    sub.cursor = frame.n
                    sub.events += 1
                    data = bytes(frame.body)
                    sub.bytes += len(data)
                    yield data
        finally:
            self.release(sub)
