"""The `Shared` interface: the state every process of one dashboard must agree on.

Two implementations: `local.LocalShared` (one process: the sampler, the rules, the
local fan-out, the SQLite state) and `redis.RedisShared` (the fleet and the lease).
The wiring picks one, once; nothing else asks whether Redis is in use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol

from ..alerts.rules import Rule, RuleState
from ..stream.events import Event

log = logging.getLogger("dashboard.control")


@dataclass(frozen=True)
class Stats:
    """One snapshot of the sharing and the sampler, for status, /healthz and /metrics."""

    mode: str  # "embedded (one process)", "shared through Redis", "local: Redis unreachable"
    interval: float
    paused: bool
    sampling_here: bool  # this process's sampler runs
    last_duration: float | None  # seconds the latest sample took
    seq: int  # of the latest sample this process shows of its host
    latest_at: float | None  # monotonic, when that sample arrived
    redis: dict | None  # {"shared": bool, "error": str | None} with Redis, else None


class Shared(Protocol):
    host: str  # the host this process samples
    alone: bool  # no other process writes the same stores (a record left pending is a dead one's)

    # the sampler's settings, the same for every process
    def interval(self) -> float: ...
    def set_interval(self, seconds: float) -> None: ...  # StoreUnavailable
    def paused(self) -> bool: ...
    def set_paused(self, paused: bool) -> bool: ...  # True when it changed

    # alert rules (public dicts by id) and their states per (rule id, host)
    def rules(self) -> dict[str, dict]: ...
    def alert_states(self) -> dict[tuple[str, str], dict]: ...
    def add_rule(self, metric: str, op: str, threshold: float, hold: float, by: str | None,
                 limit: int, hosts: str | None = None) -> Rule | None: ...  # None: `limit` rules exist already
    def remove_rule(self, rule_id: str) -> Rule: ...  # KeyError: unknown rule

    # to every dashboard and console
    def publish_event(self, event: Event) -> None: ...
    def publish_sample(self, sample: dict, encoded: str) -> None: ...

    def process_rows(self, host: str) -> list[dict]: ...  # KeyError: unknown host
    def hosts(self) -> list[dict]: ...  # this host first
    def stats(self) -> Stats: ...
    def trouble(self, exc: BaseException) -> None: ...  # a write elsewhere failed: reconnect now

    def start(self) -> None: ...
    def stop(self) -> None: ...


def this_host(name: str, latest: dict | None) -> dict:
    """The hosts() row of the host this process samples."""
    row = {"name": name, "local": True, "stale": False, "role": "web"}
    if latest is not None:
        row["last_seen"] = latest.get("ts")
    return row


class Transitions:
    """Keeps each alert transition with its evidence for every notification channel
    (nothing is sent here); a store that fails is logged, never raised into the sampler."""

    def __init__(self, record: Callable[..., object], errors: tuple[type[BaseException], ...]) -> None:
        self._record = record
        self.errors = errors

    def __call__(self, rule: Rule, st: RuleState, change: str, host: str, sample: dict | None,
                 why: str = "") -> None:
        try:
            self._record(rule, st, change, host, sample, why)
        except self.errors as exc:
            log.error("could not record the alert transition %s %s on %s: %s", rule.id, change, host, exc)
