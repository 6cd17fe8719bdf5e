"""Typed events on the stream, and their ids.

Event ids have the form "<milliseconds>-<sequence>", the form Redis Stream
entry ids have. They grow strictly, they stay comparable across restarts (the
clock keeps moving, unlike a counter that starts at 0 again), and when several
processes share a Redis stream the very same ids work everywhere.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar

_ID = re.compile(r"(\d{1,15})-(\d{1,12})")

EventKey = tuple[int, int]


def parse_id(text: str | None) -> EventKey | None:
    """The sortable key of an event id, or None if text is not one."""
    if not text:
        return None
    m = _ID.fullmatch(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def format_id(key: EventKey) -> str:
    return f"{key[0]}-{key[1]}"


class IdClock:
    """Hands out strictly increasing ids from wall-clock milliseconds.

    When the clock stands still or steps back, the sequence part grows instead,
    exactly as Redis does for stream ids.
    """

    def __init__(self, time_fn: Callable[[], float] = time.time) -> None:
        self._time = time_fn
        self._last: EventKey = (0, 0)

    def next(self) -> EventKey:
        ms = int(self._time() * 1000)
        last_ms, last_seq = self._last
        key = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        self._last = key
        return key

    def observe(self, key: EventKey) -> None:
        """Never hand out an id at or below `key` (an id seen from elsewhere)."""
        if key > self._last:
            self._last = key


def to_json(payload: Any) -> str:
    """Compact JSON; NaN and infinities (which JSON lacks) become null.

    Every event's data but the metrics event's, whose compact form is
    `wire.encode` (this plain form is what the API answers with)."""
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(payload), separators=(",", ":"), ensure_ascii=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class Event:
    """Base of every event type; `type` is the SSE `event:` field."""

    type: ClassVar[str] = "message"

    def payload(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Config(Event):
    """Shared settings changed: sampling interval, pause, or the alert rules."""

    type: ClassVar[str] = "config"
    interval: float
    paused: bool
    alerts: list = field(default_factory=list)
    change: str = ""
    by: str | None = None
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Alert(Event):
    """An alert rule started firing or resolved."""

    type: ClassVar[str] = "alert"
    rule: dict
    host: str
    state: str  # firing, resolved
    value: float | None
    message: str
    ts: float = field(default_factory=time.time)
    container: dict | None = None  # a container rule's container: its figures when it changed

    def payload(self) -> dict:
        out = asdict(self)
        if out["container"] is None:
            del out["container"]  # a host rule's event is as it always was
        return out


@dataclass(frozen=True)
class Notice(Event):
    """A message for every dashboard (an operator's broadcast, a lifecycle notice)."""

    type: ClassVar[str] = "notice"
    message: str
    by: str | None = None
    level: str = "info"
    ts: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Resync(Event):
    """Sent first when a stream cannot resume from the client's Last-Event-ID.

    The client should reload history (/api/history) and then follow the live
    stream. `reason` is "invalid" (not an event id), "stale" (older than the
    buffer) or "unknown" (newer than anything this server has seen).
    """

    type: ClassVar[str] = "resync"
    reason: str
    last_event_id: str | None
    oldest: str | None
    latest: str | None
