"""The audit log's upkeep against the real server: records a SIGKILL left
`pending` are settled as `interrupted` at the restart, records past
AUDIT_RETENTION_DAYS are trimmed, and the alert rule limit holds across dynos."""

from __future__ import annotations

import json
import sqlite3
import time

from dashboard.store.audit import AuditLog, Record
from tests.support.wsclient import Console
from tests.support.waiting import eventually

FLOOD = {"CONSOLE_RATE": "100000", "CONSOLE_BURST": "100000", "CONSOLE_LOGIN_RATE": "100000",
         "CONSOLE_LOGIN_BURST": "100000", "AUDIT_RETENTION_DAYS": "90"}


def pending_ids(db: str) -> list[int]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM audit WHERE outcome = 'pending'")]


def test_a_sigkill_leaves_pending_records_that_the_restart_settles_and_old_ones_go(start_server, tmp_path):
    db = str(tmp_path / "audit-upkeep.sqlite3")
    seed = AuditLog(db)
    now = time.time()
    for i in range(20):  # from long ago: past the retention
        seed.append(Record("old", "operator", "s", "x", "status", f"status {i}", "ok", ts=now - 120 * 86400))
    seed.append(Record("recent", "operator", "s", "x", "status", "status recent", "ok", ts=now - 30 * 86400))
    seed.close()
    env = {**FLOOD, "AUDIT_DB": db}
    # Kill the server while four consoles pour changes into it: some of their
    # records are committed `pending` and not yet settled. (A kill can land
    # between two commits; then there is nothing to settle and we kill again.)
    left = []
    servers = []
    for attempt in range(25):
        server = start_server(env)
        servers.append(server)
        consoles = [Console(server.port, name=f"op{i}") for i in range(4)]
        for c in consoles:
            for i in range(300):
                c.send_line(f"broadcast flood {i}")
        time.sleep(0.05 + 0.1 * (attempt % 6))  # different moments: a kill that lands between commits tries again
        server.kill()  # SIGKILL to the whole process group
        left = pending_ids(db)
        if left:
            break
    assert left, "no kill landed while a command was pending"
    restarted_at = time.time()
    again = start_server(env)
    eventually(lambda: pending_ids(db) == [], what="every pending record settled")
    with sqlite3.connect(db) as conn:
        settled = conn.execute(
            f"SELECT outcome, detail FROM audit WHERE id IN ({','.join(map(str, left))})").fetchall()
        old = conn.execute("SELECT count(*) FROM audit WHERE operator = 'old'").fetchone()[0]
        recent = conn.execute("SELECT count(*) FROM audit WHERE operator = 'recent'").fetchone()[0]
    assert {outcome for outcome, _ in settled} == {"interrupted"}
    stamps = {detail.rsplit(", ", 1)[1] for _, detail in settled}
    assert len(stamps) == 1
    stamp = time.mktime(time.strptime(stamps.pop(), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert restarted_at - 1 <= stamp <= time.time() + 1  # the restart's time
    assert (old, recent) == (0, 1)
    # The console shows the settled records too.
    rows = Console(again.port).ok("audit 500")["rows"]
    shown = [row for row in rows if row[5] == "interrupted"]
    assert shown and all("settled at the restart" in row[6] for row in shown)
    def upkeep(server) -> str:
        return next(json.loads(line)["msg"] for line in server.log().splitlines() if "audit upkeep" in line)

    assert "20 records older than 90 days deleted" in upkeep(servers[0])  # trimmed at the first start
    assert f"{len(left)} pending records settled as interrupted" in upkeep(again)


def test_the_alert_rule_limit_holds_across_dynos_on_redis(start_server, redis_server):
    env = {"REDIS_URL": redis_server.url, "MAX_ALERT_RULES": "3", "SAMPLE_INTERVAL": "0.5"}
    a = start_server({**env, "HOST_NAME": "web-a"}, name="a")
    b = start_server({**env, "HOST_NAME": "web-b"}, name="b")
    ca, cb = Console(a.port), Console(b.port)
    assert ca.ok("alert set cpu > 90")["id"] and cb.ok("alert set memory > 90")["id"]
    assert ca.ok("alert set load1 > 9")["id"]
    for console in (ca, cb):
        err = console.error("alert set swap > 50")
        assert err["code"] == "bad_args" and "MAX_ALERT_RULES" in err["message"]
    assert len(cb.ok("alert list")["rows"]) == 3
