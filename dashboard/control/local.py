"""`LocalShared`: the shared state kept in this one process (no Redis).

The sampler holds the interval and pause, `Alerts` the rules and their states, the
views fan each event out to this process's viewers and a push goes to its consoles.
With a lasting store (SQLite under DATA_DIR) the interval, pause and rules are saved
on every change and taken back at start. `RedisShared` also runs one of these,
without a store, while Redis cannot be reached.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Protocol

from ..alerts.rules import Alerts, Rule, alert_event
from ..console import protocol
from ..sampling.processes import ProcessTable
from ..sampling.sampler import Sampler, check_interval
from ..sampling.summary import Summarizer
from ..store import chart_minutes
from ..stream.events import Event, to_json
from ..stream.fleet_board import FleetBoard
from ..stream.history import Minutes
from ..stream.views import Views
from .shared import Stats, this_host

log = logging.getLogger("dashboard.control")


class StateStore(Protocol):
    """Where the embedded state lasts (store.history_store.HistoryStore)."""

    def save_state(self, name: str, value) -> None: ...
    def state(self) -> dict: ...
    def events(self, since_ms: int) -> list: ...
    def add_event(self, key, type: str, data: str) -> None: ...
    def add_minute(self, host: str, start: int, blob: bytes) -> None: ...
    def minutes(self, host: str, since: float) -> list[bytes]: ...


class LocalShared:
    name = "shared state (this process)"
    alone = True

    def __init__(self, sampler: Sampler, alerts: Alerts, views: Views, processes: ProcessTable, *,
                 push: Callable[[str], None], on_transition: Callable[..., None],
                 store: StateStore | None = None, board: FleetBoard | None = None) -> None:
        self.sampler = sampler
        self.alerts = alerts
        self.views = views
        self.host = views.local.name
        self.processes = processes
        self.push = push  # to every console of this process
        self.on_transition = on_transition  # keeps it for notifications
        self.store = store
        self.board = board  # the fleet at a glance: this one host, embedded
        self.summarizer = Summarizer(self.host)
        self.minutes = Minutes()  # the charts' hour, kept apart from whole events (stream/history.py)

    # ---- settings -------------------------------------------------------------------

    def interval(self) -> float:
        return self.sampler.interval

    def set_interval(self, seconds: float) -> None:
        self.sampler.set_interval(seconds)
        self._save()

    def paused(self) -> bool:
        return self.sampler.paused

    def set_paused(self, paused: bool) -> bool:
        changed = self.sampler.pause() if paused else self.sampler.resume()
        if changed:
            self._save()
        return changed

    # ---- alert rules -----------------------------------------------------------------

    def rules(self) -> dict[str, dict]:
        return {rid: r.public() for rid, r in self.alerts.rules.items()}

    def alert_states(self) -> dict[tuple[str, str], dict]:
        return {k: v.public() for k, v in self.alerts.states.items()}

    def add_rule(self, metric: str, op: str, threshold: float, hold: float, by: str | None,
                 limit: int, hosts: str | None = None) -> Rule | None:
        if len(self.alerts.rules) >= limit:
            return None
        rule = self.alerts.add(metric, op, threshold, hold, by, hosts)
        self._save()
        return rule

    def remove_rule(self, rule_id: str) -> Rule:
        rule = self.alerts.remove(rule_id)
        self._save()
        return rule

    # ---- events and samples ----------------------------------------------------------

    def publish_event(self, event: Event) -> None:
        """To every view this process shows and a push to each of its consoles."""
        data = to_json(event.payload())
        frame = None
        for host in self.views.names():
            frame = self.views.ingest(host, event.type, data) or frame
        self.push(protocol.push(event.type, event_id=frame.id if frame else None, **event.payload()))

    def publish_sample(self, sample: dict, encoded: str) -> None:
        self.views.ingest(self.host, "metrics", encoded, sample=sample)
        if self.store is not None and self.views.local.keep is not None:
            self._keep_minutes(self.minutes.add(sample))
        changes = self.alerts.evaluate(sample, self.host)
        for rule, st, change in changes:
            self.publish_event(alert_event(rule, st, change, self.host))
            self.on_transition(rule, st, change, self.host, sample)
        if changes:
            self._save()  # a restart must not announce a firing rule again
        if self.board is not None:
            firing = sum(1 for _rule, host in self.alerts.firing() if host == self.host)
            self.board.update(self.host, self.summarizer.add(sample, firing=firing, paused=self.sampler.paused)[1])

    # ---- reading ---------------------------------------------------------------------

    def process_rows(self, host: str) -> list[dict]:
        if host != self.host:
            raise KeyError(host)
        return self.own_rows()

    def own_rows(self) -> list[dict]:
        return self.processes.rows(self.processes.latest)

    def hosts(self) -> list[dict]:
        return [this_host(self.host, self.views.local.latest)]

    def stats(self, mode: str = "embedded (one process)", redis: dict | None = None) -> Stats:
        sampler, local = self.sampler, self.views.local
        return Stats(mode=mode, interval=sampler.interval, paused=sampler.paused, sampling_here=sampler.running,
                     last_duration=sampler.last_duration, seq=(local.latest or {}).get("seq", sampler.seq),
                     latest_at=local.latest_at, redis=redis)

    def trouble(self, exc: BaseException) -> None:
        """Nothing to reconnect to."""

    # ---- lifecycle and lasting state -------------------------------------------------

    def start(self) -> None:
        self.sampler.start()

    def _keep_minutes(self, ready: list) -> None:
        for start, rows in ready:
            self.store.add_minute(self.host, start, chart_minutes.encode(rows))
        self.minutes.sent()

    def stop(self) -> None:
        self.sampler.stop()
        if self.store is not None:
            if self.views.local.keep is not None:
                self._keep_minutes(self.minutes.unfinished())  # a restart long after finds it
            self.views.local.keep = None  # the store closes after this

    def _save(self) -> None:
        if self.store is not None:
            self.store.save_state("interval", self.sampler.interval)
            self.store.save_state("paused", self.sampler.paused)
            self.store.save_state("alerts", self.alerts.saved())

    def restore(self, history_seconds: float) -> None:
        """Take up where the last process stopped: its events, ids, seq and state, and the
        charts' rows of the hour before those events."""
        store = self.store
        if store is None:
            return
        started = time.monotonic()
        since = time.time() - history_seconds
        try:
            events = store.events(int(since * 1000))
            minutes = store.minutes(self.host, since)
            state = store.state()
        except Exception as exc:  # sqlite3.Error: a damaged page found only now
            log.error("history store unreadable, starting without its events and state: %s", exc)
            events, minutes, state = [], [], {}
        seq = self.views.local.restore(events)
        names = len(self.views.local.history.names)
        rows = [chart_minutes.decode(blob, names) for blob in minutes]
        self.views.local.history.add_older([row for part in rows for row in part])
        if rows and rows[-1] and rows[-1][0][0] is not None:  # the minute left unfinished at stop
            self.minutes.seed(int(rows[-1][0][0]) // 60 * 60, rows[-1])
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
        self.views.local.keep = store.add_event
        if events:
            log.info("restored %d events (up to seq %d) and the console's state in %.0f ms",
                     len(events), seq, (time.monotonic() - started) * 1000)
