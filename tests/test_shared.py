"""One set of tests for the `control.shared.Shared` interface, each run on both
implementations: `LocalShared` (one process) and `RedisShared` (a real redis-server),
and on `RedisShared` while its Redis cannot be reached (it serves this process alone).
A behaviour that differs between them fails here, not in production."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

import pytest

from dashboard import settings
from dashboard.alerts.rules import Alerts
from dashboard.control.local import LocalShared
from dashboard.control.redis import RedisShared
from dashboard.sampling.sampler import Sampler
from dashboard.stream.events import Notice
from dashboard.stream.views import Views
from dashboard.store.audit import StoreUnavailable
from dashboard.stream.wire import encode
from tests.support.server import free_port
from tests.support.waiting import eventually

HOST = "test-host"


class Table:
    """A process table holding three processes (the latest sample's)."""

    latest = [11, 12, 13]

    def rows(self, procs):
        return [{"pid": p, "name": f"proc-{p}"} for p in procs]


@dataclass
class Backend:
    shared: LocalShared | RedisShared
    views: Views
    pushes: list = field(default_factory=list)
    transitions: list = field(default_factory=list)
    catch_up: Callable[[int], None] = lambda pushes: None  # Redis: read back what was published

    def frames(self) -> list[str]:
        return [f.type for f in self.views.local.hub.frames()]


@pytest.fixture(params=["local", "redis", "redis-away"])
def backend(request):
    config = settings.defaults()
    views = Views(HOST, config)
    sampler = Sampler((), lambda sample: None, interval=1.0, host=HOST)
    alerts = Alerts()
    pushes, transitions = [], []

    def on_transition(rule, st, change, host, sample, why=""):
        transitions.append((rule.id, change, host))

    local = LocalShared(sampler, alerts, views, Table(), push=pushes.append, on_transition=on_transition)
    if request.param == "local":
        yield Backend(local, views, pushes, transitions)
        return
    from dashboard.store.redis_store import RedisStore

    if request.param == "redis-away":  # nothing listens there: every call is refused at once
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "t", history_seconds=60)
    else:
        store = RedisStore(request.getfixturevalue("redis_server").url, "t", history_seconds=60)
    shared = RedisShared.build(store, sampler, alerts, views, role="web", lease_seconds=5, stale_seconds=3,
                               table_rows=local.own_rows, on_transition=on_transition,
                               push=pushes.append, fallback=local)
    if request.param == "redis-away":
        yield Backend(shared, views, pushes, transitions)
        shared.stop()
        store.close()
        return
    channel = store.pubsub()
    shared.fleet.connect()  # what the fleet's supervisor does, without its loops: the test reads
    sampler.stop()  # the lease started it; samples here are the test's own

    def catch_up(n_pushes: int) -> None:
        shared.fleet.read_once(block_ms=200)

        def caught_up() -> bool:
            msg = channel.get_message(timeout=0.5)
            if msg is not None and msg["channel"] == store.key("pushes"):
                pushes.append(msg["data"])
            return len(pushes) >= n_pushes
        try:
            eventually(caught_up, 10, 0)
        except AssertionError:
            pass  # the caller's assertion names what is missing

    yield Backend(shared, views, pushes, transitions, catch_up)
    shared.stop()
    channel.close()
    store.close()


def a_sample(seq: int, cpu: float) -> dict:
    return {"ts": 1_700_000_000.5 + seq, "seq": seq, "host": HOST, "interval": 1.0,
            "cpu": {"percent": cpu, "per_core": [cpu]}, "missing": {}}


def test_the_interval_is_set_and_read_back(backend):
    backend.shared.set_interval(2.5)
    assert backend.shared.interval() == 2.5
    assert backend.shared.stats().interval == 2.5


def test_pause_and_resume_say_whether_they_changed_anything(backend):
    shared = backend.shared
    assert shared.set_paused(True) is True and shared.paused()
    assert shared.set_paused(True) is False and shared.paused()
    assert shared.set_paused(False) is True and not shared.paused()
    assert shared.set_paused(False) is False and not shared.paused()


