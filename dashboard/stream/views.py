"""The hosts this process shows: for each, its hub, chart history and latest sample.

Without Redis there is one view, of this host, fed by this process's sampler.
With it, another host's view is made the first time someone asks for it, filled
from the shared store by whatever follows it (`Remote`, the fleet), and
forgotten after IDLE_VIEW_SECONDS without a viewer.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Protocol

import gevent
import gevent.event

from ..periodic import Every
from .admission import Admission
from .container_history import ContainerHistory
from .events import EventKey, to_json
from .frame import Frame
from .history import History
from .history_cache import HistoryCache
from .hub import Hub
from .subscriber import Subscriber
from .wire import decode

# A followed remote host with no viewer for this long is dropped from memory.
IDLE_VIEW_SECONDS = 600


class HostView:
    """What this process keeps of one host: its event buffer, chart history, latest sample."""

    def __init__(self, name: str, config: dict) -> None:
        self.name = name
        self.hub = Hub(
            history_seconds=config["HISTORY_SECONDS"],
            backlog=config["VIEWER_BACKLOG"],
            write_timeout=config["VIEWER_WRITE_TIMEOUT"],
            heartbeat=config["HEARTBEAT_SECONDS"],
            retry_ms=config["SSE_RETRY_MS"],
            send_buffer=config["VIEWER_SEND_BUFFER"],
            max_seconds=config.get("STREAM_MAX_SECONDS", 0.0),
        )
        self.history = History(config["HISTORY_SECONDS"])
        self.containers = ContainerHistory(config["HISTORY_SECONDS"])  # the container charts
        self.history_cache = HistoryCache()  # /api/history (and container history) answers, until the next sample
        self.latest: dict | None = None
        self._snapshot: tuple[dict, str] | None = None  # (sample, its plain JSON) for /api/snapshot
        self.latest_at: float | None = None  # monotonic, when the latest sample arrived
        self.used_at = time.monotonic()
        self.ready = gevent.event.Event()
        self.ready.set()
        # Where each event also goes to last (the embedded store), if anywhere.
        self.keep: Callable[[EventKey, str, str], None] | None = None

    def restore(self, events: list[tuple[EventKey, str, str]]) -> int:
        """Reload a stored event buffer (at start): the hub, the chart history and
        the latest sample. Returns the `seq` of the newest sample (0 if none)."""
        seq = 0
        for frame, data in self.hub.restore(events):
            if frame.type != "metrics":
                continue
            try:
                sample = decode(data)
            except ValueError:
                continue
            self.history.add(frame.id, sample)
            self.containers.add(sample)
            self.latest = sample
            if isinstance(sample.get("seq"), int):
                seq = max(seq, sample["seq"])
        return seq

    def ingest(self, type: str, data: str, key: EventKey | None = None,
               sample: dict | None = None) -> Frame | None:
        """One event, encoded once, into this view (None if older than what it has)."""
        try:
            frame = self.hub.publish_raw(type, data, key)
        except ValueError:
            # Older than what these viewers already have (entries written while
            # this process was cut off from Redis and showed local samples).
            return None
        if self.keep is not None:
            self.keep(frame.key, type, data)
        if type == "metrics":
            if sample is None:  # another host's, or read back: the wire form, decoded once here
                try:
                    sample = decode(data)
                except ValueError:
                    return frame
            self.history.add(frame.id, sample)
            self.containers.add(sample)
            self.latest, self.latest_at = sample, time.monotonic()
        return frame

    def snapshot_json(self) -> str | None:
        """The latest sample as the API shows it (the plain JSON of the dict, not the
        wire form), encoded at most once per sample, when someone first asks."""
        sample = self.latest
        if sample is None:
            return None
        if self._snapshot is None or self._snapshot[0] is not sample:
            self._snapshot = (sample, to_json(sample))
        return self._snapshot[1]


class Remote(Protocol):
    """Whatever fills views of other hosts (the fleet, with Redis)."""

    def knows(self, host: str) -> bool: ...
    def follow(self, view: HostView) -> None: ...  # raises StoreUnavailable
    def unfollow(self, host: str) -> None: ...


class Views:
    def __init__(self, host: str, config: dict) -> None:
        self.config = config
        self.local = HostView(host, config)
        self._views: dict[str, HostView] = {host: self.local}
        self.remote: Remote | None = None
        # New streams of every view pass here (a restart's storm: see admission.py).
        self.admission = Admission(config.get("STREAM_OPENS_PER_SECOND", 0))

    def __iter__(self) -> Iterator[HostView]:
        return iter(list(self._views.values()))

    def names(self) -> list[str]:
        return list(self._views)

    def get(self, host: str) -> HostView | None:
        return self._views.get(host)

    def view(self, host: str | None = None) -> HostView:
        """The view of host (this one by default); KeyError for a host nobody has heard of."""
        if not host or host == self.local.name:
            self.local.ready.wait(10)
            return self.local
        existing = self._views.get(host)
        if existing is not None:
            existing.ready.wait(10)
            existing.used_at = time.monotonic()
            return existing
        if self.remote is None or not self.remote.knows(host):
            raise KeyError(host)
        view = HostView(host, self.config)
        view.ready.clear()
        self._views[host] = view
        try:
            self.remote.follow(view)
        except Exception:
            del self._views[host]
            raise
        finally:
            view.ready.set()
        return view

    def ingest(self, host: str, type: str, data: str, key: EventKey | None = None,
               sample: dict | None = None) -> Frame | None:
        view = self._views.get(host)
        return None if view is None else view.ingest(type, data, key, sample)

    def streams(self) -> list[Subscriber]:
        return [sub for view in self for sub in view.hub.subscribers]

    def close_login(self, login: str, reason: str) -> int:
        """End every stream opened by one login (at logout)."""
        hit = [(view.hub, sub) for view in self for sub in view.hub.subscribers if sub.login == login]
        for hub, sub in hit:
            hub.close(sub, reason)
        return len(hit)

    def close_all(self, reason: str) -> int:
        return sum(view.hub.close_all(reason) for view in self)

    def heartbeats(self) -> None:
        """Forever: a heartbeat to each quiet stream, long streams rotated, idle remote views forgotten."""
        period = min(1.0, self.local.hub.heartbeat_seconds / 2)
        Every(period, self.upkeep, name="stream heartbeats").run()

    def upkeep(self) -> None:
        """One round of `heartbeats` (streams whose STREAM_MAX_SECONDS is up end here too)."""
        now = time.monotonic()
        for view in self:
            view.hub.rotate()
            if view.hub.heartbeat_due():
                view.hub.heartbeat()
            if view.hub.subscribers:
                view.used_at = now
            elif view is not self.local and now - view.used_at > IDLE_VIEW_SECONDS:
                del self._views[view.name]
                if self.remote is not None:
                    self.remote.unfollow(view.name)
