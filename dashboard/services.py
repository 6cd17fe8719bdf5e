"""The parts one process runs, wired together: collectors -> sampler -> hub.

`create_app` builds one `Services` per app; nothing here starts at import or at
construction. `ensure_started` spawns the sampler and the heartbeat greenlet
the first time it runs in a process (after gunicorn forks its worker), and
again in a child if the app object was inherited across a fork.

Each host this process serves has a `HostView`: its hub (the event buffer and
its viewers), its chart history and its latest sample. Without REDIS_URL there
is one, for this host, fed by this process's sampler. With it, `Fleet` feeds
every view from Redis and this process samples only when it holds the lease.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import time

import gevent
import gevent.event
import greenlet
import psutil

from . import __version__, protocol
from .alerts import Alerts, Rule, RuleState, check
from .audit import AuditLog, Record, RedisAuditLog, StoreUnavailable
from .auth import Tokens
from .cgroups import Container, discover
from .collectors import SYSTEM_COLLECTORS, Collector
from .consoles import GOING_AWAY, NORMAL, Consoles
from .events import Config, Event, EventKey, Notice, to_json
from .fleet import Fleet, alert_event
from .history import History
from .hub import Frame, Hub
from .processes import ProcessTable
from .sampler import Sampler

log = logging.getLogger(__name__)

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
        )
        self.history = History(config["HISTORY_SECONDS"])
        self.latest: dict | None = None
        self.latest_json: str | None = None
        self.latest_at: float | None = None  # monotonic, when the latest sample arrived
        self.used_at = time.monotonic()
        self.ready = gevent.event.Event()
        self.ready.set()


class Services:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.version = __version__
        self.host = config["HOST_NAME"] or socket.gethostname()
        self.local = HostView(self.host, config)
        self.views: dict[str, HostView] = {self.host: self.local}
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
            from .redis_store import RedisStore

            self.store = RedisStore(
                config["REDIS_URL"],
                config["REDIS_PREFIX"],
                history_seconds=config["HISTORY_SECONDS"],
                tls_verify=config["REDIS_TLS_VERIFY"],
            )
            self.fleet = Fleet(self, self.store)
            self.audit = RedisAuditLog(self.store)
            # Nothing is served from this host's view until it holds what Redis
            # has (or Redis proved unreachable): a viewer resuming right after a
            # restart must find its last event there.
            self.local.ready.clear()
        else:
            self.audit = AuditLog(config["AUDIT_DB"], config["AUDIT_SYNC"])
        self.command_counts: dict[tuple[str, str], int] = {}
        self.command_latency = None  # a histogram, once /metrics is installed
        self.started_at = time.time()
        self.shutting_down = False
        self._pid: int | None = None
        self._ticker: gevent.Greenlet | None = None

    # The local host's parts, for the many places that only ever serve it.
    @property
    def hub(self) -> Hub:
        return self.local.hub

    @property
    def history(self) -> History:
        return self.local.history

    @property
    def latest_json(self) -> str | None:
        return self.local.latest_json

    @property
    def shared(self) -> bool:
        return self.fleet is not None and self.fleet.shared

    # ---- lifecycle ------------------------------------------------------------

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        self.started_at = time.time()
        # With Redis, the fleet decides: sample only under the host's lease, or
        # locally while Redis cannot be reached.
        if self.fleet is None:
            self.sampler.start()
        else:
            self.fleet.start()
        self._ticker = gevent.spawn(self._heartbeats)
        log.info(
            "sampling %s every %gs, keeping %ds of history (pid %d)%s",
            self.host,
            self.sampler.interval,
            self.config["HISTORY_SECONDS"],
            pid,
            ", sharing through Redis" if self.fleet else "",
        )

    def _heartbeats(self) -> None:
        period = min(1.0, self.local.hub.heartbeat_seconds / 2)
        while True:
            gevent.sleep(period)
            now = time.monotonic()
            for name, view in list(self.views.items()):
                if view.hub.heartbeat_due():
                    view.hub.heartbeat()
                if view.hub.subscribers:
                    view.used_at = now
                elif view is not self.local and now - view.used_at > IDLE_VIEW_SECONDS:
                    del self.views[name]
                    if self.fleet is not None:
                        self.fleet.unfollow(name)

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
        closed = sum(view.hub.close_all(reason) for view in list(self.views.values()))
        consoles = self.consoles.close_all(GOING_AWAY, reason)
        log.info("shutting down: closed %d event streams and %d consoles", closed, consoles)
        return closed

    # ---- hosts -----------------------------------------------------------------------

    def view(self, host: str | None = None) -> HostView:
        """The view of host (this one by default); KeyError for a host nobody has heard of."""
        if not host or host == self.host:
            self.local.ready.wait(10)
            return self.local
        existing = self.views.get(host)
        if existing is not None:
            existing.ready.wait(10)
            existing.used_at = time.monotonic()
            return existing
        if not self.shared or host not in self.fleet.hosts():
            raise KeyError(host)
        view = HostView(host, self.config)
        view.ready.clear()
        self.views[host] = view
        try:
            self.fleet.follow(view)
        except StoreUnavailable:
            del self.views[host]
            raise
        finally:
            view.ready.set()
        return view

    def hosts(self) -> list[dict]:
        """Every host this dashboard can show, this one first."""
        out = {self.host: {"name": self.host, "local": True, "stale": False, "role": "web"}}
        if self.fleet is not None:
            for name, info in self.fleet.hosts().items():
                out.setdefault(name, {"name": name, "local": False})
                out[name].update(
                    {k: info.get(k) for k in ("last_seen", "stale", "role", "interval", "paused")})
        local = out[self.host]
        if self.local.latest is not None:
            local["last_seen"] = self.local.latest.get("ts")
        return list(out.values())

    # ---- data flow ----------------------------------------------------------------

    def on_sample(self, sample: dict) -> None:
        data = to_json(sample)
        if self.shared:
            try:
                self.fleet.sampling.publish(sample, data)
                return
            except Exception as exc:  # Redis went away between two samples
                self.fleet.trouble(exc)
                log.warning("could not share a sample (%s); showing it locally", exc)
        self.ingest(self.host, "metrics", data, sample=sample)
        for rule, st, change in self.alerts.evaluate(sample, self.host):
            self.publish(alert_event(rule, st, change, self.host))

    def ingest(self, host: str, type: str, data: str, key: EventKey | None = None,
               sample: dict | None = None) -> Frame | None:
        """One event of host, encoded once, into this process's view of it."""
        view = self.views.get(host)
        if view is None:
            return None
        try:
            frame = view.hub.publish_raw(type, data, key)
        except ValueError:
            # Older than what these viewers already have (entries written while
            # this process was cut off from Redis and showed local samples).
            return None
        if type == "metrics":
            if sample is None:
                try:
                    sample = json.loads(data)
                except ValueError:
                    return frame
            view.history.add(frame.id, sample)
            view.latest, view.latest_json, view.latest_at = sample, data, time.monotonic()
        return frame

    def publish(self, event: Event) -> None:
        """To every dashboard (SSE) and every console (a push), here or everywhere."""
        if self.shared:
            self.fleet.publish_event(event)  # comes back through each process's reader
            return
        data = to_json(event.payload())
        frame = None
        for host in list(self.views):
            frame = self.ingest(host, event.type, data) or frame
        self.consoles.broadcast(
            protocol.push(event.type, event_id=frame.id if frame else None, **event.payload()))

    # ---- control (the operator console drives these) -------------------------------

    def alert_rules(self) -> list[dict]:
        """Rules with the hosts where they fire."""
        if self.shared:
            rules = self.fleet.call(self.store.rules)
            states = self.fleet.call(self.store.alert_states)
        else:
            rules = {rid: r.public() for rid, r in self.alerts.rules.items()}
            states = {k: v.public() for k, v in self.alerts.states.items()}
        out = []
        for rid, rule in rules.items():
            firing = sorted(h for (r, h), st in states.items() if r == rid and st["state"] == "firing")
            here = {h: st for (r, h), st in states.items() if r == rid}
            out.append({**rule, "firing": firing, "states": here})
        return out

    def config_event(self, change: str, by: str | None) -> Config:
        return Config(
            interval=self.sampler.interval,
            paused=self.sampler.paused,
            alerts=self.alert_rules(),
            change=change,
            by=by,
        )

    def set_interval(self, seconds: float, by: str | None = None) -> Config:
        if self.shared:
            self.fleet.call(self.store.set_state, interval=seconds)
        self.sampler.set_interval(seconds)
        event = self.config_event(f"interval {seconds:g}", by)
        self.publish(event)
        return event

    def set_paused(self, paused: bool, by: str | None = None) -> tuple[bool, Config]:
        if self.shared:
            was = self.fleet.call(self.store.state).get("paused", False)
            self.fleet.call(self.store.set_state, paused=paused)
            changed = was != paused
            self.sampler.pause() if paused else self.sampler.resume()
        else:
            changed = self.sampler.pause() if paused else self.sampler.resume()
        event = self.config_event("pause" if paused else "resume", by)
        if changed:
            self.publish(event)
        return changed, event

    def add_alert(self, metric: str, op: str, value: float, hold: float, by: str | None) -> Rule:
        if self.shared:
            check(metric, op)
            raw = self.fleet.call(self.store.add_rule, {
                "metric": metric, "op": op, "threshold": value, "hold": hold, "by": by,
                "created": time.time()})
            self.alerts.replace(self.fleet.call(self.store.rules))
            rule = self.alerts.rules[raw["id"]]
        else:
            rule = self.alerts.add(metric, op, value, hold, by)
        self.publish(self.config_event(f"alert set {rule.id}: {rule.describe()}", by))
        return rule

    def remove_alert(self, rule_id: str, by: str | None) -> Rule:
        before = next((r for r in self.alert_rules() if r["id"] == rule_id), None)
        if self.shared:
            raw = self.fleet.call(self.store.remove_rule, rule_id)
            if raw is None:
                raise KeyError(rule_id)
            rule = Rule.from_dict(raw)
            self.alerts.replace(self.fleet.call(self.store.rules))
        else:
            rule = self.alerts.remove(rule_id)
        for host in (before or {}).get("firing", []):
            st = RuleState(**before["states"][host])
            self.publish(alert_event(rule, st, "resolved", host, "rule cleared"))
        self.publish(self.config_event(f"alert clear {rule.id}", by))
        return rule

    def broadcast(self, message: str, by: str | None) -> Notice:
        event = Notice(message=message, by=by)
        self.publish(event)
        return event

    def process_rows(self, host: str | None = None) -> list[dict]:
        """The full process table of host, from the latest sample (never a new scan)."""
        host = host or self.host
        if host == self.host and (not self.shared or self.fleet.sampling.holding):
            return self.processes.rows(self.processes.latest)
        if self.fleet is None:
            raise KeyError(host)
        rows = self.fleet.call(self.store.procs, host)
        if rows is None:
            raise KeyError(host)
        return rows

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
            "subscribers": sum(len(v.hub.subscribers) for v in list(self.views.values())),
            "version": self.version,
            "pid": os.getpid(),
        }
        if self.fleet is not None:
            body["redis"] = {"shared": self.fleet.shared, "error": self.fleet.error}
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