def test_alert_rules_are_added_up_to_the_limit_removed_and_never_reuse_an_id(backend):
    shared = backend.shared
    first = shared.add_rule("cpu", ">", 90, 0, "alice", limit=2)
    second = shared.add_rule("memory", ">", 80, 5, "bob", limit=2)
    assert (first.id, second.id) == ("a1", "a2")
    assert shared.add_rule("load1", ">", 4, 0, "carol", limit=2) is None  # full: nothing added
    assert sorted(shared.rules()) == ["a1", "a2"]
    assert shared.rules()["a2"]["hold"] == 5 and shared.rules()["a2"]["by"] == "bob"
    assert shared.remove_rule("a1").metric == "cpu"
    assert sorted(shared.rules()) == ["a2"]
    with pytest.raises(KeyError):
        shared.remove_rule("a1")
    assert shared.add_rule("cpu", ">", 95, 0, "alice", limit=2).id == "a3"


def test_an_event_reaches_every_viewer_and_every_console(backend):
    backend.shared.publish_event(Notice(message="maintenance at noon", by="ops"))
    backend.catch_up(1)
    assert backend.frames() == ["notice"]
    pushed = json.loads(backend.pushes[-1])
    assert pushed["type"] == "notice" and pushed["message"] == "maintenance at noon" and pushed["by"] == "ops"


def test_a_sample_is_shown_and_its_alert_transitions_are_published_once(backend):
    shared = backend.shared
    shared.add_rule("cpu", ">", 50, 0, "alice", limit=10)
    for seq, cpu in ((1, 95.0), (2, 96.0), (3, 10.0)):
        sample = a_sample(seq, cpu)
        shared.publish_sample(sample, encode(sample))
        backend.catch_up(0)  # read as it comes, as the reader does (with Redis, two entries of two
        # streams made in one millisecond are in the order they are read, not the order of their ids)
    backend.catch_up(2)
    assert backend.views.local.latest["seq"] == 3
    assert backend.frames() == ["metrics", "alert", "metrics", "metrics", "alert"]
    assert backend.transitions == [("a1", "firing", HOST), ("a1", "resolved", HOST)]
    assert [json.loads(p)["state"] for p in backend.pushes] == ["firing", "resolved"]
    assert shared.alert_states()[("a1", HOST)]["state"] == "ok"


def test_a_rule_fires_and_its_state_is_kept_per_host(backend):
    shared = backend.shared
    shared.add_rule("cpu", ">", 50, 0, "alice", limit=10)
    sample = a_sample(1, 99.0)
    shared.publish_sample(sample, encode(sample))
    backend.catch_up(1)
    state = shared.alert_states()[("a1", HOST)]
    assert state["state"] == "firing" and state["value"] == 99.0


def test_the_process_table_of_this_host_and_an_unknown_one(backend):
    assert backend.shared.process_rows(HOST) == Table().rows(Table.latest)
    away = isinstance(backend.shared, RedisShared) and not backend.shared.fleet.shared
    # Another host's table lives in Redis: while it is away, the question is refused.
    with pytest.raises(StoreUnavailable if away else KeyError):
        backend.shared.process_rows("no-such-host")


def test_hosts_lists_this_host_first_with_its_latest_sample(backend):
    sample = a_sample(4, 20.0)
    backend.shared.publish_sample(sample, encode(sample))
    backend.catch_up(0)
    first = backend.shared.hosts()[0]
    assert first["name"] == HOST and first["local"] is True and first["stale"] is False
    assert first["role"] == "web" and first["last_seen"] == sample["ts"]


def test_stats_is_one_snapshot_of_the_settings_and_the_latest_sample(backend):
    shared = backend.shared
    shared.set_interval(2.0)
    shared.set_paused(True)
    sample = a_sample(7, 20.0)
    shared.publish_sample(sample, encode(sample))
    backend.catch_up(0)
    stats = shared.stats()
    assert (stats.interval, stats.paused, stats.seq, stats.sampling_here) == (2.0, True, 7, False)
    assert stats.latest_at is not None and stats.latest_at <= time.monotonic()
    if isinstance(shared, RedisShared) and not shared.fleet.shared:
        assert (stats.mode, stats.redis) == ("local: Redis unreachable", {"shared": False, "error": None})
    elif isinstance(shared, RedisShared):
        assert (stats.mode, stats.redis) == ("shared through Redis", {"shared": True, "error": None})
    else:
        assert (stats.mode, stats.redis) == ("embedded (one process)", None)
