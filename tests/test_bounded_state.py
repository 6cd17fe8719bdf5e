"""Bounded state: alert rules, audit retention, counted repeats, interrupted records."""

from __future__ import annotations

import json
import logging
import threading
import time

import gevent
import gevent.queue
import pytest

from dashboard.console.operator import Operator
from dashboard.console.sessions import ConsoleSession
from dashboard.store.audit import AuditLog, Record, RedisAuditLog
from dashboard.store.audit_summary import AuditSummary
from tests.test_commands import fails, run
from tests.test_consoles import FakeWS
from tests.test_periodic import until

DAY = 86400


@pytest.fixture
def ctx(svc):
    from dashboard.console.commands import Context

    svc.sampler.tick()
    return Context(Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")


def test_alert_rules_stop_at_max_alert_rules_with_bad_args(ctx, svc):
    svc.config["MAX_ALERT_RULES"] = 3
    ids = [run(ctx, f"alert set cpu > {i}")["id"] for i in range(3)]
    err = fails(ctx, "alert set cpu > 99", "bad_args")
    assert "3 alert rules (MAX_ALERT_RULES)" in err.message
    assert len(svc.alerts.rules) == 3
    run(ctx, f"alert clear {ids[0]}")
    assert run(ctx, "alert set memory > 50")["metric"] == "memory"  # room again


def test_the_limit_holds_in_redis_when_workers_race(store):
    results = []

    def add(i):
        results.append(store.add_rule({"metric": "cpu", "op": ">", "threshold": i, "hold": 0, "by": "x"}, 5))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 5 and len(store.rules()) == 5
    assert {r["id"] for r in results if r} == set(store.rules())
    added = next(r for r in results if r)
    assert store.rules()[added["id"]] == added and added["by"] == "x"


def old_record(ts: float, line: str = "status") -> Record:
    return Record("alice", "operator", "s", "127.0.0.1", line.split()[0], line, "ok", ts=ts)


def test_sqlite_retention_trims_old_records_only(tmp_path):
    log = AuditLog(str(tmp_path / "a.sqlite3"))
    now = time.time()
    for i in range(12_000):  # more than one delete batch
        log.db.execute("INSERT INTO audit (ts, operator, role, session, addr, action, line, outcome)"
                       " VALUES (?, 'a', 'operator', 's', 'x', 'status', 'status', 'ok')", (now - 100 * DAY + i,))
    log.append(old_record(now - 10 * DAY, "status recent"))
    assert log.trim(now - 90 * DAY) == 12_000
    assert [r["line"] for r in log.latest(10)] == ["status recent"]


def test_redis_retention_trims_the_stream_by_age(store):
    now_ms = int(time.time() * 1000)
    for i in range(50):
        store.r.xadd(store.key("audit"), {"ts": "1", "line": f"old {i}", "outcome": "ok"}, id=f"{now_ms - 100 * DAY * 1000 + i}-0")
    audit = RedisAuditLog(store)
    audit.append(old_record(time.time(), "status new"))
    assert audit.trim(time.time() - 90 * DAY) == 50
    assert [r["line"] for r in audit.latest(10)] == ["status new"]


def test_redis_pending_records_of_dead_processes_are_settled_as_interrupted(store):
    audit = RedisAuditLog(store)
    now = time.time()
    dead = audit.append(Record("bob", "operator", "s", "x", "pause", "pause", "pending", ts=now - 600))
    done = audit.append(Record("bob", "operator", "s", "x", "resume", "resume", "pending", ts=now - 600))
    audit.settle(done, "ok")
    running = audit.append(Record("bob", "operator", "s", "x", "interval", "interval 2", "pending", ts=now))
    assert audit.settle_interrupted(now, older_than=now - 60) == 1
    rows = {r["line"]: r for r in audit.latest(10)}
    assert rows["pause"]["outcome"] == "interrupted" and "settled at the restart" in rows["pause"]["detail"]
    assert rows["resume"]["outcome"] == "ok" and rows["interval 2"]["outcome"] == "pending"
    assert audit.settle_interrupted(now, older_than=now - 60) == 0  # once only
    assert dead.id and running.id


def rows(svc) -> list[dict]:
    return svc.audit.latest(500)


def test_repeated_read_only_requests_are_counted_not_stored_one_row_each(svc):
    svc.desk.logins.rate, svc.desk.logins.burst = 10_000.0, 10_000
    svc.desk.rate, svc.desk.burst = 10_000.0, 10_000
    svc.sampler.tick()
    before = len(rows(svc))
    observer = Operator("eve", "observer", "sess-eve", "10.0.0.9", "cookie")
    s = ConsoleSession(FakeWS(), observer, svc.desk)
    for i in range(300):
        s.handle(json.dumps({"id": i, "line": "status"}))
        s.handle(json.dumps({"id": f"u{i}", "line": "stauts"}))  # failed: unknown command
        s.handle(json.dumps({"id": f"f{i}", "line": "pause"}))  # failed: forbidden
        gevent.sleep(0)  # let the writer drain the outbox
    gevent.sleep(0.05)
    assert len([m for m in s.ws.sent if "ok" in m]) == 900  # every request still got its reply
    new = rows(svc)[before:]
    assert [(r["action"], r["outcome"]) for r in new] == [
        ("status", "ok"), ("?", "unknown_command"), ("pause", "forbidden")]
    assert svc.audit_summary.folded == 897
    svc.audit_summary.flush()  # the end of the window
    summaries = rows(svc)[before + 3:]
    assert sorted((r["action"], r["outcome"]) for r in summaries) == [
        ("?", "unknown_command"), ("pause", "forbidden"), ("status", "ok")]
    assert all(r["detail"].startswith("repeated 299 more times from ") for r in summaries)
    # Changes still get one record each.
    op = ConsoleSession(FakeWS(), Operator("alice", "operator", "sess-a", "10.0.0.1", "cookie"), svc.desk)
    for i in range(5):
        op.handle(json.dumps({"id": i, "line": f"broadcast hello {i}"}))
    gevent.sleep(0.05)
    assert [r["line"] for r in rows(svc)[-5:]] == [f"broadcast hello {i}" for i in range(5)]


class Windows:
    """The summary's clock, moved by the test: each sleep of the summary loop
    lasts until the test ends the window."""

    def __init__(self):
        self.asked: list[float] = []  # what each sleep was for
        self._ends = gevent.queue.Queue()

    def sleep(self, seconds):
        self.asked.append(seconds)
        self._ends.get()

    def end(self):
        """End the current window, and return once the loop sleeps in the next one."""
        n = len(self.asked)
        self._ends.put(None)
        until(lambda: len(self.asked) == n + 1)


def test_the_summary_window_runs_by_itself(tmp_path):
    log = AuditLog(str(tmp_path / "a.sqlite3"))
    windows = Windows()
    summary = AuditSummary(log, window=30, sleep=windows.sleep)
    runner = gevent.spawn(summary.run)
    until(lambda: windows.asked == [30])
    for _ in range(10):
        summary.record(old_record(time.time()))
    windows.end()
    for _ in range(3):
        summary.record(old_record(time.time()))
    windows.end()
    windows.end()  # a window with nothing in it writes nothing
    runner.kill()
    assert windows.asked == [30] * 4
    details = [r["detail"] for r in log.latest(10)]
    assert len(details) == 4 and details[0] is None and details[2] is None
    assert details[1].startswith("repeated 9 more") and details[3].startswith("repeated 2 more")


def test_a_failing_summary_window_is_logged_and_the_next_one_still_ends(tmp_path, caplog):
    log = AuditLog(str(tmp_path / "a.sqlite3"))
    windows = Windows()
    summary = AuditSummary(log, window=30, sleep=windows.sleep)
    real_flush, calls = summary.flush, []

    def flush():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real_flush()

    summary.flush = flush
    runner = gevent.spawn(summary.run)
    until(lambda: windows.asked == [30])
    for _ in range(3):
        summary.record(old_record(time.time()))
    with caplog.at_level(logging.ERROR, logger="dashboard.audit"):
        windows.end()
    assert any("audit summary failed" in r.getMessage() for r in caplog.records)
    windows.end()
    runner.kill()
    assert [r["detail"][:15] if r["detail"] else None for r in log.latest(10)] == [None, "repeated 2 more"]


def test_login_buckets_outlive_sessions_and_are_forgotten_once_full_again():
    from dashboard.console.sessions import Logins

    now = [1000.0]
    logins = Logins(rate=100.0, burst=5, max_consoles=3, clock=lambda: now[0])
    bucket = logins.limit("bearer:operator:10.0.0.1")
    for _ in range(5):
        assert bucket.take() == 0
    assert logins.limit("bearer:operator:10.0.0.1").take() > 0  # the same bucket, still empty
    logins.forget_idle()
    assert len(logins) == 1  # not idle yet
    now[0] += 11  # untouched for 11 s: full again, refusals too old to count
    logins.forget_idle()
    assert len(logins) == 0
