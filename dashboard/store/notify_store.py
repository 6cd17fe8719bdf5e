"""What notifications keep: channels, the outbox, alert history with its evidence, silences.

Two stores with the same methods: `SqliteNotifyStore` (one SQLite file under
DATA_DIR, WAL mode, for the embedded default) and `RedisNotifyStore` (shared
by every worker, dyno and host when REDIS_URL is set). Both keep plain dicts;
what they mean is the alerts layer's business.

A transition is recorded together with one outbox entry per channel in one
write, so a message is either queued for every channel or not at all, and a
queued message survives a restart. Entries leave the outbox when delivered or
given up. Channels and silences are counted and added in one step (a
transaction, a Lua script), so racing workers cannot pass a limit. With Redis one process at a time delivers, under a lease
(`claim_delivery`), so each entry is sent once however many processes run.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from typing import Protocol

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

HISTORY_KEEP = 5000


class NotifyStore(Protocol):
    """The methods both stores share (what alerts.delivery and the operations use)."""

    def add_channel(self, name: str, url: str, by: str | None,
                    limit: int | None = None) -> dict | None: ...  # ValueError: name taken; None: full
    def remove_channel(self, name: str) -> dict | None: ...
    def channels(self) -> list[dict]: ...
    def status(self) -> dict[str, dict]: ...
    def note(self, name: str, ok: bool, error: str | None = None) -> None: ...
    def record(self, transition: dict, channels: list[str]) -> dict: ...
    def history(self, n: int) -> list[dict]: ...
    def outbox(self) -> list[dict]: ...
    def reschedule(self, ids: list, attempts: int, next_at: float) -> None: ...
    def done(self, ids: list) -> None: ...
    def add_silence(self, silence: dict, limit: int | None = None) -> dict | None: ...  # None: full
    def silences(self, now: float | None = None) -> list[dict]: ...
    def clear_silence(self, silence_id: str) -> dict | None: ...
    def claim_delivery(self, holder: str, seconds: float) -> bool: ...
    def release_delivery(self, holder: str) -> None: ...


def _status_update(old: dict | None, ok: bool, error: str | None, now: float) -> dict:
    st = dict(old or {"last_ok": None, "last_error": None, "last_error_at": None, "sent": 0, "failed": 0})
    if ok:
        st["last_ok"] = now
        st["sent"] += 1
    else:
        st["last_error"], st["last_error_at"] = error, now
        st["failed"] += 1
    return st


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
        st = _status_update(json.loads(row[0]) if row else None, ok, error, time.time())
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


# Take the lease if free, or renew it if ours.
_CLAIM = """
local cur = redis.call('get', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1
end
return 0
"""
# Add a channel unless the name is taken (0) or there are ARGV[3] already (-1).
_ADD_CHANNEL = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('hlen', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1
"""
# Drop expired silences, then add one unless ARGV[4] are in force.
_ADD_SILENCE = """
local all = redis.call('hgetall', KEYS[1])
local live = 0
for i = 1, #all, 2 do
  if tonumber(cjson.decode(all[i + 1])['until']) <= tonumber(ARGV[3]) then
    redis.call('hdel', KEYS[1], all[i])
  else
    live = live + 1
  end
end
if live >= tonumber(ARGV[4]) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisNotifyStore:
    """The same, in Redis (keys named in store/redis_store.py's table, under {p}:notify:*)."""

    def __init__(self, store) -> None:
        self.r = store.r
        k = lambda *parts: store.key("notify", *parts)  # noqa: E731
        self.k_channels, self.k_status, self.k_history = k("channels"), k("status"), k("history")
        self.k_outbox, self.k_silences, self.k_ids, self.k_lease = (
            k("outbox"), k("silences"), k("ids"), k("lease"))
        self._claim = self.r.register_script(_CLAIM)
        self._release = self.r.register_script(_RELEASE)
        self._add_channel = self.r.register_script(_ADD_CHANNEL)
        self._add_silence = self.r.register_script(_ADD_SILENCE)

    def add_channel(self, name: str, url: str, by: str | None, limit: int | None = None) -> dict | None:
        row = {"name": name, "url": url, "by": by, "created": time.time()}
        added = self._add_channel(keys=[self.k_channels], args=[name, json.dumps(row), limit or 2**52])
        if added == 0:
            raise ValueError(f"a channel named {name!r} exists already")
        return row if added == 1 else None

    def remove_channel(self, name: str) -> dict | None:
        raw = self.r.hget(self.k_channels, name)
        if raw is None:
            return None
        pipe = self.r.pipeline()
        pipe.hdel(self.k_channels, name)
        pipe.hdel(self.k_status, name)
        for entry_id, entry in self.r.hgetall(self.k_outbox).items():
            if json.loads(entry)["channel"] == name:
                pipe.hdel(self.k_outbox, entry_id)
        pipe.execute()
        return json.loads(raw)

    def channels(self) -> list[dict]:
        rows = [json.loads(v) for v in self.r.hgetall(self.k_channels).values()]
        return sorted(rows, key=lambda c: c["created"])

    def status(self) -> dict[str, dict]:
        return {n: json.loads(d) for n, d in self.r.hgetall(self.k_status).items()}

    def note(self, name: str, ok: bool, error: str | None = None) -> None:
        raw = self.r.hget(self.k_status, name)
        st = _status_update(json.loads(raw) if raw else None, ok, error, time.time())
        self.r.hset(self.k_status, name, json.dumps(st))

    def record(self, transition: dict, channels: list[str]) -> dict:
        n = self.r.incr(self.k_ids)
        transition = {**transition, "id": f"t{n}"}
        data = json.dumps(transition)
        pipe = self.r.pipeline()  # MULTI/EXEC: the history entry and its outbox entries together
        pipe.lpush(self.k_history, data)
        pipe.ltrim(self.k_history, 0, HISTORY_KEEP - 1)
        for channel in channels:
            entry = {"id": f"{n}:{channel}", "channel": channel, "transition": transition,
                     "created": transition["ts"], "attempts": 0, "next_at": transition["ts"]}
            pipe.hset(self.k_outbox, entry["id"], json.dumps(entry))
        pipe.execute()
        return transition

    def history(self, n: int) -> list[dict]:
        return [json.loads(d) for d in self.r.lrange(self.k_history, 0, n - 1)]

    def outbox(self) -> list[dict]:
        rows = [json.loads(v) for v in self.r.hgetall(self.k_outbox).values()]
        return sorted(rows, key=lambda e: (e["created"], e["id"]))

    def reschedule(self, ids: list, attempts: int, next_at: float) -> None:
        raws = self.r.hmget(self.k_outbox, ids)
        pipe = self.r.pipeline()
        for entry_id, raw in zip(ids, raws):
            if raw is not None:
                entry = {**json.loads(raw), "attempts": attempts, "next_at": next_at}
                pipe.hset(self.k_outbox, entry_id, json.dumps(entry))
        pipe.execute()

    def done(self, ids: list) -> None:
        if ids:
            self.r.hdel(self.k_outbox, *ids)

    def add_silence(self, silence: dict, limit: int | None = None) -> dict | None:
        silence = {**silence, "id": f"s{self.r.incr(self.k_ids + ':silence')}"}
        added = self._add_silence(keys=[self.k_silences],
                                  args=[silence["id"], json.dumps(silence), time.time(), limit or 2**52])
        return silence if added == 1 else None

    def silences(self, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        out = []
        for sid, raw in self.r.hgetall(self.k_silences).items():
            silence = json.loads(raw)
            if silence["until"] <= now:
                self.r.hdel(self.k_silences, sid)
            else:
                out.append(silence)
        return sorted(out, key=lambda s: int(s["id"][1:]))

    def clear_silence(self, silence_id: str) -> dict | None:
        raw = self.r.hget(self.k_silences, silence_id)
        if raw is None:
            return None
        self.r.hdel(self.k_silences, silence_id)
        return json.loads(raw)

    def claim_delivery(self, holder: str, seconds: float) -> bool:
        return bool(self._claim(keys=[self.k_lease], args=[holder, int(seconds * 1000)]))

    def release_delivery(self, holder: str) -> None:
        self._release(keys=[self.k_lease], args=[holder])
