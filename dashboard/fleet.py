"""Sharing through Redis: many workers, many dynos, many hosts.

With REDIS_URL set, one process per host samples it (whoever holds the host's
lease in Redis; the lease expires within seconds when its holder dies, and
another process takes over), and appends each sample to the host's Redis
stream. Every web process reads the streams it serves with one reader (one
connection, however many viewers) and feeds them into its own hubs, so event
ids are the stream's ids, the same in every process: a viewer can resume on
another worker or dyno. Shared settings and alert rules live in Redis; a
change is announced on a channel every sampler listens to, and console pushes
travel on another channel to every console everywhere.

When Redis cannot be reached (at start or later), the process says so, serves
its own host's metrics locally, refuses commands it cannot record, and keeps
reconnecting with backoff; once Redis answers, sharing resumes.

`HostSampling` is the sampler-under-lease part; the agent (`python -m
dashboard.agent`) runs it alone, without a web server.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import socket
import time
from typing import TYPE_CHECKING, Callable

import gevent
import redis

from . import protocol
from .alerts import Alerts, Rule, RuleState, unit_of
from .audit import StoreUnavailable
from .events import Alert, Event, parse_id, to_json
from .redis_store import RedisStore, redacted
from .sampler import Sampler

if TYPE_CHECKING:  # pragma: no cover
    from .services import HostView, Services

log = logging.getLogger(__name__)

ERRORS = (redis.RedisError, OSError)


def alert_event(rule: Rule, st: RuleState, change: str, host: str, why: str = "") -> Alert:
    value = "?" if st.value is None else f"{st.value:g}{unit_of(rule.metric)}"
    message = f"{host}: {rule.describe()}: {change} at {value}" + (f" ({why})" if why else "")
    return Alert(rule=rule.public(), host=host, state=change, value=st.value, message=message)


class HostSampling:
    """One host's sampler, running only while this process holds the host's lease."""

    def __init__(self, store: RedisStore, host: str, sampler: Sampler, alerts: Alerts, *,
                 lease_seconds: float, role: str, table_rows: Callable[[], list],
                 publish_event: Callable[[Event], None]) -> None:
        self.store = store
        self.host = host
        self.sampler = sampler
        self.alerts = alerts
        self.lease_seconds = lease_seconds
        self.role = role
        self.table_rows = table_rows
        self.publish_event = publish_event
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.holding = False

    def step(self) -> None:
        """Renew or try to take the lease (call every lease/5 seconds)."""
        if self.holding:
            if not self.store.renew(self.host, self.holder, self.lease_seconds):
                log.warning("lost the sampler lease for %s; another process samples it now", self.host)
                self.lose()
        elif self.store.acquire(self.host, self.holder, self.lease_seconds):
            self.gain()

    def gain(self) -> None:
        self.holding = True
        self.sampler.continue_from(self.store.last_seq(self.host))
        self.sync()
        for (rule_id, host), state in self.store.alert_states().items():
            if host == self.host and rule_id in self.alerts.rules:
                self.alerts.states[(rule_id, host)] = RuleState(**state)
        self.sampler.start()
        log.info("this process (%s) samples %s for everyone", self.holder, self.host)

    def lose(self) -> None:
        self.holding = False
        self.sampler.stop()

    def release(self) -> None:
        if self.holding:
            self.sampler.stop()
            try:
                self.store.release(self.host, self.holder)
            except ERRORS:
                pass
            self.holding = False

    def sync(self) -> None:
        """Take the shared settings and rules from Redis."""
        state = self.store.state()
        if "interval" in state:
            self.sampler.set_interval(state["interval"])
        if state.get("paused"):
            self.sampler.pause()
        elif "paused" in state:
            self.sampler.resume()
        self.alerts.replace(self.store.rules())

    def publish(self, sample: dict, data: str) -> None:
        """Append one sample to the host's stream and check the alert rules on it."""
        rows = self.table_rows()
        info = {"role": self.role, "interval": self.sampler.interval, "pid": os.getpid(),
                "paused": self.sampler.paused}
        self.store.add_sample(self.host, data, json.dumps(rows, separators=(",", ":")), info)
        for rule, st, change in self.alerts.evaluate(sample, self.host):
            self.store.save_alert_state(rule.id, self.host, st.public())
            self.publish_event(alert_event(rule, st, change, self.host))


def publish_everywhere(store: RedisStore, event: Event, hosts) -> dict[str, str]:
    """An event for every dashboard (each host's stream) and every console."""
    payload = event.payload()
    ids = store.add_event(hosts, event.type, to_json(payload))
    store.push(protocol.push(event.type, **payload))
    return ids


