"""The parts one process runs, wired together: collectors -> sampler -> hub.

`create_app` builds one `Services` per app; nothing here starts at import or at
construction. `ensure_started` spawns the sampler and the heartbeat greenlet
the first time it runs in a process (after gunicorn forks its worker), and
again in a child if the app object was inherited across a fork.
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

from . import __version__, protocol
from .alerts import Alerts, Rule, unit_of
from .audit import AuditLog, Record
from .auth import Tokens
from .cgroups import Container, discover
from .collectors import SYSTEM_COLLECTORS, Collector
from .consoles import GOING_AWAY, NORMAL, Consoles
from .events import Alert, Config, Event, Notice, to_json
from .history import History
from .hub import Hub
from .processes import ProcessTable
from .sampler import Sampler

log = logging.getLogger(__name__)


class Services:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.version = __version__
        self.host = config["HOST_NAME"] or socket.gethostname()
        self.hub = Hub(
            history_seconds=config["HISTORY_SECONDS"],
            backlog=config["VIEWER_BACKLOG"],
            write_timeout=config["VIEWER_WRITE_TIMEOUT"],
            heartbeat=config["HEARTBEAT_SECONDS"],
            retry_ms=config["SSE_RETRY_MS"],
        )
        self.history = History(config["HISTORY_SECONDS"])
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
        self.audit = AuditLog(config["AUDIT_DB"], config["AUDIT_SYNC"])
        self.revoked_sessions: set[str] = self.audit.revoked()
        self.command_counts: dict[tuple[str, str], int] = {}
        self.command_seconds: dict[str, float] = {}
        self.latest: dict | None = None
        self.latest_json: str | None = None
        self.started_at = time.time()
        self.shutting_down = False
        self._pid: int | None = None
        self._ticker: gevent.Greenlet | None = None

    # ---- lifecycle ------------------------------------------------------------

    def ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        self.started_at = time.time()
        self.sampler.start()
        self._ticker = gevent.spawn(self._heartbeats)
        log.info(
            "sampling %s every %gs, keeping %ds of history (pid %d)",
            self.host,
            self.sampler.interval,
            self.config["HISTORY_SECONDS"],
            pid,
        )

    def _heartbeats(self) -> None:
        period = min(1.0, self.hub.heartbeat_seconds / 2)
        while True:
            gevent.sleep(period)
            if self.hub.heartbeat_due():
                self.hub.heartbeat()

    def shutdown(self, reason: str = "server shutting down") -> int:
        """End every stream now so the worker can exit well before SIGKILL."""
        if self.shutting_down:
            return 0
        self.shutting_down = True
        self.sampler.stop()
        if self._ticker is not None:
            self._ticker.kill(block=False)
        closed = self.hub.close_all(reason)
        consoles = self.consoles.close_all(GOING_AWAY, reason)
        log.info("shutting down: closed %d event streams and %d consoles", closed, consoles)
        return closed

    # ---- data flow ----------------------------------------------------------------

    def on_sample(self, sample: dict) -> None:
        data = to_json(sample)
        frame = self.hub.publish_raw("metrics", data)
        self.history.add(frame.id, sample)
        self.latest, self.latest_json = sample, data
        for rule, state in self.alerts.evaluate(sample):
            self.publish(alert_event(rule, state))

    def publish(self, event: Event):
        """To every dashboard (SSE) and every console (a push)."""
        frame = self.hub.publish(event)
        self.consoles.broadcast(protocol.push(event.type, event_id=frame.id, **event.payload()))
        return frame

    # ---- control (the operator console drives these) -------------------------------

    def config_event(self, change: str, by: str | None) -> Config:
        return Config(
            interval=self.sampler.interval,
            paused=self.sampler.paused,
            alerts=[r.public() for r in self.alerts.rules.values()],
            change=change,
            by=by,
        )

    def set_interval(self, seconds: float, by: str | None = None) -> Config:
        self.sampler.set_interval(seconds)
        event = self.config_event(f"interval {seconds:g}", by)
        self.publish(event)
        return event

    def set_paused(self, paused: bool, by: str | None = None) -> tuple[bool, Config]:
        changed = self.sampler.pause() if paused else self.sampler.resume()
        event = self.config_event("pause" if paused else "resume", by)
        if changed:
            self.publish(event)
        return changed, event

    def add_alert(self, metric: str, op: str, value: float, hold: float, by: str | None) -> Rule:
        rule = self.alerts.add(metric, op, value, hold, by)
        self.publish(self.config_event(f"alert set {rule.id}: {rule.describe()}", by))
        return rule

    def remove_alert(self, rule_id: str, by: str | None) -> Rule:
        rule = self.alerts.remove(rule_id)
        if rule.state == "firing":
            self.publish(alert_event(rule, "resolved", "rule cleared"))
        self.publish(self.config_event(f"alert clear {rule.id}", by))
        return rule

    def broadcast(self, message: str, by: str | None) -> Notice:
        event = Notice(message=message, by=by)
        self.publish(event)
        return event

    # ---- sessions and audit ------------------------------------------------------

    def end_session(self, sid: str, expires: float) -> int:
        """Refuse this login from now on and close its consoles."""
        self.revoked_sessions.add(sid)
        self.audit.revoke(sid, expires)
        return self.consoles.close_login(sid, NORMAL, "logged out")

    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None:
        self.audit.append(Record(name, role, sid[:12], addr, action, action, outcome))

    def command_done(self, name: str, outcome: str, seconds: float) -> None:
        key = (name, outcome)
        self.command_counts[key] = self.command_counts.get(key, 0) + 1
        self.command_seconds[name] = self.command_seconds.get(name, 0.0) + seconds

    # ---- health ------------------------------------------------------------------------

    def health(self, details: bool = False) -> tuple[bool, dict]:
        now = time.monotonic()
        sampler = self.sampler
        age = None if sampler.last_sample_at is None else round(now - sampler.last_sample_at, 3)
        limit = max(3 * sampler.interval, 5.0)
        if sampler.paused:
            ok, state = True, "paused"
        elif age is None:
            ok = time.time() - self.started_at < limit
            state = "starting" if ok else "stuck"
        else:
            ok = age <= limit
            state = "sampling" if ok else "stuck"
        return ok, {
            "status": "ok" if ok else "unhealthy",
            "sampler": {
                "state": state,
                "age": age,
                "interval": sampler.interval,
                "last_duration": None
                if sampler.last_duration is None
                else round(sampler.last_duration, 4),
                "seq": sampler.seq,
            },
            "subscribers": len(self.hub.subscribers),
            "version": self.version,
            "pid": os.getpid(),
            **({"process": process_details()} if details else {}),
        }


def alert_event(rule: Rule, state: str, why: str = "") -> Alert:
    unit = unit_of(rule.metric)
    value = "?" if rule.value is None else f"{rule.value:g}{unit}"
    message = f"{rule.describe()}: {'firing' if state == 'firing' else 'resolved'} at {value}"
    return Alert(rule=rule.public(), state=state, value=rule.value,
                 message=message + (f" ({why})" if why else ""))


def process_details() -> dict:
    """Resource use of this process, for leak checks (costs a few ms: on request only)."""
    try:
        open_files = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_files = None
    return {
        "open_files": open_files,
        "rss": psutil.Process().memory_info().rss,
        "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
    }
