"""The viewers' sockets after their head: held by the hub, with no greenlet each.

Once a stream's head and preamble are written, the web server's request ends
and the hub keeps the connection (a duplicate of its descriptor). A caught-up
viewer is then nothing but a socket, a readable watcher and its Subscriber:
`publish` writes to it directly (hub.py). A greenlet exists only while a viewer
has something to catch up on (a resume, a partial write); it is spawned for
that, shallow, and ends when the viewer is caught up again. So a thousand
idle viewers cost a thousand small objects, not a thousand parked request
stacks with their environs, parsers and frames.

A viewer ends here in one place (`end`): it leaves the hub, its socket gets
the final chunk when it can take it and is closed, and its `on_end` callback
runs (the web layer logs the stream and frees the client's connection slot).
"""

from __future__ import annotations

import logging
import socket as _socket
from typing import TYPE_CHECKING

import gevent

from .subscriber import Subscriber

if TYPE_CHECKING:
    from .hub import Hub

log = logging.getLogger(__name__)

# Bytes written to a catching-up viewer in one write.
BATCH_BYTES = 256 * 1024
_LAST_CHUNK = b"0\r\n\r\n"


class SocketStreams:
    def __init__(self, hub: "Hub") -> None:
        self.hub = hub
        self.loop = None

    def attach(self, sub: Subscriber) -> None:
        """Take over sub's socket (its head and preamble already sent)."""
        hub, sock = self.hub, sub.sock
        sock.settimeout(hub.write_timeout)
        if hub.send_buffer:
            # A fixed kernel buffer per viewer: a reader that stops is noticed
            # after this much (then after `backlog` events), and 10,000 stalled
            # viewers cannot pin megabytes of kernel memory each.
            try:
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, hub.send_buffer)
            except OSError:
                pass
        if self.loop is None:
            self.loop = gevent.get_hub().loop
        sub.owned = True
        sub.watcher = self.loop.io(sock.fileno(), 1)
        sub.watcher.start(self._on_readable, sub)
        self.behind(sub)

    def behind(self, sub: Subscriber) -> None:
        """sub is not caught up (or has a partial write): give it a writer."""
        if sub.writer is None and not sub.closed:
            sub.writer = gevent.spawn(self._catch_up, sub)

    def _catch_up(self, sub: Subscriber) -> None:
        hub, sock = self.hub, sub.sock
        try:
            while not sub.closed:
                hub._slow[sub] = None
                if sub.pending is not None:
                    data, sub.pending = sub.pending, None
                    sock.sendall(data)
                    sub.bytes += len(data)
                frames = hub._next_batch(sub)
                if frames is None or sub.closed:
                    break
                if not frames:
                    # Caught up: from now on publish() writes to it directly.
                    # No switch between the check and the move, so nothing is missed.
                    del hub._slow[sub]
                    hub._fast[sub] = None
                    sub.writer = None
                    return
                self._write_batch(sub, frames)
        except _socket.timeout:
            hub.stats.dropped_slow += 1
            sub.reason = sub.reason or f"write blocked for {hub.write_timeout:g}s"
            sub.broken = True
        except OSError as exc:
            sub.reason = sub.reason or f"write failed: {exc.strerror or exc}"
            sub.broken = True
        sub.writer = None
        self.end(sub)

    @staticmethod
    def _write_batch(sub: Subscriber, frames) -> None:
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

    def _on_readable(self, sub: Subscriber) -> None:
        # Runs in the event loop. An SSE client never sends after its request,
        # so readability means it closed (EOF or reset) or broke protocol:
        # either way its stream ends now rather than at the next failed write.
        # The ending itself (a write, a log line) runs in a greenlet, not here.
        if sub.watcher is not None:
            sub.watcher.stop()
        self.hub._fast.pop(sub, None)
        sub.broken = True
        gevent.spawn(self.hub.close, sub, "client closed the connection")

    def close(self, sub: Subscriber) -> None:
        """hub.close() of an owned viewer: end it now, or let its writer end it."""
        if sub.writer is None:
            self.end(sub)
        else:
            # Its writer may be blocked in a write: shutting the socket down
            # makes that write fail now instead of at the write timeout.
            try:
                sub.sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass

    def end(self, sub: Subscriber) -> None:
        """The one way an owned stream ends (idempotent)."""
        if sub.ended:
            return
        sub.ended = True
        sub.closed = True
        self.hub.release(sub)
        sock = sub.sock
        if sub.chunked and not sub.broken and sub.pending is None:
            try:  # the end of the chunked body, if the socket takes it at once
                sock.send(_LAST_CHUNK, 0, 0.0)
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
