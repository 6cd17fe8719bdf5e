"""Sharing through Redis: many workers, many dynos, many hosts.

With REDIS_URL set, one process per host samples it (whoever holds the host's
lease in Redis; the lease expires within seconds when its holder dies, and
another process takes over), and appends each sample to the host's Redis
stream, and its fleet summary to one hash and one stream of changes. Global
events (config, notices, alerts) are written once to one stream. Every web
process reads the streams it serves, the global events and the fleet's changes
with one reader (one connection, however many viewers) and feeds them into its
own hubs and its fleet board, so event ids are the streams' ids, the same in
every process: a viewer can resume on another worker or dyno. Shared settings and alert rules live in Redis; a
change is announced on a channel every sampler listens to, and console pushes
travel on another channel to every console everywhere.

When Redis cannot be reached (at start or later), the process says so, serves
its own host's metrics locally, refuses commands it cannot record, and keeps
reconnecting with backoff; once Redis answers, sharing resumes.

`HostSampling` (lease.py) is the sampler-under-lease part; the agent
(dashboard/agent.py) runs one in a loop of its own, without gevent, and no
`Fleet` (it serves nobody).
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Callable

import gevent

from ..store import chart_minutes, redis_minutes
from ..store.audit import StoreUnavailable
from ..store.fleet_store import FleetStore
from ..store.redis_store import RedisStore
from ..store.redis_trouble import REFUSALS, redacted, refuses_writes, trouble_words
from ..stream.events import Event, EventKey, parse_id
from ..stream.fleet_board import FleetBoard
from ..stream.views import HostView, Views
from .lease import HostSampling, new_holder, publish_everywhere

log = logging.getLogger("dashboard.fleet")


# A host's entries and the global events share each view's ids: both are Redis
# ids (milliseconds, sequence) from two streams. Within one millisecond a host's
# entries come first and the global ones after them (their sequence offset by
# GLOBAL_SEQ), so two entries never get the same id and a sample is shown before
# the alert it caused, whatever the two streams' sequence numbers were. Most ids
# end in -0 as before.
GLOBAL_SEQ = 1 << 20


def host_key(entry_id: str) -> EventKey:
    ms, seq = parse_id(entry_id)
    return ms, seq


def global_key(entry_id: str) -> EventKey:
    ms, seq = parse_id(entry_id)
    return ms, GLOBAL_SEQ + seq


class Fleet:
    """A web process's side of sharing: reader, pushes, lease, reconnection."""

    def __init__(self, store: RedisStore, views: Views, sampling: HostSampling, *,
                 on_push: Callable[[str], None] | None, stale_seconds: float,
                 board: FleetBoard | None = None) -> None:
        self.store = store
        self.fleet_store = FleetStore(store)
        self.board = board  # the fleet's summaries
        self.events_after = "0-0"  # id of the last global event read
        self.changes_after = "0-0"  # id of the last fleet change read
        self.views = views
        self.sampling = sampling
        self.sampler = sampling.sampler
        self.lease_seconds = sampling.lease_seconds
        self.stale_seconds = stale_seconds
        self.on_push = on_push
        self.shared = False
        self.following: dict[str, str] = {}  # host -> id of the last entry read
        self.loops: list[gevent.Greenlet] = []
        self.supervisor: gevent.Greenlet | None = None
        self.stopping = False
        self.lost: BaseException | None = None  # why trouble() ended the loops
        self.error: str | None = None
        self._hosts: tuple[float, dict] = (0.0, {})

    # ---- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        # A fresh holder id per process: the app may have been built before a fork.
        self.sampling.holder = new_holder()
        self.supervisor = gevent.spawn(self._supervise)

    def stop(self) -> None:
        self.stopping = True
        self.sampling.release()  # another process can take over at once
        for g in self.loops:
            g.kill(block=False)
        if self.supervisor is not None:
            self.supervisor.kill(block=False)

    def _supervise(self) -> None:
        delay = 1.0
        first = True
        while not self.stopping:
            try:
                self._enter()
                delay = 1.0
                gevent.joinall(self.loops, count=1)
                dead = next((g for g in self.loops if g.dead), None)
                exc = self.lost or (None if dead is None else dead.value or dead.exception)
                self.lost = None
            except self.store.errors as e:
                exc = e
            if self.stopping:
                return
            self._leave(exc, first)
            first = False
            gevent.sleep(delay * (0.5 + random.random()))
            delay = min(30.0, delay * 2)

    def _enter(self) -> None:
        self.connect()
        self.loops = [gevent.spawn(self._guarded, loop) for loop in (self._read_loop, self._pubsub_loop,
                                                                     self._lease_loop)]

    def connect(self) -> None:
        """Take what Redis holds (settings, rules, every view's stream) and try for the lease."""
        store, views = self.store, self.views
        store.ping()
        self.sampling.sync()
        self.following = {}
        self.events_after = self.fleet_store.last_event_id()
        if self.board is not None:
            self.changes_after, summaries = self.fleet_store.read_all()
            self.board.fill(summaries, parse_id(self.changes_after))
        for view in views:
            self._backfill(view)
        views.local.ready.set()
        self.shared = True
        self.error = None
        self.sampler.stop()  # from now on only the lease holder samples
        self.sampling.step()
        log.info("sharing through Redis at %s (%s)", redacted(store.url),
                 "sampling this host" if self.sampling.holding else "another process samples this host")

    def _guarded(self, loop):
        # A lost connection ends a loop with its error as the result (for the
        # supervisor), not as a traceback in the log: it is expected, and said once.
        try:
            loop()
        except self.store.errors as exc:
            return exc

    def _leave(self, exc, first: bool) -> None:
        was_shared = self.shared
        self.shared = False
        self.sampling.holding = False
        for g in self.loops:
            g.kill(block=False)
        self.loops = []
        self.error = f"{type(exc).__name__}: {exc}" if exc else "lost"
        level = logging.ERROR
        if exc is not None and refuses_writes(exc):  # said once for the whole process
            REFUSALS.met(exc, "the fleet")
            level = logging.DEBUG
        if first or was_shared:
            log.log(level, "Redis at %s %s (%s): serving this host's metrics locally and "
                      "refusing console commands until it answers; retrying with backoff",
                      redacted(self.store.url), trouble_words(exc), self.error)
        self.views.local.ready.set()  # serve what this process has, and its own samples
        if not self.stopping:
            self.sampler.start()

    def trouble(self, exc: BaseException) -> None:
        """A write failed where it was made: reconnect now rather than at the next read."""
        if self.shared:
            # Killed plainly and told the reason: a loop killed with an exception
            # before it first ran would have gevent print that exception.
            self.lost = exc
            for g in self.loops:
                g.kill(block=False)

    # ---- loops ----------------------------------------------------------------------

    def _lease_loop(self) -> None:
        while True:
            gevent.sleep(self.lease_seconds / 5)
            self.sampling.step()

    def _read_loop(self) -> None:
        while True:
            if not self.following:
                gevent.sleep(1)
                continue
            self.read_once(block_ms=1000)

    def read_once(self, block_ms: int) -> None:
        """Feed the views and the board what was added after what was read (waits up to block_ms)."""
        fs = self.fleet_store
        streams = {self.store.stream(h): i for h, i in self.following.items()}
        streams[fs.events] = self.events_after
        if self.board is not None:
            streams[fs.changes] = self.changes_after
        merged = []  # (key, host or None for every host, fields)
        # Read as bytes: a host's samples are stored compressed (store/stream_frames.py), which
        # gives every entry back as text; an entry it cannot unpack is skipped, not re-read.
        for raw_key, raw in self.store.binary_reader.xread(streams, block=block_ms, count=1000) or []:
            if not raw:
                continue
            stream_key = raw_key.decode()
            entries = self.store.frames.entries(stream_key, raw)
            if not entries:
                last = raw[-1][0].decode()
                if stream_key == fs.changes:
                    self.changes_after = last
                elif stream_key == fs.events:
                    self.events_after = last
                elif self.store.host_of(stream_key) in self.following:
                    self.following[self.store.host_of(stream_key)] = last
                continue
            if stream_key == fs.changes:
                self._changes(entries)
                continue
            if stream_key == fs.events:
                self.events_after = entries[-1][0]
                merged += [(global_key(i), None, f) for i, f in entries]
                continue
            host = self.store.host_of(stream_key)
            if host in self.following:
                self.following[host] = entries[-1][0]
            merged += [(host_key(i), host, f) for i, f in entries]
        merged.sort(key=lambda m: m[0])
        for key, host, fields in merged:
            for name in (host,) if host is not None else list(self.following):
                self._ingest(name, key, host is None, fields)

    def _ingest(self, name: str, key: EventKey, is_global: bool, fields: dict) -> None:
        """One new entry into a view. Two streams' ids cannot say which of two entries
        made in the same millisecond came first: one that arrives after a later-keyed
        entry was shown takes the view's next id instead of being lost (a global
        event the view already has, from its backfill, is skipped)."""
        view = self.views.get(name)
        if view is None:
            return
        head = view.hub.head
        if head is not None and key <= head.key:
            if is_global and any(f.key == key for f in view.hub.frames()[-256:]):
                return  # already there
            key = None
        self.views.ingest(name, fields.get("t", ""), fields.get("d", ""), key=key)

    def _changes(self, entries) -> None:
        for entry_id, fields in entries:
            try:
                changed = json.loads(fields.get("d", ""))
            except ValueError:
                continue
            if isinstance(changed, dict) and fields.get("h"):
                self.board.update(fields["h"], changed, parse_id(entry_id))
        self.changes_after = entries[-1][0]

    def _pubsub_loop(self) -> None:
        control, pushes = self.store.key("control"), self.store.key("pushes")
        pubsub = self.store.pubsub()
        try:
            while True:
                msg = pubsub.get_message(timeout=5.0)
                if msg is None:
                    continue
                if msg["channel"] == control:
                    self.sampling.sync()
                elif msg["channel"] == pushes and self.on_push is not None:
                    self.on_push(msg["data"])
        finally:
            pubsub.close()

    # ---- following hosts ------------------------------------------------------------

    def _backfill(self, view: HostView) -> None:
        since = self.store.resume_start()
        if not len(view.hub):
            # Redis keeps everything after `since`: a viewer whose last event is
            # younger than that can resume from this buffer.
            view.hub.floor = (since, 0)
        # The host's entries and the global events as of one moment, merged in id order; read as
        # bytes, since a host's samples are stored compressed (store/stream_frames.py).
        stream = self.store.stream(view.name)
        pipe = self.store.binary.pipeline(transaction=True)
        pipe.xrange(stream, min=f"{since}-0")
        pipe.xrange(self.fleet_store.events, min=f"{since}-0")
        pipe.hgetall(self.store.minutes_key(view.name))
        raw_entries, raw_events, minutes = pipe.execute()
        entries = self.store.frames.entries(stream, raw_entries)
        events = self.store.frames.entries(self.fleet_store.events, raw_events)
        merged = sorted([(host_key(i), f) for i, f in entries] + [(global_key(i), f) for i, f in events],
                        key=lambda m: m[0])
        for key, fields in merged:
            self.views.ingest(view.name, fields.get("t", ""), fields.get("d", ""), key=key)
        self.following[view.name] = raw_entries[-1][0].decode() if raw_entries else "0-0"
        # The charts' hour before the whole samples kept for resuming (store/chart_minutes.py).
        names = len(view.history.names)
        view.history.add_older([row for blob in redis_minutes.since(minutes, time.time() - view.history.seconds)
                                for row in chart_minutes.decode(blob, names)])

    def follow(self, view: HostView) -> None:
        """Start serving another host's stream in this process (history first)."""
        try:
            self._backfill(view)
        except self.store.errors as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def knows(self, host: str) -> bool:
        return self.shared and host in self.hosts()

    def unfollow(self, host: str) -> None:
        self.following.pop(host, None)

    def hosts(self) -> dict[str, dict]:
        """Hosts heard from, with last_seen and stale (cached for a second)."""
        stamp, cached = self._hosts
        if time.monotonic() - stamp < 1.0:
            return cached
        try:
            found = self.store.hosts()
        except self.store.errors:
            return cached
        now = time.time()
        for info in found.values():
            limit = max(self.stale_seconds, 3 * float(info.get("interval") or 1))
            info["stale"] = now - float(info.get("last_seen") or 0) > limit
        self._hosts = (time.monotonic(), found)
        return found

    # ---- writes made by console commands ---------------------------------------------

    def publish_event(self, event: Event) -> None:
        try:
            publish_everywhere(self.fleet_store, event)
        except self.store.errors as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def call(self, fn, *args, **kwargs):
        """Run a store operation for a command; Redis errors refuse the command."""
        try:
            return fn(*args, **kwargs)
        except self.store.errors as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc
