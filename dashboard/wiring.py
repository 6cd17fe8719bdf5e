"""The composition root of a web process: every part built once, then it steps aside.

`create_app` builds one `Instance` per app; nothing here starts at import or at
construction. `ensure_started` starts the services the first time it runs in a
process (after gunicorn forks its worker), and again in a child if the app object
was inherited across a fork; `shutdown` stops them in reverse order, then ends
every stream and console.

`_pick` is the one place that asks whether Redis is in use: it chooses the stores
and the `control.shared.Shared` implementation (`LocalShared` or `RedisShared`),
and from then on no part asks again. Each part is handed only what it needs:
`Operations` its collaborators, console sessions a `Desk`, the web blueprints this
object through the narrow `web.common.Instance` interface.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time

import gevent
import gevent.event
import redis

from .version import __version__
from .alerts.delivery import Notifier, notify_policy
from .alerts.rules import Alerts
from .console.sessions import GOING_AWAY, NORMAL, Consoles, Desk, Logins

SERVICE_RESTART = 1012  # the WebSocket close code for "come back in a moment" (IANA registry)
from .control import build
from .control.lasting import Lasting, open_history
from .control.local import LocalShared
from .control.redis import RedisShared
from .control.services import Services, Step, Task
from .control.shared import Transitions
from .control.tally import Commands, Counters
from .control.upkeep import audit_upkeep
from .health import health
from .state_place import describe as describe_place
from .logs import Refusals
from .operations import Operations
from .periodic import Every
from .sampling.series import SERIES
from .store.audit import AuditLog, Record, RedisAuditLog
from .store.audit_summary import AuditSummary
from .store.login_epoch import RedisLoginEpoch, SqliteLoginEpoch
from .store.notify_redis import RedisNotifyStore
from .store.notify_sqlite import SqliteNotifyStore
from .store.tiers import default_tiers
from .stream.drain import Drain
from .stream.fleet_board import FleetBoard
from .stream.history import History
from .stream.hub import Hub
from .stream.views import Views
from .web.budgets import LoginBudget
from .web.credentials import Tokens
from .web.throttle import Throttle

log = logging.getLogger("dashboard.wiring")


class Instance:
    def __init__(self, config: dict, *, refusals: Refusals | None = None, guards: tuple = ()) -> None:
        """guards: WSGI wrappers built around the app before this (web.body_limits.BodyLimits):
        stopped first at shutdown."""
        self.config = config
        self.version = __version__
        self.host = config["HOST_NAME"] or socket.gethostname()
        self.views = Views(self.host, config)
        self.board = FleetBoard(config, stale_seconds=config["HOST_STALE_SECONDS"])  # GET /fleet/events
        self.local = self.views.local
        self.alerts = Alerts()
        self.consoles = Consoles()
        self.tokens = Tokens(config)
        self.throttle = Throttle(allowed=config["LOGIN_FAILURES_ALLOWED"],
                                 ceiling=config["LOGIN_FAILURES_PER_MINUTE"])
        self.history_budget = LoginBudget(config["HISTORY_BUILDS_PER_MINUTE"])
        self.refusals = refusals or Refusals()
        self.commands = Commands()
        self.sampler, self.processes, self.containers = build.host_sampler(config, self.host, self._on_sample)
        self.asks = None  # with Redis: what other processes ask this host's sampler (fleet/asks.py)
        self.shared = self._pick(config)
        self.windows = self.lasting.windows
        self.audit_summary = AuditSummary(self.audit, config["AUDIT_SUMMARY_SECONDS"])
        self.services = Services([
            self.lasting,
            Step("process table", stop=self.processes.close),  # the /proc files it keeps open
            self.shared,
            Task("heartbeats", self.views.heartbeats),
            *([Task("asks", self.asks.run)] if self.asks is not None else []),
            Task("fleet board", Every(1.0, self.board.tick, name="fleet board").run),
            Step("notifier", self.notifier.start, self.notifier.stop),
            Task("audit upkeep", lambda: audit_upkeep(
                self.audit, config["AUDIT_RETENTION_DAYS"], alone=self.shared.alone,
                started_at=lambda: self.services.started_at)),
            Task("audit summary", self.audit_summary.run),
            Step("audit summary flush", stop=self.audit_summary.flush),  # the window's counts
            *guards,  # bodies still arriving are given up first
        ])
        self.ops = Operations(self.shared, self.views, self.processes, self.containers, self.notifier, self.audit,
                              self.consoles, asks=self.asks, record=self.record, notify_errors=self.notify_errors,
                              config=config, version=self.version, uptime=self.services.uptime)
        self.desk = Desk(self.ops, self.audit, self.consoles, rate=config["CONSOLE_RATE"],
                         burst=config["CONSOLE_BURST"], outbox=config["CONSOLE_OUTBOX"],
                         on_done=self.commands.done,
                         logins=Logins(config["CONSOLE_LOGIN_RATE"], config["CONSOLE_LOGIN_BURST"],
                                       config["MAX_CONSOLES_PER_LOGIN"]),
                         on_refused=self.refusals.note, summary=self.audit_summary)
        self._pid: int | None = None
        self.left = gevent.event.Event()  # set once leave() has stopped everything
        self.draining_since: float | None = None  # monotonic, from SIGTERM (leave) on
        self._drain: Drain | None = None
        self._leaving: gevent.Greenlet | None = None

    def _pick(self, config: dict):
        """Embedded or shared: the stores, the notifier and the `Shared` state, chosen once."""
        tiers = default_tiers(config["MINUTE_HISTORY_DAYS"], config["HOUR_HISTORY_DAYS"])
        names = tuple(s.name for s in SERIES)
        history, error, state_store = None, None, None
        if config["REDIS_URL"]:
            store = build.redis_store(config)
            self.audit = RedisAuditLog(store)
            self.login_epoch = RedisLoginEpoch(store, (redis.RedisError, OSError))
            notify_store, self.notify_errors = RedisNotifyStore(store), (redis.RedisError, OSError)
            if config["HISTORY_STORE"]:
                from .store.redis_tiers import RedisTiers

                history = RedisTiers(store, tiers, names, config["HOST_BUDGET_BYTES"])
        else:
            self.audit = AuditLog(config["AUDIT_DB"], config["AUDIT_SYNC"])
            self.login_epoch = SqliteLoginEpoch(config["AUDIT_DB"], self.audit)
            notify_store = SqliteNotifyStore(os.path.join(config["DATA_DIR"], "notify.sqlite3"))
            self.notify_errors = (sqlite3.Error, OSError)
            if config["HISTORY_STORE"]:
                history, error = open_history(config["DATA_DIR"], tiers, names, config["HISTORY_SECONDS"],
                                              config["RESUME_SECONDS"])
                state_store = history  # the event buffer and the console's state last there too
        self.lasting = Lasting(history, tiers, self.host, config["HISTORY_SECONDS"], error)
        self.notifier = Notifier(
            notify_store, env_urls=config["NOTIFY_URLS"], group_seconds=config["NOTIFY_GROUP_SECONDS"],
            retry_hours=config["NOTIFY_RETRY_HOURS"], timeout=config["NOTIFY_TIMEOUT"],
            public_url=config["PUBLIC_URL"], errors=self.notify_errors, fallback_sample=self._latest_of,
            policy=notify_policy(config), raw_schemes=config["NOTIFY_RAW_SCHEMES"],
            max_channels=config["MAX_NOTIFY_CHANNELS"], max_silences=config["MAX_SILENCES"])
        self.record = Transitions(self.notifier.record, self.notify_errors)
        local = LocalShared(self.sampler, self.alerts, self.views, self.processes,
                            push=self.consoles.broadcast, on_transition=self.record, store=state_store,
                            board=self.board)
        if not config["REDIS_URL"]:
            local.restore(config["HISTORY_SECONDS"])
            return local
        # Nothing is served from this host's view until it holds what Redis has (or
        # Redis proved unreachable): a viewer resuming right after a restart must
        # find its last event there.
        self.local.ready.clear()
        shared = RedisShared.build(
            store, self.sampler, self.alerts, self.views, role="web",
            lease_seconds=config["SAMPLER_LEASE_SECONDS"], stale_seconds=config["HOST_STALE_SECONDS"],
            table_rows=local.own_rows, on_transition=self.record, push=self.consoles.broadcast,
            fallback=local, board=self.board)
        self.asks = build.host_asks(store, self.host, self.containers, config["ALLOW_PROCESS_CONTROL"],
                                    holding=lambda: shared.sampling.holding)
        return shared

    def _on_sample(self, sample: dict) -> None:
        self.lasting.add(sample)
        self.shared.publish_sample(sample, build.encode_metrics(sample))

    def _latest_of(self, host: str) -> dict | None:
        try:
            return self.views.view(host).latest
        except Exception:  # an unknown host, or Redis unreachable: no evidence then
            return None

    # The local host's parts, for the many places that only ever serve it.
    @property
    def hub(self) -> Hub:
        return self.local.hub

    @property
    def history(self) -> History:
        return self.local.history

    @property
    def shutting_down(self) -> bool:
        """From SIGTERM on (draining, then stopping): no new stream or console here."""
        return self.draining_since is not None or self.services.stopping

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
        self.services.start()
        stats = self.shared.stats()
        log.info("sampling %s every %gs, keeping %ds of history (pid %d)%s", self.host, stats.interval,
                 self.config["HISTORY_SECONDS"], pid, "" if stats.redis is None else ", sharing through Redis")

    def leave(self, drain_seconds: float = 0.0, reason: str = "server restarting") -> None:
        """Begin leaving (idempotent): end the streams and consoles at random moments spread over
        drain_seconds (each stream with a jittered `retry:`, each console with 1012) while the
        sampler and stores go on serving those still open, then stop everything. Called again
        with no drain (SIGINT after SIGTERM) it ends what is left at once. `left` is set at the end."""
        if self._leaving is not None:
            if drain_seconds <= 0 and self._drain is not None:
                self._drain.cut()
            return
        self.draining_since = time.monotonic()
        if drain_seconds > 0:
            self._drain = Drain(drain_seconds)
            log.info("draining: %d event streams and %d consoles end over %gs", len(self.views.streams()),
                     len(self.consoles), drain_seconds)
        self._leaving = gevent.spawn(self._leave, reason)

    def _leave(self, reason: str) -> None:
        try:
            if self._drain is not None:
                items = [(view.hub, sub) for view in self.views for sub in view.hub.subscribers]
                items += [(None, session) for session in self.consoles.sessions()]
                self._drain.run(items, lambda item: self._send_away(item, reason))
            self.shutdown(reason)
        finally:
            self.left.set()

    def _send_away(self, item, reason: str) -> None:
        hub, what = item
        if hub is None:
            what.close(SERVICE_RESTART, reason)
        else:
            hub.close(what, reason, retry_ms=hub.jittered_retry())

    def shutdown(self, reason: str = "server shutting down") -> int:
        """Stop every service, then end every stream so the worker can exit well before SIGKILL."""
        if not self.services.stop():
            return 0
        closed = self.views.close_all(reason) + self.board.hub.close_all(reason)
        consoles = self.consoles.close_all(GOING_AWAY, reason)
        log.info("shutting down: closed %d event streams and %d consoles", closed, consoles)
        return closed

    # ---- sessions, health, counters ---------------------------------------------------

    def end_session(self, sid: str, expires: float) -> tuple[int, int]:
        """Refuse this login from now on; close its consoles and its event streams."""
        self.audit.revoke(sid, expires)
        fleet = [sub for sub in self.board.hub.subscribers if sub.login == sid]
        for sub in fleet:
            self.board.hub.close(sub, "logged out")
        return (self.consoles.close_login(sid, NORMAL, "logged out"),
                self.views.close_login(sid, "logged out") + len(fleet))

    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None:
        self.audit.append(Record(name, role, sid[:12], addr, action, action, outcome))

    def health(self, details: bool = False) -> tuple[bool, dict]:
        return health(self.shared.stats(), uptime=self.services.uptime(), lasting=self.lasting.health(),
                      subscribers=len(self.views.streams()), version=self.version, details=details,
                      history_cache=self._history_cache, draining=self.shutting_down,
                      place=describe_place(self.config) if details else None)

    def _history_cache(self) -> dict[str, tuple[int, int]]:
        """host -> (answers served from the cache, answers built) of /api/history."""
        return {view.name: (view.history_cache.hits, view.history_cache.builds) for view in self.views}

    def stats(self) -> Counters:
        """One snapshot of what /metrics exports besides the hosts' samples and the hubs."""
        notifier = self.notifier
        return Counters(
            sharing=self.shared.stats(), consoles=len(self.consoles),
            login_failures=self.throttle.failures_total, login_throttled=self.throttle.refused_total,
            refusals={**self.refusals.counts, "login_ceiling": self.throttle.ceiling_refused_total},
            audit_folded=self.audit_summary.folded, history_cache=self._history_cache(),
            commands=dict(self.commands.counts), command_seconds=self.commands.histogram(),
            notifications=dict(notifier.counts), notifications_pending=notifier.pending,
            notifications_delivering=bool(notifier.delivering))
