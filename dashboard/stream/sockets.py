"""The viewers' sockets after their head: caught-up and catching-up viewers, no greenlet each.

Once a stream's head and preamble are written, the web server's request ends
and the hub keeps the connection (a duplicate of its descriptor). A viewer
then lives here in one of two states, and moves between them only here:

- caught up (`caught_up`): nothing but a socket, a readable watcher and its
  Subscriber. `fan_out` writes each new frame to all of them with one
  non-blocking send each, in the publishing greenlet. A viewer whose socket
  cannot take a whole frame leaves this set at once.
- catching up (`catching_up`): a writer greenlet, spawned for it, finishes
  the partial write and sends what it missed, batch by batch, as the ring
  gives them (`next_batch`); it ends when the viewer is caught up again.

So a thousand idle viewers cost a thousand small objects, not a thousand
parked request stacks with their environs, parsers and frames.

The third state is ended, reached in one place (`end`): the hub forgets the
viewer (`release`), its socket gets the final chunk when it can take it and
is closed, and its `on_end` callback runs (the web layer logs the stream and
frees the client's connection slot). This module knows no ring and no hub:
it is given `next_batch` and `release` as callables.
"""

from __future__ import annotations

import logging
import socket as _socket
import time
from dataclasses import dataclass
from typing import Callable

import gevent

from .frame import Frame
from .subscriber import Subscriber

log = logging.getLogger(__name__)

# Bytes written to a catching-up viewer in one write.
BATCH_BYTES = 256 * 1024
_LAST_CHUNK = b"0\r\n\r\n"


@dataclass
class HubStats:  # counters for status and /metrics
    published: int = 0
    dropped_slow: int = 0
    dropped_buffer: int = 0
    opened: int = 0


