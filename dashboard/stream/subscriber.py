"""One open /events stream: its socket, its position in the hub's ring, its counters.

It is all a caught-up viewer costs once the hub owns its socket (sockets.py),
hence the slots.
"""

from __future__ import annotations

import time

from gevent.event import Event as _Flag


class Subscriber:
    """One open /events stream."""

    __slots__ = (
        "sock",
        "chunked",
        "cursor",
        "floor_n",
        "pending",
        "closed",
        "reason",
        "wake",
        "addr",
        "since",
        "events",
        "bytes",
        "watcher",
        "owned",
        "writer",
        "broken",
        "ended",
        "on_end",
        "host",
        "client",
        "login",
        "farewell",
        "until",
    )

    def __init__(self, sock, chunked: bool, addr: str, host: str | None, client: str | None = None,
                 login: str | None = None) -> None:
        self.sock = sock
        self.chunked = chunked
        self.cursor = 0  # n of the last frame this viewer has been given
        self.floor_n = 0  # backlog is counted from here (events published after open)
        self.pending: memoryview | None = None  # rest of a partial fast-path write
        self.closed = False
        self.reason: str | None = None
        self.wake = _Flag()
        self.addr = addr
        self.host = host
        self.since = time.time()
        self.events = 0
        self.bytes = 0
        self.watcher = None  # readable watcher of an owned socket (EOF = gone)
        self.owned = False  # the hub writes to and closes this socket itself
        self.writer = None  # the greenlet catching it up, while there is one
        self.broken = False  # no final chunk: the peer is gone or a write failed
        self.ended = False
        self.on_end = None  # called once with the Subscriber when an owned stream ends
        self.client = client  # a name the page gave its stream (for `drop sse`)
        self.login = login  # the login session that opened it (logout ends it)
        self.until: float | None = None  # monotonic time the stream is rotated at (STREAM_MAX_SECONDS)
        self.farewell: bytes | None = None  # wire bytes sent just before the final chunk (a drain's retry:)
