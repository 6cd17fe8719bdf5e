"""The fleet at a glance: every host's summary, and a hub of what changed, once a second.

Summaries come in as they are made (this process's sampler) or read (the fleet
reader, from Redis), each with the fields that changed. `flush` (once a
second) works out each host's state (up, stale, paused, alerts) and publishes
one `fleet` event carrying only the hosts and fields that changed since the
previous one: {"hosts": {name: {field: value}}} (`ts` is only in /api/fleet). Its id is the id of the newest
Redis change it includes, the same in every web process, so a viewer resumes
on any of them with Last-Event-ID; an event that only marks hosts stale (no
change read) takes the hub's own next id. A viewer that cannot resume gets a
`resync` event and reloads /api/fleet.
"""

from __future__ import annotations

import time
from typing import Callable

from .events import EventKey, IdClock, format_id, to_json
from .hub import Hub


def state_of(summary: dict, now: float, stale_seconds: float) -> str:
    """up, stale, paused or alerts (firing), worst reason first."""
    interval = float(summary.get("interval") or 1)
    if now - float(summary.get("ts") or 0) > max(stale_seconds, 3 * interval):
        return "stale"
    if summary.get("firing"):
        return "alerts"
    if summary.get("paused"):
        return "paused"
    return "up"


class FleetBoard:
    def __init__(self, config: dict, *, stale_seconds: float, wall: Callable[[], float] = time.time) -> None:
        self.stale_seconds = stale_seconds
        self.wall = wall
        self.hub = Hub(history_seconds=600, max_events=1200, backlog=config["VIEWER_BACKLOG"],
                       write_timeout=config["VIEWER_WRITE_TIMEOUT"], heartbeat=config["HEARTBEAT_SECONDS"],
                       retry_ms=config["SSE_RETRY_MS"], send_buffer=config["VIEWER_SEND_BUFFER"], clock=IdClock(wall), wall=wall)
        self.hosts: dict[str, dict] = {}
        self._pending: dict[str, dict] = {}
        self._key: EventKey | None = None  # of the newest change read and not yet published
        self.flushes = 0

    def update(self, host: str, changed: dict, key: EventKey | None = None) -> None:
        """One host's changed fields (key: the Redis id of that change, if read from there)."""
        self.hosts.setdefault(host, {"name": host}).update(changed)
        # Viewers are not sent `ts` (it changes with every sample, and the state says
        # what it means): a thousand hosts' timestamps would be a fifth of each event.
        shown = {k: v for k, v in changed.items() if k != "ts"}
        if shown:
            self._pending.setdefault(host, {}).update(shown)
        if key is not None:
            self._key = key

    def fill(self, summaries: dict[str, dict], key: EventKey | None) -> None:
        """Everything Redis holds (at connect): what changed since this process last knew goes out."""
        for host, summary in summaries.items():
            old = self.hosts.get(host, {})
            changed = {k: v for k, v in summary.items() if old.get(k, ...) != v}
            if changed:
                self.update(host, changed)
        if key is None:
            return
        if not len(self.hub):
            # The first event says "everything up to `key`": just below it, nothing is kept.
            self.hub.floor = (key[0], key[1] - 1) if key[1] else (key[0] - 1, 10**12)
        self._key = max(key, self._key or key)

    def flush(self) -> None:
        """Publish what changed since the last flush, if anything (call once a second)."""
        now = self.wall()
        for host, summary in self.hosts.items():
            state = state_of(summary, now, self.stale_seconds)
            if state != summary.get("state"):
                summary["state"] = state
                self._pending.setdefault(host, {})["state"] = state
        if not self._pending:
            return
        data = to_json({"hosts": self._pending})
        key, self._pending, self._key = self._key, {}, None
        head = self.hub.head
        if key is not None and key <= (head.key if head else self.hub.floor):
            key = None  # a stale-only event took an id past it: go on from there
        self.hub.publish_raw("fleet", data, key)
        self.flushes += 1

    def tick(self) -> None:
        """One second's work: the flush, and a heartbeat to quiet viewers."""
        self.flush()
        if self.hub.heartbeat_due():
            self.hub.heartbeat()

    def snapshot(self) -> dict:
        """/api/fleet: every host with its state, and the id to follow the stream from."""
        self.flush()  # the answer and the id agree
        head = self.hub.head
        return {"last_event_id": head.id if head else format_id(self.hub.floor),
                "stale_seconds": self.stale_seconds,
                "hosts": {name: dict(s) for name, s in sorted(self.hosts.items())}}
