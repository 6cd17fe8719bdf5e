"""`RedisShared`: a web process's side of the state kept in Redis, shared by every worker, dyno and agent.

The interval, pause and alert rules live in Redis (a write that fails refuses the
command: StoreUnavailable); events go once to the global stream and a push to every
console; each host is sampled by whoever holds its lease (`fleet.lease`), and every
web process reads the streams it serves (`fleet.sharing.Fleet`). While Redis cannot
be reached, the process serves its own host through a `LocalShared` (without a
store). An agent (dashboard/agent.py) runs the same lease in a loop of its own.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from ..alerts.rules import Alerts, Rule
from ..fleet.lease import HostSampling
from ..fleet.sharing import Fleet
from ..sampling.sampler import Sampler
from ..store.redis_store import RedisStore
from ..store.redis_trouble import REFUSALS, refuses_writes
from ..stream.events import Event
from ..stream.fleet_board import FleetBoard
from ..stream.views import Views
from .local import LocalShared
from .shared import Stats, this_host

log = logging.getLogger("dashboard.control")


class RedisShared:
    name = "shared state (Redis)"
    alone = False

    def __init__(self, store: RedisStore, fleet: Fleet, fallback: LocalShared) -> None:
        self.store = store
        self.fleet = fleet
        self.sampling = fleet.sampling
        self.sampler = self.sampling.sampler
        self.alerts = self.sampling.alerts
        self.host = self.sampling.host
        self.local = fallback  # what the process shows while Redis is away

    @classmethod
    def build(cls, store: RedisStore, sampler: Sampler, alerts: Alerts, views: Views, *,
              role: str, lease_seconds: float, stale_seconds: float, table_rows: Callable[[], list],
              on_transition: Callable[..., None], fallback: LocalShared, push: Callable[[str], None] | None = None,
              board: FleetBoard | None = None) -> "RedisShared":
        """The lease and the fleet over one store (a web process's; the agent runs its own loop)."""
        sampling = HostSampling(store, sampler.host, sampler, alerts, lease_seconds=lease_seconds, role=role,
                                table_rows=table_rows, publish_event=lambda event: fleet.publish_event(event),
                                on_transition=on_transition)
        fleet = Fleet(store, views, sampling, on_push=push, stale_seconds=stale_seconds, board=board)
        views.remote = fleet
        return cls(store, fleet, fallback)

    @property
    def _shared(self) -> bool:
        return self.fleet.shared

    # ---- settings -------------------------------------------------------------------

    def interval(self) -> float:
        return self.sampler.interval

    def set_interval(self, seconds: float) -> None:
        if self._shared:
            self.fleet.call(self.store.set_state, interval=seconds)
        self.sampler.set_interval(seconds)

    def paused(self) -> bool:
        return self.sampler.paused

    def set_paused(self, paused: bool) -> bool:
        if not self._shared:
            return self.local.set_paused(paused)
        was = self.fleet.call(self.store.state).get("paused", False)
        self.fleet.call(self.store.set_state, paused=paused)
        self.sampler.pause() if paused else self.sampler.resume()
        return was != paused

    # ---- alert rules -----------------------------------------------------------------

    def rules(self) -> dict[str, dict]:
        if not self._shared:
            return self.local.rules()
        return self.fleet.call(self.store.rules)

    def alert_states(self) -> dict[tuple[str, str], dict]:
        if not self._shared:
            return self.local.alert_states()
        return self.fleet.call(self.store.alert_states)

    def add_rule(self, metric: str, op: str, threshold: float, hold: float, by: str | None,
                 limit: int, hosts: str | None = None) -> Rule | None:
        if not self._shared:
            return self.local.add_rule(metric, op, threshold, hold, by, limit, hosts)
        # Checked and added in one step in Redis, so workers racing cannot pass the limit.
        raw = self.fleet.call(self.store.add_rule, {
            "metric": metric, "op": op, "threshold": threshold, "hold": hold, "by": by,
            "created": time.time(), "hosts": hosts}, limit)
        if raw is None:
            return None
        self.alerts.replace(self.fleet.call(self.store.rules))
        return self.alerts.rules[raw["id"]]

    def remove_rule(self, rule_id: str) -> Rule:
        if not self._shared:
            return self.local.remove_rule(rule_id)
        raw = self.fleet.call(self.store.remove_rule, rule_id)
        if raw is None:
            raise KeyError(rule_id)
        self.alerts.replace(self.fleet.call(self.store.rules))
        return Rule.from_dict(raw)

    # ---- events and samples ----------------------------------------------------------

    def publish_event(self, event: Event) -> None:
        if not self._shared:
            return self.local.publish_event(event)
        self.fleet.publish_event(event)  # comes back through each process's reader

    def publish_sample(self, sample: dict, encoded: str) -> None:
        if self._shared:
            try:
                self.sampling.publish(sample, encoded)
                REFUSALS.cleared("the sampler")
                return
            except Exception as exc:  # Redis went away between two samples, or refuses writes
                self.fleet.trouble(exc)
                level = logging.WARNING
                if refuses_writes(exc):  # said once for the whole process (store/redis_store.py)
                    REFUSALS.met(exc, "the sampler")
                    level = logging.DEBUG
                log.log(level, "could not share a sample (%s); showing it locally", exc)
        self.local.publish_sample(sample, encoded)

    # ---- reading ---------------------------------------------------------------------

    def process_rows(self, host: str) -> list[dict]:
        if host == self.host and (not self._shared or self.sampling.holding):
            return self.sampling.table_rows()
        rows = self.fleet.call(self.store.procs, host)
        if rows is None:
            raise KeyError(host)
        return rows

    def hosts(self) -> list[dict]:
        latest = self.fleet.views.local.latest
        out = {self.host: this_host(self.host, None)}
        for name, info in self.fleet.hosts().items():
            out.setdefault(name, {"name": name, "local": False})
            out[name].update({k: info.get(k) for k in ("last_seen", "stale", "role", "interval", "paused")})
        if latest is not None:
            out[self.host]["last_seen"] = latest.get("ts")
        return list(out.values())

    def stats(self) -> Stats:
        shared = self._shared
        redis = {"shared": shared, "error": self.fleet.error}
        mode = "shared through Redis" if shared else "local: Redis unreachable"
        return self.local.stats(mode, redis)

    def trouble(self, exc: BaseException) -> None:
        self.fleet.trouble(exc)

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """The fleet decides: sample under the host's lease, or locally while Redis is away."""
        self.fleet.start()

    def stop(self) -> None:
        self.fleet.stop()  # releases the lease: another process can take over at once
        self.sampler.stop()
