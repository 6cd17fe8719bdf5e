"""Notifications' store in one SQLite file under DATA_DIR (the embedded default; see store/notify_store.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import time

from .notify_store import HISTORY_KEEP, status_update

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    name TEXT PRIMARY KEY, url TEXT NOT NULL, by TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS channel_status (
    name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, transition TEXT NOT NULL,
    created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, until REAL NOT NULL);
"""


class SqliteNotifyStore:
    def __init__(self, path: str) -> None:
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self, statements: list[tuple[str, tuple]]) -> list[int]:
        ids = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                ids.append(self.db.execute(sql, args).lastrowid)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ids

    # ---- channels ---------------------------------------------------------------

    def add_channel(self, name: str, url: str, by: str | None, limit: int | None = None) -> dict | None:
        row = {"name": name, "url": url, "by": by, "created": time.time()}
        try:
            # One statement: the count and the insert cannot be split by another writer.
            cur = self.db.execute(
                "INSERT INTO channels (name, url, by, created) SELECT ?, ?, ?, ? "
                "WHERE (SELECT count(*) FROM channels) < ?", (name, url, by, row["created"], limit or 2**62))
        except sqlite3.IntegrityError:
            raise ValueError(f"a channel named {name!r} exists already") from None
        return row if cur.rowcount == 1 else None

    def remove_channel(self, name: str) -> dict | None:
        found = [c for c in self.channels() if c["name"] == name]
        if not found:
            return None
        self._tx([("DELETE FROM channels WHERE name = ?", (name,)),
                  ("DELETE FROM channel_status WHERE name = ?", (name,)),
                  ("DELETE FROM outbox WHERE channel = ?", (name,))])
        return found[0]

    def channels(self) -> list[dict]:
        rows = self.db.execute("SELECT name, url, by, created FROM channels ORDER BY created").fetchall()
        return [{"name": n, "url": u, "by": b, "created": c} for n, u, b, c in rows]

    def status(self) -> dict[str, dict]:
        return {n: json.loads(d) for n, d in self.db.execute("SELECT name, data FROM channel_status")}

    def note(self, name: str, ok: bool, error: str | None = None) -> None:
        row = self.db.execute("SELECT data FROM channel_status WHERE name = ?", (name,)).fetchone()
        st = status_update(json.loads(row[0]) if row else None, ok, error, time.time())
        self.db.execute("INSERT OR REPLACE INTO channel_status (name, data) VALUES (?, ?)",
                        (name, json.dumps(st)))

    # ---- history and outbox -------------------------------------------------------------

    def record(self, transition: dict, channels: list[str]) -> dict:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute("INSERT INTO history (ts, data) VALUES (?, '{}')", (transition["ts"],))
            transition = {**transition, "id": f"t{cur.lastrowid}"}
            data = json.dumps(transition)
            self.db.execute("UPDATE history SET data = ? WHERE id = ?", (data, cur.lastrowid))
            for channel in channels:
                self.db.execute(
                    "INSERT INTO outbox (channel, transition, created, next_at) VALUES (?, ?, ?, ?)",
                    (channel, data, transition["ts"], transition["ts"]))
            self.db.execute("DELETE FROM history WHERE id <= ?", (cur.lastrowid - HISTORY_KEEP,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return transition

    def history(self, n: int) -> list[dict]:
        rows = self.db.execute("SELECT data FROM history ORDER BY id DESC LIMIT ?", (n,)).fetchall()
        return [json.loads(d) for (d,) in rows]

    def outbox(self) -> list[dict]:
        rows = self.db.execute(
            "SELECT id, channel, transition, created, attempts, next_at FROM outbox ORDER BY id").fetchall()
        return [{"id": i, "channel": c, "transition": json.loads(t), "created": cr, "attempts": a, "next_at": nx}
                for i, c, t, cr, a, nx in rows]

    def reschedule(self, ids: list, attempts: int, next_at: float) -> None:
        self._tx([("UPDATE outbox SET attempts = ?, next_at = ? WHERE id = ?", (attempts, next_at, i))
                  for i in ids])

    def done(self, ids: list) -> None:
        self._tx([("DELETE FROM outbox WHERE id = ?", (i,)) for i in ids])

    # ---- silences -----------------------------------------------------------------------

    def add_silence(self, silence: dict, limit: int | None = None) -> dict | None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("DELETE FROM silences WHERE until <= ?", (time.time(),))
            (count,) = self.db.execute("SELECT count(*) FROM silences").fetchone()
            if limit is not None and count >= limit:
                self.db.execute("ROLLBACK")
                return None
            cur = self.db.execute("INSERT INTO silences (data, until) VALUES ('{}', ?)", (silence["until"],))
            silence = {**silence, "id": f"s{cur.lastrowid}"}
            self.db.execute("UPDATE silences SET data = ? WHERE id = ?", (json.dumps(silence), cur.lastrowid))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return silence

    def silences(self, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        self.db.execute("DELETE FROM silences WHERE until <= ?", (now,))
        return [json.loads(d) for (d,) in self.db.execute("SELECT data FROM silences ORDER BY id")]

    def clear_silence(self, silence_id: str) -> dict | None:
        if not (silence_id.startswith("s") and silence_id[1:].isdigit()):
            return None
        row = self.db.execute("SELECT data FROM silences WHERE id = ?", (int(silence_id[1:]),)).fetchone()
        if row is None:
            return None
        self.db.execute("DELETE FROM silences WHERE id = ?", (int(silence_id[1:]),))
        return json.loads(row[0])

    def claim_delivery(self, holder: str, seconds: float) -> bool:
        return True  # one process holds this file: it delivers

    def release_delivery(self, holder: str) -> None:
        pass

    def announce_env(self, names: list[str]) -> None:
        pass  # one process records and delivers: its own NOTIFY_URLS are the channels

    def announced_env(self) -> list[str]:
        return []
