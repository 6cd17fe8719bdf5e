import json
import logging
import sqlite3

import pytest

from dashboard.store.audit import AuditLog, StoreUnavailable, Record


def rec(line, outcome="ok"):
    return Record("alice", "operator", "sess", "127.0.0.1", line.split()[0], line, outcome)


def test_records_are_committed_and_survive_reopening(tmp_path):
    path = str(tmp_path / "a.sqlite3")
    log = AuditLog(path)
    first = log.append(rec("status"))
    pending = log.append(rec("interval 2", "pending"))
    log.settle(pending, "ok")
    log.close()  # as a killed process would leave it: nothing buffered in Python
    again = AuditLog(path)
    rows = again.latest(10)
    assert [(r["id"], r["line"], r["outcome"]) for r in rows] == [
        (first.id, "status", "ok"),
        (pending.id, "interval 2", "ok"),
    ]
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_each_record_is_also_one_json_log_line(tmp_path, caplog):
    from dashboard.logs import JsonFormatter

    log = AuditLog(str(tmp_path / "a.sqlite3"))
    with caplog.at_level(logging.INFO, logger="dashboard.audit"):
        log.append(rec("broadcast hi"))
    (record,) = caplog.records
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line)["audit"]["line"] == "broadcast hi"


def test_a_broken_store_raises_unavailable(tmp_path):
    log = AuditLog(str(tmp_path / "a.sqlite3"))
    log.db.close()
    with pytest.raises(StoreUnavailable):
        log.append(rec("status"))


def test_revoked_sessions_expire(tmp_path):
    log = AuditLog(str(tmp_path / "a.sqlite3"))
    log.revoke("s1", expires=1e12)
    log.revoke("s2", expires=1.0)  # long expired
    assert log.revoked() == {"s1"}


def test_full_sync_is_a_setting(tmp_path):
    log = AuditLog(str(tmp_path / "a.sqlite3"), sync="full")
    assert log.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert isinstance(log.db, sqlite3.Connection)