class SocketStreams:
    def __init__(self, *, next_batch: Callable[[Subscriber], list[Frame] | None],
                 release: Callable[[Subscriber], None], stats: HubStats, write_timeout: float,
                 send_buffer: int = 0) -> None:
        # next_batch(sub): the frames sub must be sent next, [] when it is caught
        # up, None when it must be dropped (then it has been closed, reason set).
        self.next_batch = next_batch
        self.release = release  # release(sub): the hub forgets an ended viewer
        self.stats = stats
        self.write_timeout = write_timeout
        self.send_buffer = send_buffer
        self.caught_up: dict[Subscriber, None] = {}
        self.catching_up: dict[Subscriber, None] = {}
        self.last_write = time.monotonic()  # when fan_out last wrote (heartbeats are due after a quiet spell)
        self.loop = None

    # ---- caught up: written to by the publisher -----------------------------

    def fan_out(self, n: int, wire: bytes, start: int, count: bool = True) -> None:
        """Offer wire (or its unchunked part, from `start`) to every caught-up viewer, without blocking."""
        body = None
        trouble: list[Subscriber] = []
        # No greenlet switch happens in this loop (non-blocking sends; Event.set
        # only schedules), so the dict cannot change under it.
        for sub in self.caught_up:
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
            del self.caught_up[sub]
            self.behind(sub)

    # ---- taking a socket over ------------------------------------------------

    def attach(self, sub: Subscriber) -> None:
        """Take over sub's socket (its head and preamble already sent)."""
        sock = sub.sock
        sock.settimeout(self.write_timeout)
        if self.send_buffer:
            # A fixed kernel buffer per viewer: a reader that stops is noticed
            # after this much (then after `backlog` events), and 10,000 stalled
            # viewers cannot pin megabytes of kernel memory each.
            try:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, self.send_buffer)
            except OSError:
                pass
        if self.loop is None:
            self.loop = gevent.get_hub().loop
        sub.owned = True
        sub.watcher = self.loop.io(sock.fileno(), 1)
        sub.watcher.start(self._on_readable, sub)
        if sub.writer is None and not sub.closed and sub.pending is None:
            # The usual open has nothing to catch up on: caught up at once, with no
            # greenlet spawned and switched to only to find that out (some 7 % of an
            # open's CPU). No switch between this check and the move, as in _catch_up.
            frames = self.next_batch(sub)
            if frames is None:
                self.end(sub)  # dropped (closed, reason set) by next_batch
                return
            if not frames and not sub.closed:
                self.caught_up[sub] = None
                return
        self.behind(sub)

    # ---- catching up: a writer greenlet while there is something to send ------

    def behind(self, sub: Subscriber) -> None:
        """sub is not caught up (or has a partial write): give it a writer."""
        if sub.writer is None and not sub.closed:
            sub.writer = gevent.spawn(self._catch_up, sub)

    def _catch_up(self, sub: Subscriber) -> None:
        sock = sub.sock
        try:
            while not sub.closed:
                self.catching_up[sub] = None
                if sub.pending is not None:
                    data, sub.pending = sub.pending, None
                    sock.sendall(data)
                    sub.bytes += len(data)
                frames = self.next_batch(sub)
                if frames is None or sub.closed:
                    break
                if not frames:
                    # Caught up: from now on fan_out() writes to it directly.
                    # No switch between the check and the move, so nothing is missed.
                    del self.catching_up[sub]
                    self.caught_up[sub] = None
                    sub.writer = None
                    return
                self._write_batch(sub, frames)
        except _socket.timeout:
            self.stats.dropped_slow += 1
            sub.reason = sub.reason or f"write blocked for {self.write_timeout:g}s"
            sub.broken = True
        except OSError as exc:
            sub.reason = sub.reason or f"write failed: {exc.strerror or exc}"
            sub.broken = True
        sub.writer = None
        self.end(sub)

    @staticmethod
    def _write_batch(sub: Subscriber, frames: list[Frame]) -> None:
        out: list = []
        size = 0
        for frame in frames:
            data = frame.wire if sub.chunked else frame.body
            out.append(data)
            size += len(data)
            sub.cursor = frame.n
            sub.events += 1
            if size >= BATCH_BYTES:
                break
        sub.sock.sendall(b"".join(out))
        sub.bytes += size

    # ---- ending -----------------------------------------------------------------

    def _on_readable(self, sub: Subscriber) -> None:
        # Runs in the event loop. An SSE client never sends after its request,
        # so readability means it closed (EOF or reset) or broke protocol:
        # either way its stream ends now rather than at the next failed write.
        # The ending itself (a write, a log line) runs in a greenlet, not here.
        if sub.watcher is not None:
            sub.watcher.stop()
        self.caught_up.pop(sub, None)
        sub.broken = True
        gevent.spawn(self.close, sub, "client closed the connection")

    def close(self, sub: Subscriber, reason: str) -> None:
        """End an owned viewer's stream: now, or (if its writer is busy) through its writer."""
        if sub.closed:
            return
        sub.closed = True
        sub.reason = sub.reason or reason
        self.caught_up.pop(sub, None)
        if sub.writer is None:
            self.end(sub)
        else:
            # Its writer may be blocked in a write: shutting the socket down
            # makes that write fail now instead of at the write timeout.
            try:
                sub.sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def forget(self, sub: Subscriber) -> None:
        """Leave both sets and stop watching the socket (part of the hub's release)."""
        self.caught_up.pop(sub, None)
        self.catching_up.pop(sub, None)
        if sub.watcher is not None:
            sub.watcher.stop()
            sub.watcher.close()
            sub.watcher = None

    def end(self, sub: Subscriber) -> None:
        """The one way an owned stream ends (idempotent)."""
        if sub.ended:
            return
        sub.ended = True
        sub.closed = True
        self.release(sub)
        sock = sub.sock
        if not sub.broken and sub.pending is None:
            tail = (sub.farewell or b"") + (_LAST_CHUNK if sub.chunked else b"")
            try:  # a farewell (retry:) and the end of the chunked body, if the socket takes them at once
                if tail:
                    sock.send(tail, 0, 0.0)
            except OSError:
                pass
        try:
            sock.close()
        except OSError:
            pass
        if sub.on_end is not None:
            try:
                sub.on_end(sub)
            except Exception:
                log.exception("stream end callback failed")
