"""One soak viewer: an SSE connection (sse_viewer.Viewer's parsing) that checks
what a resume must give: after `Last-Event-ID`, the next `seq`, no gap, no
duplicate, no `resync`; and counts a stream the server ended as an anomaly."""

from __future__ import annotations

import asyncio
import re

from .soak_conn import Counts
from .sse_viewer import DONE, Stats, Viewer

_SEQ = re.compile(rb'"seq":\s*([0-9]+)')
_REASON = re.compile(rb'"reason":\s*"([a-z_]+)"')


class SoakViewer(Viewer):
    """One /events connection: sse_viewer's parsing, with resume and gap checks."""

    def __init__(self, stats: Stats, counts: Counts, request: bytes, last_seq: int | None,
                 last_id: bytes | None) -> None:
        super().__init__(stats, request)
        self.counts = counts
        self.resumed = last_seq is not None
        self.last_seq = last_seq
        self.last_id = last_id
        self.first_metrics = True
        self.leaving = False
        self.done = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc) -> None:
        self.state = DONE
        if not self.leaving:
            if self.connected:
                self.counts.anomaly("viewer: stream ended by the server"
                                    + ("" if exc is None else f" ({type(exc).__name__})"))
            elif exc is not None:
                self.counts.anomaly(f"viewer: connection lost before the head: {exc}")
        if not self.done.done():
            self.done.set_result(None)

    def _fail(self, why: str) -> None:
        self.counts.anomaly(f"viewer: {why}")
        self.leaving = True  # not the server ending the stream: we close it
        super()._fail(why)

    def _event(self, text, start: int, end: int, now: float) -> None:
        block = bytes(text[start:end])
        etype, has_data = b"message", False
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                has_data = True
            elif line.startswith(b"event:"):
                etype = line[6:].strip()
            elif line.startswith(b"id:"):
                self.last_id = line[3:].strip()
        c = self.counts
        if not has_data:
            c.add("viewer comments")
            return
        c.add("viewer events")
        if etype == b"metrics":
            m = _SEQ.search(block)
            if m is None:
                c.anomaly("viewer: metrics event without seq")
                return
            seq = int(m.group(1))
            if self.last_seq is not None:
                where = "after a resume" if self.first_metrics and self.resumed else "within a stream"
                if seq > self.last_seq + 1:
                    c.anomaly(f"viewer: seq gap {where}")
                    c.add("viewer seqs missed", seq - self.last_seq - 1)
                elif seq <= self.last_seq:
                    c.anomaly(f"viewer: duplicate or old seq {where}")
                elif self.first_metrics and self.resumed:
                    c.add("viewer resumes without a gap")
            self.last_seq = seq
            self.first_metrics = False
        elif etype == b"notice":
            c.add("viewer notices")
        elif etype == b"resync":
            m = _REASON.search(block)
            c.anomaly(f"viewer: resync {m.group(1).decode() if m else '?'}")
        else:
            c.add(f"viewer {etype.decode(errors='replace')[:20]} events")
