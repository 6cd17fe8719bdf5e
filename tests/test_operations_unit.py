"""`Operations` built from plain fakes of its collaborators (no Instance, no app), and the
rule that only the wiring and the two `Shared` implementations ask whether Redis is in use."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashboard.alerts.rules import Rule
from dashboard.control.shared import Stats
from dashboard.operations import Operations
from dashboard.store.audit import StoreUnavailable

PACKAGE = Path(__file__).resolve().parent.parent / "dashboard"


class FakeShared:
    host = "h1"
    alone = True

    def __init__(self) -> None:
        self.published = []
        self.troubles = []
        self.pause_changes = True
        self._rules: dict[str, dict] = {}
        self.states: dict = {}
        self._interval, self._paused = 1.0, False

    def interval(self):
        return self._interval

    def set_interval(self, seconds):
        self._interval = seconds

    def paused(self):
        return self._paused

    def set_paused(self, paused):
        self._paused = paused
        return self.pause_changes

    def rules(self):
        return dict(self._rules)

    def alert_states(self):
        return dict(self.states)

    def add_rule(self, metric, op, threshold, hold, by, limit):
        if len(self._rules) >= limit:
            return None
        rule = Rule(f"a{len(self._rules) + 1}", metric, op, threshold, hold, by, 1.0)
        self._rules[rule.id] = rule.public()
        return rule

    def remove_rule(self, rule_id):
        return Rule.from_dict(self._rules.pop(rule_id))

    def publish_event(self, event):
        self.published.append(event)

    def process_rows(self, host):
        if host != self.host:
            raise KeyError(host)
        return [{"pid": 1}]

    def hosts(self):
        return [{"name": self.host, "local": True}]

    def stats(self):
        return Stats(mode="fake", interval=self._interval, paused=self._paused, sampling_here=True,
                     last_duration=0.002, seq=5, latest_at=None, redis=None)

    def trouble(self, exc):
        self.troubles.append(exc)


class FakeNotifier:
    def channels(self):
        raise OSError("disk gone")


class FakeViews(list):
    def streams(self):
        return []


def operations(shared, limit=2, notifier=None, recorded=None):
    return Operations(shared, FakeViews(), processes=None, containers=None, notifier=notifier or FakeNotifier(), audit=None,
                      consoles=[], record=lambda *a: recorded.append(a) if recorded is not None else None,
                      notify_errors=(OSError,), config={"MAX_ALERT_RULES": limit, "ALLOW_PROCESS_CONTROL": False},
                      version="9.9", uptime=lambda: 12.34)


def test_status_reads_one_stats_snapshot():
    status = operations(FakeShared()).status()
    assert status["mode"] == "fake" and status["uptime"] == 12.3 and status["host"] == "h1"
    assert status["sampler"] == {"interval": 1.0, "paused": False, "here": True, "seq": 5, "last_duration_ms": 2.0}


def test_pause_publishes_only_what_changed():
    shared = FakeShared()
    ops = operations(shared)
    assert ops.set_paused(True, by="a")[0] is True and [e.change for e in shared.published] == ["pause"]
    shared.pause_changes = False
    changed, event = ops.set_paused(True, by="a")
    assert changed is False and event.paused is True and len(shared.published) == 1


def test_the_alert_limit_is_one_message_whatever_the_backend():
    shared = FakeShared()
    ops = operations(shared, limit=1)
    ops.add_alert("cpu", ">", 90, 0, by="a")
    with pytest.raises(ValueError, match="already 1 alert rules .MAX_ALERT_RULES."):
        ops.add_alert("memory", ">", 90, 0, by="a")
    assert [e.change for e in shared.published] == ["alert set a1: cpu > 90"]


def test_clearing_a_firing_rule_resolves_it_records_it_then_says_so():
    shared, recorded = FakeShared(), []
    ops = operations(shared, recorded=recorded)
    ops.add_alert("cpu", ">", 90, 0, by="a")
    shared.states[("a1", "h1")] = {"state": "firing", "since": 1.0, "value": 95.0}
    ops.remove_alert("a1", by="a")
    assert [e.type for e in shared.published[1:]] == ["alert", "config"]
    assert [(r[0].id, r[2], r[3], r[5]) for r in recorded] == [("a1", "resolved", "h1", "rule cleared")]


def test_a_notification_store_that_fails_refuses_the_command_and_says_so_to_the_shared_state():
    shared = FakeShared()
    with pytest.raises(StoreUnavailable, match="disk gone"):
        operations(shared).notify_channels()
    assert len(shared.troubles) == 1


def test_process_rows_default_to_this_host():
    assert operations(FakeShared()).process_rows() == [{"pid": 1}]


# Where "is Redis in use?" may be asked: the one place that picks, the Redis side
# itself, and the settings (declared, and tried before the server starts).
ALLOWED = {"wiring.py", "agent.py", "control/redis.py", "fleet/sharing.py", "fleet/lease.py",
           "settings.py", "preflight.py", "state_place.py"}  # the last says, at start, where state lives
ASKS = re.compile(
    r"\b(?:if|elif|and|or|not)\b[^#\n]*[\"']REDIS_URL[\"']|\bredis_url\b"  # the setting tested
    r"|\b(?:if|elif|and|or|not)\s+[\w.]*\.(?:shared|fleet)\b(?![.(\w])"  # a truth test of sharing
    r"|\.fleet\s+is\s+(?:not\s+)?None"
    r"|isinstance\([^)]*(?:RedisStore|RedisTiers|RedisShared|LocalShared|HistoryStore|Fleet)\b")


def test_only_the_picker_and_the_redis_side_ask_whether_redis_is_in_use():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ASKS.search(line):
                found.append(f"dashboard/{name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_check_finds_the_questions_it_is_meant_to_find():
    for line in ('if node.shared:', 'if self.node.fleet is not None:', 'if config["REDIS_URL"]:',
                 'and not node.shared or', 'isinstance(self.lasting, HistoryStore)'):
        assert ASKS.search(line), line
    for line in ('self.shared.publish_event(event)', 'changed = self.shared.set_paused(paused)',
                 'RedisStore(config["REDIS_URL"], config["REDIS_PREFIX"])', 'if self.store is None:'):
        assert not ASKS.search(line), line
