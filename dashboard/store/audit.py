"""The audit log: every console command, written durably before its reply.

SQLite in WAL mode: each record is committed before the command's reply is
sent, so a killed server (even `kill -9`) loses no record an operator was told
about. `synchronous=NORMAL` makes a commit one append to the WAL file (fast
enough for thousands of commands a second); `AUDIT_SYNC=full` also waits for
the disk, which survives power loss too. Each record is also one JSON line on
stdout (a structured log line), which platforms such as Heroku keep.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from dataclasses import dataclass, field
from typing import Protocol

import gevent

from .group_commit import GroupCommit

log = logging.getLogger("dashboard.audit")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    operator TEXT NOT NULL,
    role TEXT NOT NULL,
    session TEXT NOT NULL,
    addr TEXT NOT NULL,
    action TEXT NOT NULL,
    line TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT
);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    session TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
"""


_FIELDS = ("ts", "operator", "role", "session", "addr", "action", "line", "outcome", "detail")


_INSERT = ("INSERT INTO audit (ts, operator, role, session, addr, action, line, outcome, detail)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPDATE = "UPDATE audit SET outcome = ?, detail = ? WHERE id = ?"


class StoreUnavailable(RuntimeError):
    """A write to the audit log or the shared store failed: the command must not
    run, or must not be acknowledged."""


@dataclass
class Record:
    operator: str
    role: str
    session: str
    addr: str
    action: str  # the command name, or login/logout
    line: str
    outcome: str  # ok, pending, or an error code
    detail: str | None = None
    ts: float = field(default_factory=time.time)
    id: int | str | None = None

    def public(self) -> dict:
        # Built by hand: dataclasses.asdict deep-copies every field, which cost
        # more than the rest of a `status` command on the console's hot path.
        return {"operator": self.operator, "role": self.role, "session": self.session, "addr": self.addr,
                "action": self.action, "line": self.line, "outcome": self.outcome, "detail": self.detail,
                "ts": self.ts, "id": self.id}


INTERRUPTED = "interrupted"
TRIM_BATCH = 5000  # rows deleted per statement; the loop yields between batches


def interrupted_detail(now: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return f"the server stopped before the outcome was recorded; settled at the restart, {stamp}"


class AuditStore(Protocol):
    """The audit log as its users see it, whichever store keeps it."""

    def append(self, record: "Record") -> "Record": ...
    def settle(self, record: "Record", outcome: str, detail: str | None = None) -> "Record": ...
    def latest(self, n: int) -> list[dict]: ...
    def revoke(self, session: str, expires: float) -> None: ...
    def is_revoked(self, session: str) -> bool: ...


class _AuditBase:
    """What both stores share: durable write first, then one log line; failures
    become StoreUnavailable so the command is refused. A store provides
    `_insert(record) -> id`, `_update(record, outcome, detail)` and `errors`."""

    errors: tuple = ()

    def append(self, record: Record) -> Record:
        try:
            record.id = self._insert(record)
        except self.errors as exc:
            log.error("audit write failed: %s", exc)
            raise StoreUnavailable(str(exc)) from exc
        log.info("audit", extra={"fields": {"audit": record.public()}})
        return record

    def settle(self, record: Record, outcome: str, detail: str | None = None) -> Record:
        """Record the outcome of a command that was appended as pending before it ran."""
        try:
            self._update(record, outcome, detail)
        except self.errors as exc:
            log.error("audit update failed: %s", exc)
            raise StoreUnavailable(str(exc)) from exc
        record.outcome, record.detail = outcome, detail
        log.info("audit", extra={"fields": {"audit": record.public()}})
        return record


class AuditLog(_AuditBase):
    def __init__(self, path: str, sync: str = "normal") -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        # One connection per process, used from greenlets that never overlap
        # inside a call (sqlite3 calls do not yield to gevent).
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(_SCHEMA)
        self._revoked = self.revoked()
        # Group commit: the writes that arrive while a commit is being prepared
        # share one transaction. Each caller still waits until its record is
        # committed (so no reply ever gets ahead of its record), but under load
        # the cost of a commit is paid once for many commands.
        self.writes = GroupCommit(self._write, errors=self.errors, name="audit log", logger=log)

    errors = (sqlite3.Error,)

    def _insert(self, record: Record) -> int:
        return self.writes.commit(("insert", tuple(getattr(record, k) for k in _FIELDS)))

    def _update(self, record: Record, outcome: str, detail: str | None) -> None:
        self.writes.commit(("update", (outcome, detail, record.id)))

    def _write(self, batch: list, final: bool) -> list:
        many = len(batch) > 1  # one statement alone is its own transaction
        try:
            if many:
                self.db.execute("BEGIN")
            done = []
            for kind, args in batch:
                if kind == "insert":
                    done.append(self.db.execute(_INSERT, args).lastrowid)
                else:
                    self.db.execute(_UPDATE, args)
                    done.append(None)
            if many:
                self.db.execute("COMMIT")
        except sqlite3.Error:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        return done

    def latest(self, n: int) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, ts, operator, role, session, addr, action, line, outcome, detail"
            " FROM audit ORDER BY id DESC LIMIT ?",
            (n,),
        ).fetchall()
        keys = ("id", "ts", "operator", "role", "session", "addr", "action", "line", "outcome", "detail")
        return [dict(zip(keys, row)) for row in reversed(rows)]

    # Sessions ended by logout stay refused until their cookie would expire,
    # across restarts too: the list lives next to the audit records.

    def revoke(self, session: str, expires: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO revoked_sessions (session, expires) VALUES (?, ?)", (session, expires)
        )
        self._revoked.add(session)

    def revoked(self) -> set[str]:
        now = time.time()
        self.db.execute("DELETE FROM revoked_sessions WHERE expires < ?", (now,))
        return {row[0] for row in self.db.execute("SELECT session FROM revoked_sessions")}

    def is_revoked(self, session: str) -> bool:
        return session in self._revoked

    # ---- upkeep (wiring runs these in the background) ------------------------------

    def trim(self, before: float) -> int:
        """Delete records older than `before` (epoch seconds), in batches. Returns how many."""
        deleted = 0
        while True:
            cur = self.db.execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ? ORDER BY id LIMIT ?)",
                (before, TRIM_BATCH))
            deleted += cur.rowcount
            if cur.rowcount < TRIM_BATCH:
                return deleted
            gevent.sleep(0)  # let requests in between batches

    def settle_interrupted(self, now: float, older_than: float | None = None) -> int:
        """Records still `pending` (their process died mid-command) become `interrupted`.
        SQLite serves one process, so at its start every pending record is such a one."""
        where, args = "outcome = 'pending'", []
        if older_than is not None:
            where += " AND ts < ?"
            args.append(older_than)
        rows = self.db.execute(f"SELECT id, ts, operator, role, session, addr, action, line FROM audit"
                               f" WHERE {where}", args).fetchall()
        detail = interrupted_detail(now)
        for rid, ts, operator, role, session, addr, action, line in rows:
            self.db.execute(_UPDATE, (INTERRUPTED, detail, rid))
            record = Record(operator, role, session, addr, action, line, INTERRUPTED, detail, ts, rid)
            log.warning("audit", extra={"fields": {"audit": record.public()}})
        return len(rows)

    def close(self) -> None:
        self.db.close()


