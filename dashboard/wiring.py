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

import gc
import logging
import os
import socket
import time

import gevent
import greenlet
import psutil

from . import __version__
from .alerts.rules import Alerts, alert_event
from .console import protocol
from .console.sessions import GOING_AWAY, NORMAL, Consoles, Desk
from .fleet.lease import HostSampling
from .fleet.sharing import Fleet
from .operations import Operations
from .sampling.cgroups import Container, discover
from .sampling.collectors import SYSTEM_COLLECTORS, Collector
from .sampling.processes import ProcessTable
from .sampling.rollup import Rollups
from .sampling.sampler import Sampler, check_interval
from .sampling.series import SERIES
from .store.audit import AuditLog, Record, RedisAuditLog
from .store.history_store import HistoryStore, StoreBroken
from .store.tiers import Point, Tier, default_tiers
from .stream.events import Event, to_json
from .stream.hub import Hub
from .stream.history import History
from .stream.views import Views
from .stream.windows import Windows
from .web.auth import Tokens

log = logging.getLogger("dashboard.wiring")


class Instance:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.version = __version__
        self.host = config["HOST_NAME"] or socket.gethostname()
        self.views = Views(self.host, config)
        self.local = self.views.local
        self.processes = ProcessTable(config["TOP_PROCESSES"])
        self.container = Container(discover())
        collectors = SYSTEM_COLLECTORS + (
            Collector("processes", ProcessTable.help, self.processes),
            Collector("container", Container.help, self.container),
        )
        self.sampler = Sampler(
            collectors, self.on_sample, interval=config["SAMPLE_INTERVAL"], host=self.host
        )
        self.alerts = Alerts()
        self.consoles = Consoles()
        self.tokens = Tokens(config["OPERATOR_TOKEN"], config["OBSERVER_TOKEN"])
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
                publish_event=lambda event: self.fleet.publish_event(event))
            self.fleet = Fleet(self.store, self.views, sampling, on_push=self.consoles.broadcast,
                               stale_seconds=config["HOST_STALE_SECONDS"])
            self.views.remote = self.fleet
            self.audit = RedisAuditLog(self.store)
            # Nothing is served from this host's view until it holds what Redis
            # has (or Redis proved unreachable): a viewer resuming right after a
            # restart must find its last event there.
            self.local.ready.clear()
        else:
            self.audit = AuditLog(config["AUDIT_DB"], config["AUDIT_SYNC"])
        self._lasting(config)
        self.command_counts: dict[tuple[str, str], int] = {}
        self.command_latency = None  # a histogram, once /metrics is installed
        self.started_at = time.time()
        self.shutting_down = False
        self.ops = Operations(self)
        self.desk = Desk(self.ops, self.audit, self.consoles, rate=config["CONSOLE_RATE"],
                         burst=config["CONSOLE_BURST"], outbox=config["CONSOLE_OUTBOX"],
                         on_done=self.command_done)
        self._pid: int | None = None
        self._ticker: gevent.Greenlet | None = None

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
                self.alerts.restore(state["alerts"]["rules"], state["alerts"]["next_id"])
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
            self.lasting.save_state("alerts", {"rules": [r.public() for r in self.alerts.rules.values()],
                                               "next_id": self.alerts.next_id})

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
        if self.fleet is not None:
            self.fleet.stop()
        self.sampler.stop()
        if self._ticker is not None:
            self._ticker.kill(block=False)
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
        data = to_json(sample)
        if self.shared:
            try:
                self.fleet.sampling.publish(sample, data)
                return
            except Exception as exc:  # Redis went away between two samples
                self.fleet.trouble(exc)
                log.warning("could not share a sample (%s); showing it locally", exc)
        self.views.ingest(self.host, "metrics", data, sample=sample)
        for rule, st, change in self.alerts.evaluate(sample, self.host):
            self.publish(alert_event(rule, st, change, self.host))

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

    def end_session(self, sid: str, expires: float) -> int:
        """Refuse this login from now on and close its consoles."""
        self.audit.revoke(sid, expires)
        return self.consoles.close_login(sid, NORMAL, "logged out")

    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None:
        self.audit.append(Record(name, role, sid[:12], addr, action, action, outcome))

    def command_done(self, name: str, outcome: str, seconds: float) -> None:
        key = (name, outcome)
        self.command_counts[key] = self.command_counts.get(key, 0) + 1
        if self.command_latency is not None:
            self.command_latency.labels(name).observe(seconds)

    # ---- health ------------------------------------------------------------------------

    def health(self, details: bool = False) -> tuple[bool, dict]:
        now = time.monotonic()
        sampler = self.sampler
        arrived = self.local.latest_at
        age = None if arrived is None else round(now - arrived, 3)
        limit = max(3 * sampler.interval, 5.0)
        if sampler.paused:
            ok, state = True, "paused"
        elif age is None:
            ok = time.time() - self.started_at < limit
            state = "starting" if ok else "stuck"
        else:
            ok = age <= limit
            state = "sampling" if ok else "stuck"
        body = {
            "status": "ok" if ok else "unhealthy",
            "sampler": {
                "state": state,
                "age": age,
                "interval": sampler.interval,
                "here": sampler.running,
                "last_duration": None
                if sampler.last_duration is None
                else round(sampler.last_duration, 4),
                "seq": (self.local.latest or {}).get("seq", sampler.seq),
            },
            "subscribers": len(self.views.streams()),
            "version": self.version,
            "pid": os.getpid(),
        }
        if self.fleet is not None:
            body["redis"] = {"shared": self.fleet.shared, "error": self.fleet.error}
        body["history"] = self.lasting_health()
        if details:
            body["process"] = process_details()
        return ok, body


def process_details() -> dict:
    """Resource use of this process, for leak checks (costs a few ms: on request only)."""
    try:
        open_files = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_files = None
    gc.collect()  # count what is alive, not cycles waiting for the collector
    return {
        "open_files": open_files,
        "rss": psutil.Process().memory_info().rss,
        "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
    }
