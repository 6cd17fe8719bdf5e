"""The event ring: the frames a hub keeps, their ids, and where a resume starts.

Frames are numbered from 1 as they arrive (`n`, contiguous, so a viewer's
position is one int and a lookup is an index); each also has its event id
(`key`), strictly increasing. Frames leave from the old end when they are
older than the history window or past `max_events`. The `floor` is the key
below which events are gone: every event with a key above it is still here,
which is what lets a Last-Event-ID resume exactly, or say why it cannot.

Nothing here knows viewers or sockets; it is plain data and arithmetic.
"""

from __future__ import annotations

import bisect
import time
from typing import Callable

from .events import EventKey, IdClock, Resync, format_id, parse_id
from .frame import Frame


class Ring:
    """The kept frames, oldest first, numbered from 1."""

    def __init__(self, clock: IdClock, *, history_seconds: float, max_events: int,
                 wall: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.history_ms = int(history_seconds * 1000)
        self.max_events = max_events
        self.wall = wall  # what "now" is for the history window (seconds)
        self._buf: list[Frame | None] = []
        self._start = 0  # index in _buf of the oldest frame kept
        self.n = 0  # n of the newest frame
        # Every event with a key above the floor is still in the buffer.
        self.floor: EventKey = clock.next()

    def __len__(self) -> int:
        return len(self._buf) - self._start

    def frames(self) -> list[Frame]:
        return self._buf[self._start :]  # type: ignore[return-value]

    @property
    def head(self) -> Frame | None:
        return self._buf[-1] if len(self) else None

    def append(self, type: str, data: str, key: EventKey | None = None) -> Frame:
        """Frame one event (with the next id, or `key` assigned elsewhere) and keep it."""
        if key is None:
            key = self.clock.next()
        else:
            head = self.head
            if key <= (head.key if head else self.floor):
                raise ValueError(f"event id {format_id(key)} is not above the stream's head")
            self.clock.observe(key)
        self.n += 1
        frame = Frame(self.n, key, type, data)
        self._buf.append(frame)
        self._evict(int(self.wall() * 1000))
        return frame

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

    def after(self, n: int) -> list[Frame] | None:
        """Frames newer than n, or None when some of them were already evicted."""
        if not len(self):
            return []
        first = self._buf[self._start].n
        if n + 1 < first:
            return None
        return self._buf[self._start + n + 1 - first :]  # type: ignore[return-value]

    def behind(self, cursor: int, since: int) -> int:
        """Frames after both `cursor` (last given) and `since` (a viewer's open)."""
        return self.n - max(cursor, since)

    def restore(self, events) -> list[tuple[Frame, str]]:
        """Fill the empty ring with stored (key, type, data) events, oldest first (at start)."""
        assert not len(self), "restore() is only for an empty buffer"
        kept: list[tuple[Frame, str]] = []
        for key, type, data in events:
            if not kept or key > kept[-1][0].key:
                self.n += 1
                kept.append((Frame(self.n, key, type, data), data))
                self._buf.append(kept[-1][0])
        if kept:  # ids go on from the newest; nothing lies between the floor and the first
            first = kept[0][0].key
            self.floor = (first[0], first[1] - 1) if first[1] else (first[0] - 1, 10**12)
            self.clock.observe(kept[-1][0].key)
        return kept

    def resume_point(self, last_event_id: str) -> int | Resync:
        """The n a viewer that last saw `last_event_id` continues after, or why it cannot."""
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
        return frames[i - 1].n if i else self.n - len(frames)
