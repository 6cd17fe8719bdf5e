"""One host's sampler under its lease in Redis (with its fleet summary), and global events.

Whoever holds `{p}:lease:{host}` samples that host for everyone: a web process
(the fleet) or an agent. The lease expires within seconds of its holder's
death, and the next process to ask takes over, continuing the host's `seq`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from typing import Callable

from ..alerts.rules import Alerts, RuleState, alert_event
from ..console import protocol
from ..sampling.sampler import Sampler
from ..sampling.summary import Summarizer
from ..store import chart_minutes
from ..store.fleet_store import FleetStore
from ..store.redis_minutes import RedisMinutes
from ..store.redis_store import RedisStore
from ..stream.events import Event, to_json
from ..stream.history import History, Minutes

log = logging.getLogger("dashboard.fleet")

# Another process's ps/top for this host reads a table at most this old (seconds).
TABLE_SECONDS = 5.0

__all__ = ["HostSampling", "new_holder", "publish_everywhere"]


def new_holder() -> str:
    """A lease holder's id: host, pid, and 3 random bytes (os.urandom, as the secrets module draws
    them; importing that module would load hmac and OpenSSL's libcrypto into the agent)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class HostSampling:
    """One host's sampler, running only while this process holds the host's lease."""

    def __init__(self, store: RedisStore, host: str, sampler: Sampler, alerts: Alerts, *,
                 lease_seconds: float, role: str, table_rows: Callable[[], list],
                 publish_event: Callable[[Event], None],
                 on_transition: Callable[..., None] = lambda rule, st, change, host, sample: None) -> None:
        self.store = store
        self.host = host
        self.sampler = sampler
        self.alerts = alerts
        self.lease_seconds = lease_seconds
        self.role = role
        self.table_rows = table_rows
        self.publish_event = publish_event
        self.on_transition = on_transition  # records it for notifications (only the holder sees it)
        self.holder = new_holder()
        self.holding = False
        self._table_at: float | None = None  # when the full process table was last written
        self.summarizer = Summarizer(host)  # the fleet's summary, written with each sample
        self.fleet_store = FleetStore(store)
        self.minutes = Minutes()  # the charts' hour, kept apart from whole samples (stream/history.py)
        self.stored_minutes = RedisMinutes(store)

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
        self.store.new_frames(self.host)  # no sample compressed against a key frame Redis may not have
        self.sampler.continue_from(self.store.last_seq(self.host))
        start = int(time.time()) // 60 * 60  # the minute the last holder left unfinished, if it did
        blob = self.stored_minutes.stored(self.host, start)
        if blob:
            self.minutes.seed(start, chart_minutes.decode(blob, len(History.names)))
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
                unfinished = self.minutes.unfinished()
                if unfinished:  # so a restart long after still charts the minute under way
                    self.stored_minutes.add(self.host, [(s, chart_minutes.encode(r)) for s, r in unfinished])
                self.store.release(self.host, self.holder)
            except self.store.errors:
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
        info = {"role": self.role, "interval": self.sampler.interval, "pid": os.getpid(),
                "paused": self.sampler.paused}
        # The full table (every process, for another process's ps and top) costs
        # as much again as the sample on a busy host: written at most every
        # TABLE_SECONDS, not with every sample.
        rows = None
        now = time.monotonic()
        if self._table_at is None or now - self._table_at >= TABLE_SECONDS:
            rows = json.dumps(self.table_rows(), separators=(",", ":"))
            self._table_at = now
        changes = self.alerts.evaluate(sample, self.host)
        firing = sum(1 for h in self.alerts.firing() if h[1] == self.host)
        summary, changed = self.summarizer.add(sample, firing=firing, paused=self.sampler.paused)
        minutes = [(start, chart_minutes.encode(r)) for start, r in self.minutes.add(sample)]

        def also(pipe) -> None:
            self.fleet_store.write(pipe, self.host, summary, changed)
            self.stored_minutes.queue(pipe, self.host, minutes)

        self.store.add_sample(self.host, data, rows, info, also=also)
        self.minutes.sent()
        for rule, st, change in changes:
            self.store.save_alert_state(rule.id, self.host, st.public())
            self.publish_event(alert_event(rule, st, change, self.host))
            self.on_transition(rule, st, change, self.host, sample)


def publish_everywhere(fleet_store: FleetStore, event: Event) -> str:
    """An event for every dashboard (written once, merged by every reader into each
    host it shows) and every console."""
    payload = event.payload()
    event_id = fleet_store.add_event(event.type, to_json(payload))
    fleet_store.store.push(protocol.push(event.type, **payload))
    return event_id
