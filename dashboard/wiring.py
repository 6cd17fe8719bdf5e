"""The parts one process runs, built and wired together: collectors -> sampler -> views.

`create_app` builds one `Instance` per app; nothing here starts at import or at
construction. `ensure_started` spawns the sampler and the heartbeat greenlet
the first time it runs in a process (after gunicorn forks its worker), and
again in a child if the app object was inherited across a fork.

This is the one place that knows every part. Each part is handed only what it
needs: the fleet gets the views, the lease and a callable for pushes; console
sessions get a `Desk` (the operations, the audit log, the open consoles); the
web blueprints read this object through the narrow `web.common.Instance` interface.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import sqlite3

import gevent
import redis

from . import __version__
from .health import health
from .alerts.delivery import Notifier
from .logs import Refusals
from .alerts.rules import Alerts, alert_event
from .console import protocol
from .console.sessions import GOING_AWAY, NORMAL, Consoles, Desk, Logins
from .fleet.lease import HostSampling
from .fleet.sharing import Fleet
from .operations import Operations
from .sampling.cgroups import Container, discover
from .sampling.collectors import SYSTEM_COLLECTORS, Collector
from .sampling.containers import Containers
from .sampling.processes import ProcessTable
from .sampling.rollup import Rollups
from .sampling.sampler import Sampler, check_interval
from .sampling.series import SERIES
from .store.audit import AuditLog, Record, RedisAuditLog
from .store.notify_store import RedisNotifyStore, SqliteNotifyStore
from .store.audit_summary import AuditSummary
from .store.history_store import HistoryStore, StoreBroken
from .store.tiers import Point, Tier, default_tiers
from .stream.events import Event, to_json
from .stream.hub import Hub
from .stream.history import History
from .stream.views import Views
from .stream.wire import encode as encode_metrics
from .stream.windows import Windows
from .web.credentials import Tokens
from .web.throttle import Throttle

log = logging.getLogger("dashboard.wiring")

# A record pending this long belongs to a process that died (commands take milliseconds).
PENDING_GRACE_SECONDS = 60.0


class Instance:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.version = __version__
        self.host = config["HOST_NAME"] or socket.gethostname()
        self.views = Views(self.host, config)
        self.local = self.views.local
        self.processes = ProcessTable(config["TOP_PROCESSES"])
        self.container = Container(discover())
        self.containers = Containers(config["CONTAINERS"], config["CONTAINER_SOCKET"], config["CONTAINERS_SHOWN"])
        collectors = SYSTEM_COLLECTORS + (
            Collector("processes", ProcessTable.help, self.processes),
            Collector("container", Container.help, self.container),
            Collector("containers", Containers.help, self.containers),
        )
        self.sampler = Sampler(
            collectors, self.on_sample, interval=config["SAMPLE_INTERVAL"], host=self.host
        )
        self.alerts = Alerts()
        self.consoles = Consoles()
        self.tokens = Tokens(config)
        self.throttle = Throttle(allowed=config["LOGIN_FAILURES_ALLOWED"])
        self.store = None
        self.fleet: Fleet | None = None
        if config["REDIS_URL"]:
            from .store.redis_store import RedisStore

            self.store = RedisStore(
                config["REDIS_URL"],
                config["REDIS_PREFIX"],
                history_seconds=config["HISTORY_SECONDS"],
                tls_verify=config["REDIS_TLS_VERIFY"],
            )
            sampling = HostSampling(
                self.store, self.host, self.sampler, self.alerts,
                lease_seconds=config["SAMPLER_LEASE_SECONDS"], role="web",
                table_rows=lambda: self.processes.rows(self.processes.latest),
                publish_event=lambda event: self.fleet.publish_event(event),
                on_transition=self.notify)
            self.fleet = Fleet(self.store, self.views, sampling, on_push=self.consoles.broadcast,
                               stale_seconds=config["HOST_STALE_SECONDS"])
            self.views.remote = self.fleet
            self.audit = RedisAuditLog(self.store)
            notify_store, notify_errors = RedisNotifyStore(self.store), (redis.RedisError, OSError)
            # Nothing is served from this host's view until it holds what Redis
            # has (or Redis proved unreachable): a viewer resuming right after a
            # restart must find its last event there.
            self.local.ready.clear()
        else:
            self.audit = AuditLog(config["AUDIT_DB"], config["AUDIT_SYNC"])
            notify_store = SqliteNotifyStore(os.path.join(config["DATA_DIR"], "notify.sqlite3"))
            notify_errors = (sqlite3.Error, OSError)
        self.notifier = Notifier(
            notify_store, env_urls=config["NOTIFY_URLS"], group_seconds=config["NOTIFY_GROUP_SECONDS"],
            retry_hours=config["NOTIFY_RETRY_HOURS"], timeout=config["NOTIFY_TIMEOUT"],
            public_url=config["PUBLIC_URL"], errors=notify_errors, fallback_sample=self._latest_of)
        self.notify_errors = notify_errors
        self._lasting(config)
        self.command_counts: dict[tuple[str, str], int] = {}
        self.command_latency = None  # a histogram, once /metrics is installed
        self.started_at = time.time()
        self.shutting_down = False
        self.ops = Operations(self)
        self.refusals = Refusals()
        self.audit_summary = AuditSummary(self.audit, config["AUDIT_SUMMARY_SECONDS"])
        self.body_limits = None  # web.body_limits.BodyLimits, installed by create_app
        self.desk = Desk(self.ops, self.audit, self.consoles, rate=config["CONSOLE_RATE"],
                         burst=config["CONSOLE_BURST"], outbox=config["CONSOLE_OUTBOX"],
                         on_done=self.command_done,
                         logins=Logins(config["CONSOLE_LOGIN_RATE"], config["CONSOLE_LOGIN_BURST"],
                                       config["MAX_CONSOLES_PER_LOGIN"]),
                         on_refused=self.refusals.note, summary=self.audit_summary)
        self._pid: int | None = None
        self._ticker: gevent.Greenlet | None = None
        self._upkeep: list[gevent.Greenlet] = []

    # ---- lasting history and state ------------------------------------------------

    def _lasting(self, config: dict) -> None:
        """The store of roll-ups (and, embedded, of the event buffer and state)."""
        self.tiers: tuple[Tier, ...] = default_tiers(config["MINUTE_HISTORY_DAYS"], config["HOUR_HISTORY_DAYS"])
        self.lasting = None
        self.lasting_error: str | None = None
        names = tuple(s.name for s in SERIES)
        if config["HISTORY_STORE"] and self.store is not None:
            from .store.redis_tiers import RedisTiers

            self.lasting = RedisTiers(self.store, self.tiers, names)
        elif config["HISTORY_STORE"]:
            try:
                self.lasting = HistoryStore(config["DATA_DIR"], self.tiers, names, config["HISTORY_SECONDS"])
            except StoreBroken as exc:
                self.lasting_error = str(exc)
                log.error("history store unavailable, serving live data without lasting history: %s", exc)
        self.rollups = None
        if self.lasting is not None:
            lasting, host = self.lasting, self.host
            self.rollups = Rollups(self.tiers, lambda tier, point: lasting.add_point(tier, host, point),
                                   load=lambda tier: lasting.last_point(tier, host))
        self.windows = Windows(config["HISTORY_SECONDS"], self.tiers, self.lasting, current=self._open_point)
        if isinstance(self.lasting, HistoryStore):
            self._restore(self.lasting)

    def _open_point(self, host: str, tier: Tier) -> Point | None:
        if self.rollups is None or host != self.host:
            return None
        return self.rollups.current(tier)

    def _restore(self, lasting: HistoryStore) -> None:
        """Take up where the last process stopped: its events, ids, seq and state."""
        started = time.monotonic()
        try:
            events = lasting.events(int((time.time() - self.config["HISTORY_SECONDS"]) * 1000))
            state = lasting.state()
        except Exception as exc:  # sqlite3.Error: a damaged page found only now
            log.error("history store unreadable, starting without its events and state: %s", exc)
            events, state = [], {}
        seq = self.local.restore(events)
        self.sampler.continue_from(seq)
        try:
            if "interval" in state:
                self.sampler.set_interval(check_interval(state["interval"]))
            if state.get("paused"):
                self.sampler.pause()
            if isinstance(state.get("alerts"), dict):
                saved = state["alerts"]
                self.alerts.restore(saved["rules"], saved["next_id"], saved.get("states"))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("lasting state not usable, starting from the settings: %s", exc)
        self.local.keep = lasting.add_event
        if events:
            log.info("restored %d events (up to seq %d) and the console's state in %.0f ms",
                     len(events), seq, (time.monotonic() - started) * 1000)

    def _save_state(self) -> None:
        if isinstance(self.lasting, HistoryStore):
            self.lasting.save_state("interval", self.sampler.interval)
            self.lasting.save_state("paused", self.sampler.paused)
            self.lasting.save_state("alerts", self.alerts.saved())

    def lasting_health(self) -> dict:
        if self.lasting is None:
            if self.lasting_error:
                return {"state": "unavailable", "error": self.lasting_error}
            return {"state": "off"}
        return self.lasting.health()

    # The local host's parts, for the many places that only ever serve it.
    @property
    def hub(self) -> Hub:
        return self.local.hub

    @property
    def history(self) -> History:
        return self.local.history

    @property
    def shared(self) -> bool:
        return self.fleet is not None and self.fleet.shared

    def view(self, host: str | None = None):
        return self.views.view(host)

    def hosts(self) -> list[dict]:
        return self.ops.hosts()

    def broadcast(self, message: str, by: str | None = None):
        return self.ops.broadcast(message, by)

    # ---- lifecycle ------------------------------------------------------------

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        self.started_at = time.time()
        # With Redis, the fleet decides: sample only under the host's lease, or
        # locally while Redis cannot be reached.
        if self.lasting is not None:
            self.lasting.start()
        if self.fleet is None:
            self.sampler.start()
        else:
            self.fleet.start()
        self._ticker = gevent.spawn(self.views.heartbeats)
        self.notifier.start()
        self._upkeep = [gevent.spawn(self._audit_upkeep), gevent.spawn(self.audit_summary.run)]
        log.info(
            "sampling %s every %gs, keeping %ds of history (pid %d)%s",
            self.host,
            self.sampler.interval,
            self.config["HISTORY_SECONDS"],
            pid,
            ", sharing through Redis" if self.fleet else "",
        )

    def shutdown(self, reason: str = "server shutting down") -> int:
        """End every stream now so the worker can exit well before SIGKILL."""
        if self.shutting_down:
            return 0
        self.shutting_down = True
        if self.body_limits is not None:
            self.body_limits.stop()  # bodies still arriving are given up now
        if self.fleet is not None:
            self.fleet.stop()
        self.sampler.stop()
        self.processes.close()  # the /proc files the process table keeps open
        self.notifier.stop()
        if self._ticker is not None:
            self._ticker.kill(block=False)
        for greenlet_ in self._upkeep:
            greenlet_.kill(block=False)
        try:
            self.audit_summary.flush()  # the window's counts, before the process goes
        except Exception as exc:
            log.warning("could not write the audit summary at shutdown: %s", exc)
        # Everything is written while the streams still hold the worker open:
        # once they close, gunicorn may end the process at any moment.
        if self.rollups is not None:
            self.rollups.close()
        if self.lasting is not None:
            self.local.keep = None
            self.lasting.close()
        closed = self.views.close_all(reason)
        consoles = self.consoles.close_all(GOING_AWAY, reason)
        log.info("shutting down: closed %d event streams and %d consoles", closed, consoles)
        return closed

    # ---- data flow ----------------------------------------------------------------

    def on_sample(self, sample: dict) -> None:
        if self.rollups is not None:
            self.rollups.add(sample)
        data = encode_metrics(sample)  # the event's compact form, once per sample
        if self.shared:
            try:
                self.fleet.sampling.publish(sample, data)
                return
            except Exception as exc:  # Redis went away between two samples
                self.fleet.trouble(exc)
                log.warning("could not share a sample (%s); showing it locally", exc)
        self.views.ingest(self.host, "metrics", data, sample=sample)
        changes = self.alerts.evaluate(sample, self.host)
        for rule, st, change in changes:
            self.publish(alert_event(rule, st, change, self.host))
            self.notify(rule, st, change, self.host, sample)
        if changes:
            self._save_state()  # a restart must not announce a firing rule again

    def notify(self, rule, st, change: str, host: str, sample: dict | None, why: str = "") -> None:
        """Keep a transition with its evidence and queue it for every channel (nothing is sent here)."""
        try:
            self.notifier.record(rule, st, change, host, sample, why)
        except self.notify_errors as exc:
            log.error("could not record the alert transition %s %s on %s: %s", rule.id, change, host, exc)

    def _latest_of(self, host: str) -> dict | None:
        try:
            return self.views.view(host).latest
        except Exception:  # an unknown host, or Redis unreachable: no evidence then
            return None

    def publish(self, event: Event) -> None:
        """To every dashboard (SSE) and every console (a push), here or everywhere."""
        if self.shared:
            self.fleet.publish_event(event)  # comes back through each process's reader
            return
        if event.type == "config":
            self._save_state()
        data = to_json(event.payload())
        frame = None
        for host in self.views.names():
            frame = self.views.ingest(host, event.type, data) or frame
        self.consoles.broadcast(
            protocol.push(event.type, event_id=frame.id if frame else None, **event.payload()))

    # ---- sessions and audit ------------------------------------------------------

    def end_session(self, sid: str, expires: float) -> tuple[int, int]:
        """Refuse this login from now on; close its consoles and its event streams."""
        self.audit.revoke(sid, expires)
        return (self.consoles.close_login(sid, NORMAL, "logged out"),
                self.views.close_login(sid, "logged out"))

    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None:
        self.audit.append(Record(name, role, sid[:12], addr, action, action, outcome))

    def command_done(self, name: str, outcome: str, seconds: float) -> None:
        key = (name, outcome)
        self.command_counts[key] = self.command_counts.get(key, 0) + 1
        if self.command_latency is not None:
            self.command_latency.labels(name).observe(seconds)

    def _audit_upkeep(self) -> None:
        """Forever, from the start: settle records a dead process left pending, and
        trim records older than AUDIT_RETENTION_DAYS; hourly (a minute after a failure)."""
        first = True
        while True:
            now = time.time()
            # SQLite serves this process alone: every record left pending from before
            # it started is a dead one's. Later, and with Redis (other processes run
            # commands right now), only those pending for more than a minute.
            older_than = self.started_at if first and self.fleet is None else now - PENDING_GRACE_SECONDS
            try:
                settled = self.audit.settle_interrupted(now, older_than)
                trimmed = self.audit.trim(now - self.config["AUDIT_RETENTION_DAYS"] * 86400)
            except Exception as exc:  # Redis away, disk full: try again soon
                log.warning("audit upkeep failed (%s); retrying in a minute", exc)
                gevent.sleep(60)
                continue
            if settled or trimmed or first:
                log.info("audit upkeep: %d pending records settled as interrupted, %d records older "
                         "than %g days deleted", settled, trimmed, self.config["AUDIT_RETENTION_DAYS"])
            first = False
            gevent.sleep(3600)

    # ---- health ------------------------------------------------------------------------

    def health(self, details: bool = False) -> tuple[bool, dict]:
        return health(self, details)
