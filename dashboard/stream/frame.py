"""One event encoded once: its SSE bytes inside an HTTP/1.1 chunk, shared by every viewer."""

from __future__ import annotations

from . import sse
from .events import EventKey, format_id


class Frame:
    """One encoded event: its SSE bytes inside an HTTP/1.1 chunk."""

    __slots__ = ("n", "key", "id", "type", "wire", "body_at", "ms")

    def __init__(self, n: int, key: EventKey, type: str, data: str) -> None:
        self.n = n  # position in this hub (contiguous, for O(1) lookups)
        self.key = key
        self.id = format_id(key)
        self.type = type
        self.ms = key[0]
        body = sse.frame(data, event=type, id=self.id)
        self.wire = sse.chunk(body)
        self.body_at = len(self.wire) - len(body) - 2  # where the SSE bytes start in wire

    @property
    def body(self) -> memoryview:
        """The SSE bytes without chunk framing (for HTTP/1.0 peers), zero-copy."""
        return memoryview(self.wire)[self.body_at : len(self.wire) - 2]