class RedisAuditLog(_AuditBase):
    """The audit log as a Redis stream, for deployments whose disks do not last
    (a dyno's filesystem is wiped on every restart). A record is acknowledged
    once Redis has accepted it; how it survives a Redis restart is the Redis
    server's persistence setting (appendonly/appendfsync)."""

    def __init__(self, store) -> None:
        import redis

        self.store = store
        self.errors = (redis.RedisError, OSError)

    def _insert(self, record: Record) -> str:
        return self.store.audit_add(
            {k: "" if getattr(record, k) is None else str(getattr(record, k)) for k in _FIELDS})

    def _update(self, record: Record, outcome: str, detail: str | None) -> None:
        # Streams are append-only: the outcome is a second entry naming the first.
        self.store.audit_add({"ref": str(record.id), "outcome": outcome, "detail": detail or ""})

    def latest(self, n: int) -> list[dict]:
        entries = self.store.audit_latest(n * 2 + 20)
        outcomes: dict[str, tuple[str, str]] = {}
        records: list[dict] = []
        for entry_id, f in entries:  # newest first: outcomes come before their records
            if "ref" in f:
                outcomes.setdefault(f["ref"], (f.get("outcome", ""), f.get("detail", "")))
                continue
            record = {"id": entry_id, **{k: f.get(k, "") for k in _FIELDS}}
            record["ts"] = float(record["ts"] or 0)
            if entry_id in outcomes:
                record["outcome"], record["detail"] = outcomes[entry_id]
            record["detail"] = record["detail"] or None
            records.append(record)
            if len(records) == n:
                break
        return list(reversed(records))

    def trim(self, before: float) -> int:
        """Drop stream entries older than `before` (stream ids are milliseconds)."""
        return self.store.audit_trim(int(before * 1000))

    def settle_interrupted(self, now: float, older_than: float | None = None) -> int:
        """Pending records without an outcome entry, older than `older_than` (other
        processes may have a command running right now), get one: interrupted."""
        cutoff = now if older_than is None else older_than
        pending: dict[str, dict] = {}
        settled: set[str] = set()
        for seen, (entry_id, f) in enumerate(self.store.audit_scan(), start=1):
            if "ref" in f:
                settled.add(f["ref"])
            elif f.get("outcome") == "pending" and float(f.get("ts") or 0) < cutoff:
                pending[entry_id] = f
            if seen % 1000 == 0:
                gevent.sleep(0)  # let requests in between pages
        detail = interrupted_detail(now)
        count = 0
        for entry_id, f in pending.items():
            if entry_id in settled:
                continue
            self.store.audit_add({"ref": entry_id, "outcome": INTERRUPTED, "detail": detail})
            log.warning("audit", extra={"fields": {"audit": {**f, "id": entry_id, "outcome": INTERRUPTED,
                                                            "detail": detail}}})
            count += 1
        return count

    def revoke(self, session: str, expires: float) -> None:
        self.store.revoke(session, expires)

    def is_revoked(self, session: str) -> bool:
        try:
            return self.store.is_revoked(session)
        except self.errors:
            return True  # cannot check: refuse rather than honour a logged-out session

    def close(self) -> None:
        pass