class Fleet:
    """A web process's side of sharing: reader, pushes, lease, reconnection."""

    def __init__(self, svc: "Services", store: RedisStore) -> None:
        self.svc = svc
        self.store = store
        cfg = svc.config
        self.lease_seconds = cfg["SAMPLER_LEASE_SECONDS"]
        self.stale_seconds = cfg["HOST_STALE_SECONDS"]
        self.sampling = HostSampling(
            store, svc.host, svc.sampler, svc.alerts, lease_seconds=self.lease_seconds, role="web",
            table_rows=lambda: svc.processes.rows(svc.processes.latest), publish_event=self.publish_event)
        self.shared = False
        self.following: dict[str, str] = {}  # host -> id of the last entry read
        self.loops: list[gevent.Greenlet] = []
        self.supervisor: gevent.Greenlet | None = None
        self.stopping = False
        self.error: str | None = None
        self._hosts: tuple[float, dict] = (0.0, {})

    # ---- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        # A fresh holder id per process: the app may have been built before a fork.
        self.sampling.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
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
                exc = None if dead is None else dead.value or dead.exception
            except ERRORS as e:
                exc = e
            if self.stopping:
                return
            self._leave(exc, delay, first)
            first = False
            gevent.sleep(delay * (0.5 + random.random()))
            delay = min(30.0, delay * 2)

    def _enter(self) -> None:
        store, svc = self.store, self.svc
        store.ping()
        self.sampling.sync()
        self.following = {}
        for host in list(svc.views):
            self._backfill(svc.views[host])
        svc.local.ready.set()
        self.shared = True
        self.error = None
        svc.sampler.stop()  # from now on only the lease holder samples
        self.sampling.step()
        log.info("sharing through Redis at %s (%s)", redacted(store.url),
                 "sampling this host" if self.sampling.holding else "another process samples this host")
        self.loops = [gevent.spawn(self._guarded, loop)
                      for loop in (self._read_loop, self._pubsub_loop, self._lease_loop)]

    @staticmethod
    def _guarded(loop):
        # A lost connection ends a loop with its error as the result (for the
        # supervisor), not as a traceback in the log: it is expected, and said once.
        try:
            loop()
        except ERRORS as exc:
            return exc

    def _leave(self, exc, delay: float, first: bool) -> None:
        was_shared = self.shared
        self.shared = False
        self.sampling.holding = False
        for g in self.loops:
            g.kill(block=False)
        self.loops = []
        self.error = f"{type(exc).__name__}: {exc}" if exc else "lost"
        if first or was_shared:
            log.error("Redis at %s is unreachable (%s): serving this host's metrics locally and "
                      "refusing console commands until it answers; retrying with backoff",
                      redacted(self.store.url), self.error)
        self.svc.local.ready.set()  # serve what this process has, and its own samples
        if not self.svc.shutting_down:
            self.svc.sampler.start()

    def trouble(self, exc: BaseException) -> None:
        """A write failed where it was made: reconnect now rather than at the next read."""
        if self.shared:
            for g in self.loops:
                g.kill(exception=exc, block=False)

    # ---- loops ----------------------------------------------------------------------

    def _lease_loop(self) -> None:
        while True:
            gevent.sleep(self.lease_seconds / 5)
            self.sampling.step()

    def _read_loop(self) -> None:
        svc = self.svc
        while True:
            if not self.following:
                gevent.sleep(1)
                continue
            for stream_key, entries in self.store.read(dict(self.following), block_ms=1000):
                host = self.store.host_of(stream_key)
                for entry_id, fields in entries:
                    if host in self.following:
                        self.following[host] = entry_id
                    svc.ingest(host, fields.get("t", ""), fields.get("d", ""), key=parse_id(entry_id))

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
                elif msg["channel"] == pushes:
                    self.svc.consoles.broadcast(msg["data"])
        finally:
            pubsub.close()

    # ---- following hosts ------------------------------------------------------------

    def _backfill(self, view: "HostView") -> None:
        since = self.store.history_start()
        if not len(view.hub):
            # Redis keeps everything after `since`: a viewer whose last event is
            # younger than that can resume from this buffer.
            view.hub.floor = (since, 0)
        entries = self.store.backfill(view.name, since)
        for entry_id, fields in entries:
            self.svc.ingest(view.name, fields.get("t", ""), fields.get("d", ""), key=parse_id(entry_id))
        self.following[view.name] = entries[-1][0] if entries else "0-0"

    def follow(self, view: "HostView") -> None:
        """Start serving another host's stream in this process (history first)."""
        try:
            self._backfill(view)
        except ERRORS as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def unfollow(self, host: str) -> None:
        self.following.pop(host, None)

    def hosts(self) -> dict[str, dict]:
        """Hosts heard from, with last_seen and stale (cached for a second)."""
        stamp, cached = self._hosts
        if time.monotonic() - stamp < 1.0:
            return cached
        try:
            found = self.store.hosts()
        except ERRORS:
            return cached
        now = time.time()
        for info in found.values():
            limit = max(self.stale_seconds, 3 * float(info.get("interval") or 1))
            info["stale"] = now - float(info.get("last_seen") or 0) > limit
        self._hosts = (time.monotonic(), found)
        return found

    # ---- writes made by console commands ---------------------------------------------

    def publish_event(self, event: Event) -> None:
        hosts = set(self.hosts()) | set(self.svc.views) | {self.svc.host}
        try:
            publish_everywhere(self.store, event, hosts)
        except ERRORS as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc

    def call(self, fn, *args, **kwargs):
        """Run a store operation for a command; Redis errors refuse the command."""
        try:
            return fn(*args, **kwargs)
        except ERRORS as exc:
            self.trouble(exc)
            raise StoreUnavailable(str(exc)) from exc
