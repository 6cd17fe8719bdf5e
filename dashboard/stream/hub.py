"""Fan-out: every event is encoded once and the same bytes go to every viewer.

The hot path is one sample and N open streams. `publish` gives the event its
id, frames it once (the HTTP/1.1 chunk around it included), keeps it in the
ring (ring.py) and, in the publishing greenlet, offers those bytes to every
caught-up viewer with one non-blocking send each (sockets.py). No viewer
greenlet wakes, nothing is queued per viewer, nothing is serialized per
viewer.

This is the facade the rest of the program uses: open, attach, close,
publish, heartbeat. The parts below it each own one thing: the ring the
frames and resume points, SocketStreams the caught-up and catching-up
viewers whose sockets the hub owns. Here is the policy that joins them: a
catching-up viewer's backlog is a position in the shared ring, never a copy,
so memory stays flat however many viewers stall; one that falls more than
`backlog` events behind, or out of the ring, is dropped (a stalled write is
dropped by its writer after `write_timeout`). Resuming with Last-Event-ID is
the same catch-up from an older position.

Viewers served by a server that exposes no socket (Flask's test client, the
development server) follow the ring through the WSGI iterator instead; it is
the same cursor logic, one wake per event.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterator

from . import sse
from .events import Event, EventKey, IdClock, to_json
from .frame import Frame
from .ring import Ring
from .sockets import HubStats, SocketStreams
from .subscriber import Subscriber

__all__ = ["Hub", "HubStats"]


class Hub:
    def __init__(self, *, history_seconds: float = 3600, max_events: int | None = None, backlog: int = 64,
                 write_timeout: float = 10.0, heartbeat: float = 15.0, retry_ms: int = 2000,
                 send_buffer: int = 0, clock: IdClock | None = None,
                 wall: Callable[[], float] = time.time, max_seconds: float = 0.0,
                 now: Callable[[], float] = time.monotonic, rng: Callable[[], float] = random.random) -> None:
        # Four samples a second (the fastest interval) for the whole history,
        # plus room for notices and alerts.
        self.max_events = max_events or int(history_seconds * 4) + 1024
        self.backlog = backlog
        self.write_timeout = write_timeout
        self.heartbeat_seconds = heartbeat
        self.retry_ms = retry_ms
        # Streams end by themselves after 90-100 % of max_seconds (0: never), before a
        # platform's proxy cuts them, each at its own moment (see rotate()).
        self.max_seconds = max_seconds
        self.now, self.rng = now, rng
        self.clock, self.stats = clock or IdClock(), HubStats()
        self.ring = Ring(self.clock, history_seconds=history_seconds, max_events=self.max_events, wall=wall)
        self.sockets = SocketStreams(next_batch=self.next_batch, release=self.release, stats=self.stats,
                                     write_timeout=write_timeout, send_buffer=send_buffer)
        self._waiting: dict[Subscriber, None] = {}  # followers without a raw socket
        self.subscribers: dict[Subscriber, None] = {}
        self._heartbeat_wire = sse.chunk(sse.comment("heartbeat"))
        self._heartbeat_start = len(self._heartbeat_wire) - len(sse.comment("heartbeat")) - 2

    # ---- the buffer -------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ring)

    def frames(self) -> list[Frame]:
        return self.ring.frames()

    @property
    def catching_up(self) -> int:
        """Viewers being sent what they missed by a writer of their own (the rest are caught up)."""
        return len(self.sockets.catching_up)

    @property
    def head(self) -> Frame | None:
        return self.ring.head

    @property
    def floor(self) -> EventKey:
        """Every event with a key above this is still kept (a resume from it is exact)."""
        return self.ring.floor

    @floor.setter
    def floor(self, key: EventKey) -> None:
        # Set by whatever fills an empty hub from a store that keeps more (Redis).
        self.ring.floor = key

    def restore(self, events) -> list[tuple[Frame, str]]:
        """Fill the empty buffer with stored (key, type, data) events, oldest first (at start)."""
        return self.ring.restore(events)

    # ---- publishing ---------------------------------------------------------

    def publish(self, event: Event) -> Frame:
        """Encode event once and deliver it to every viewer."""
        return self.publish_raw(event.type, to_json(event.payload()))

    def publish_raw(self, type: str, data: str, key: EventKey | None = None) -> Frame:
        """Deliver already-encoded data (with an id assigned elsewhere, e.g. by Redis)."""
        frame = self.ring.append(type, data, key)
        self.stats.published += 1
        self.sockets.fan_out(frame.n, frame.wire, frame.body_at)
        for sub in self._waiting:
            sub.wake.set()
        if self.sockets.catching_up:
            self._drop_laggards()
        return frame

    def _lag(self, sub: Subscriber) -> int:
        """Events published since open that sub has not been given yet."""
        return self.ring.behind(sub.cursor, sub.floor_n)

    def _drop_laggards(self) -> None:
        for sub in [s for s in self.sockets.catching_up if self._lag(s) > self.backlog]:
            self.stats.dropped_slow += 1
            sub.broken = True
            self.close(sub, f"more than {self.backlog} events behind")

    def heartbeat(self) -> None:
        """A comment to every caught-up viewer: keeps routers from cutting idle streams
        and finds dead peers (a write is the only way to notice some of them)."""
        self.sockets.fan_out(self.ring.n, self._heartbeat_wire, self._heartbeat_start, count=False)

    def heartbeat_due(self) -> bool:
        return time.monotonic() - self.sockets.last_write >= self.heartbeat_seconds

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
        sub.cursor = sub.floor_n = self.ring.n
        if last_event_id is not None:
            resume = self.ring.resume_point(last_event_id)
            if isinstance(resume, int):
                sub.cursor = resume
            else:
                head = self.head
                parts.append(sse.frame(to_json(resume.payload()), event=resume.type,
                                       id=head.id if head else None))
        if self.max_seconds:
            sub.until = self.now() + self.max_seconds * (0.9 + 0.1 * self.rng())
        self.subscribers[sub] = None
        self.stats.opened += 1
        return sub, b"".join(parts)

    def jittered_retry(self) -> int:
        """retry_ms with +-50 % jitter: those sent away together come back spread out."""
        return int(self.retry_ms * (0.5 + self.rng()))

    def rotate(self) -> int:
        """End the streams whose time is up (STREAM_MAX_SECONDS), each with a jittered retry:
        the client comes back with Last-Event-ID and misses nothing. How many were ended."""
        if not self.max_seconds:
            return 0
        now = self.now()
        due = [sub for sub in self.subscribers if sub.until is not None and sub.until <= now and not sub.closed]
        for sub in due:
            self.close(sub, "stream rotated (STREAM_MAX_SECONDS)", retry_ms=self.jittered_retry())
        return len(due)

    def attach(self, sub: Subscriber) -> None:
        """Own sub's socket from here on (its head and preamble are sent); returns at once."""
        self.sockets.attach(sub)

    def abort(self, sub: Subscriber, reason: str) -> None:
        """sub's head or preamble could not be written: end it now, never attached
        (its socket is closed and its on_end runs, as for any owned stream)."""
        sub.owned = True
        sub.broken = True
        sub.reason = reason
        self.sockets.end(sub)

    def close(self, sub: Subscriber, reason: str, retry_ms: int | None = None) -> None:
        """End a viewer's stream (now if the hub owns its socket, else its greenlet finishes it);
        with retry_ms, its last bytes ask the client to come back after that long."""
        if retry_ms is not None and not sub.closed:
            farewell = sse.retry(retry_ms) + b"\n"  # a blank line: the field is read, no event dispatched
            sub.farewell = sse.chunk(farewell) if sub.chunked and sub.owned else farewell
        if sub.owned:
            self.sockets.close(sub, reason)
            return
        if sub.closed:
            return
        sub.closed = True
        sub.reason = sub.reason or reason
        sub.wake.set()

    def close_all(self, reason: str) -> int:
        subs = list(self.subscribers)
        for sub in subs:
            self.close(sub, reason)
        return len(subs)

    def release(self, sub: Subscriber) -> None:
        """Forget a viewer whose stream has ended (idempotent)."""
        sub.closed = True
        self._waiting.pop(sub, None)
        self.subscribers.pop(sub, None)
        self.sockets.forget(sub)

    def next_batch(self, sub: Subscriber) -> list[Frame] | None:
        """What sub must be sent next; None if it must be dropped (then it is closed, reason set)."""
        frames = self.ring.after(sub.cursor)
        if frames is None:
            self.stats.dropped_buffer += 1
            self.close(sub, "fell out of the buffer")
            return None
        if self._lag(sub) > self.backlog:
            self.stats.dropped_slow += 1
            self.close(sub, f"more than {self.backlog} events behind")
            return None
        return frames

    def iter_frames(self, sub: Subscriber) -> Iterator[bytes]:
        """Follow the stream through a WSGI iterator (no raw socket available)."""
        heartbeat = sse.comment("heartbeat")
        try:
            while not sub.closed:
                frames = self.next_batch(sub)
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
            if sub.farewell:
                yield sub.farewell
        finally:
            self.release(sub)
