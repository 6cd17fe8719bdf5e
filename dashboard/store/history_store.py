"""The embedded store: chart tiers, the event buffer and lasting state in one SQLite file.

`DATA_DIR/history.sqlite3`, in WAL mode, with two connections: one that only
reads (history requests and the restore at start, from the serving greenlets)
and one that only writes, used by one writer greenlet. Nothing on the
sampler's or the fan-out's path waits for the disk: they queue rows in memory
and the writer (group_commit.py) commits them about once a second in one
transaction (sooner for state changes), and once more at shutdown. sqlite3
calls do not yield to gevent, so a transaction holds at most MAX_BATCH rows
(about a second's worth takes a tenth of a millisecond) and the writer
yields between transactions.
Roll-ups are kept in compressed blocks (store/blocks.py). Events are kept
zlib-compressed in a table with row ids: a packed metrics event (~0.9 kB)
stays inside its b-tree page, where the plain text (1.6-2.7 kB) in the old
`WITHOUT ROWID` table spilled into an overflow page of its own, half empty.
A database from before is converted when it opens (an hour of events).
Events are kept RESUME_SECONDS (what viewers resume from); the charts' rows
of the whole hour are kept beside them, a finished minute to a row of
`chart_minutes` (store/chart_minutes.py), and trimmed to HISTORY_SECONDS.
A pool thread was tried and measured: its idle thread cost the worker more
CPU (about +15 % at 1 Hz) than the writes themselves.

A write that fails (a full disk, an I/O error) is logged once; the rows stay
queued (up to MAX_PENDING, oldest dropped first) and the writer tries again
each second, saying so when it succeeds again. Live data never waits for it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
import zlib
from typing import Iterable

from .audit import StoreUnavailable
from .group_commit import GroupCommit
from . import blocks
from .tiers import Codec, Point, Tier, block

log = logging.getLogger("dashboard.history")

FILE_NAME = "history.sqlite3"
FLUSH_SECONDS = 1.0
TRIM_SECONDS = 60.0
MAX_PENDING = 50_000
MAX_BATCH = 500
CONVERT_ROWS = 2000  # old one-row-per-point rows packed into blocks per upkeep run

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    host TEXT NOT NULL, step INTEGER NOT NULL, ts INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (host, step, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
    host TEXT NOT NULL, step INTEGER NOT NULL, ts INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (host, step, ts)
);
CREATE TABLE IF NOT EXISTS event_log (
    ms INTEGER NOT NULL, sq INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (ms, sq)
);
CREATE TABLE IF NOT EXISTS chart_minutes (
    host TEXT NOT NULL, ts INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (host, ts)
);
CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def pack_event(data: str) -> bytes:
    """An event's data as stored: zlib-compressed (a metrics event of ~1.7 kB becomes ~0.9 kB)."""
    return zlib.compress(data.encode(), 6)


def unpack_event(data: bytes | str) -> str:
    return zlib.decompress(data).decode() if isinstance(data, bytes) else data


def _convert_events(db: sqlite3.Connection) -> None:
    """Move the events of a database from before `event_log` (an hour at most) into it, packed."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
        return
    db.execute("BEGIN")
    try:
        rows = db.execute("SELECT ms, sq, type, data FROM events").fetchall()
        db.executemany("INSERT OR IGNORE INTO event_log (ms, sq, type, data) VALUES (?, ?, ?, ?)",
                       [(ms, sq, type, pack_event(unpack_event(data))) for ms, sq, type, data in rows])
        db.execute("DROP TABLE events")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    log.info("history store: %d stored events moved to the packed event log", len(rows))


class StoreBroken(RuntimeError):
    """The store could not be opened or written at start (the message says why)."""


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=2000")
    return db


class HistoryStore:
    def __init__(self, directory: str, tiers: tuple[Tier, ...], names: tuple[str, ...],
                 events_seconds: float, minutes_seconds: float = 0.0) -> None:
        self.tiers = tiers
        self.names = names
        self.codec = Codec(len(names))
        self.decoded = blocks.DecodedCache()
        self.events_seconds = events_seconds  # whole events: what viewers resume from (RESUME_SECONDS)
        self.minutes_seconds = max(minutes_seconds, events_seconds)  # chart minutes: the charts' hour
        self.path = os.path.join(directory, FILE_NAME)
        try:
            os.makedirs(directory, exist_ok=True)
            self.reader = _connect(self.path)
            self.reader.execute("PRAGMA journal_mode=WAL")
            self.reader.executescript(_SCHEMA)
            # Prove we can write now, not at the first flush: a read-only file
            # or folder opens fine and fails only then.
            self.reader.execute("INSERT OR REPLACE INTO state (name, value) VALUES ('opened', ?)",
                                (json.dumps(time.time()),))
            self.writer = _connect(self.path)
            self.writer.execute("PRAGMA synchronous=NORMAL")
            _convert_events(self.writer)
        except (OSError, sqlite3.Error) as exc:
            raise StoreBroken(f"{self.path}: {exc}") from exc
        self._trimmed_at = 0.0
        self.writes = GroupCommit(
            self._write, errors=(sqlite3.Error, OSError), name="history store", period=FLUSH_SECONDS,
            max_pending=MAX_PENDING, max_batch=MAX_BATCH, logger=log, upkeep_due=self._trim_due,
            failing=lambda exc, kept: (f"history store cannot write ({exc}); live data goes on, "
                                       f"retrying every {FLUSH_SECONDS:g}s with {kept} rows queued"),
            recovered=lambda n: f"history store writes again ({n} rows caught up)")

    @property
    def error(self) -> str | None:
        return self.writes.error

    @property
    def written(self) -> int:
        return self.writes.written

    @property
    def dropped(self) -> int:
        return self.writes.dropped

    # ---- queueing (never blocks) ----------------------------------------------

    def add_point(self, tier: Tier, host: str, point: Point) -> None:
        self.writes.add(("point", (host, tier.step, point)))

    def add_event(self, key: tuple[int, int], type: str, data: str) -> None:
        self.writes.add(("event", (key[0], key[1], type, pack_event(data))))

    def add_minute(self, host: str, start: int, blob: bytes) -> None:
        """A minute of the host's chart rows, packed (store/chart_minutes.py)."""
        self.writes.add(("minute", (host, start, blob)))

    def save_state(self, name: str, value) -> None:
        """Lasting state (interval, pause, alert rules): written within moments."""
        self.writes.add(("state", (name, json.dumps(value))))
        self.writes.wake()

    # ---- reading ---------------------------------------------------------------------

    # Roll-ups live in `blocks` (store/blocks.py). Databases written before keep
    # one row per point in `points`: those still read, and the writer packs them
    # into blocks, CONVERT_ROWS per minute (and any it finds in a block it writes).

    def points(self, tier: Tier, host: str, since: float, until: float) -> list[Point]:
        return blocks.to_points(*self.block(tier, host, since, until))

    def block(self, tier: Tier, host: str, since: float, until: float) -> tuple:
        try:
            packed = self.reader.execute(
                "SELECT ts, data FROM blocks WHERE host = ? AND step = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (host, tier.step, blocks.block_start(tier, since), int(until))).fetchall()
            rows = self.reader.execute(
                "SELECT ts, data FROM points WHERE host = ? AND step = ? AND ts >= ? AND ts < ? ORDER BY ts",
                (host, tier.step, int(since), int(until) + 1)).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        return blocks.combine(block(self.codec, rows),
                              [self.decoded.decode(data, ts, tier.step) for ts, data in packed],
                              self.codec.width, since, until)

    def oldest(self, tier: Tier, host: str) -> int | None:
        """Start of the oldest stored point of host's tier (None if there is none)."""
        try:
            first = self.reader.execute("SELECT ts, data FROM blocks WHERE host = ? AND step = ? ORDER BY ts LIMIT 1",
                                        (host, tier.step)).fetchone()
            row = self.reader.execute("SELECT MIN(ts) FROM points WHERE host = ? AND step = ?",
                                      (host, tier.step)).fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        found = [] if row is None or row[0] is None else [row[0]]
        if first is not None:
            ts = self.decoded.decode(first[1], first[0], tier.step)[0]
            found += [int(ts[0])] if len(ts) else []
        return min(found, default=None)

    def last_point(self, tier: Tier, host: str) -> Point | None:
        last = self.reader.execute("SELECT ts, data FROM blocks WHERE host = ? AND step = ? ORDER BY ts DESC LIMIT 1",
                                   (host, tier.step)).fetchone()
        row = self.reader.execute(
            "SELECT ts, data FROM points WHERE host = ? AND step = ? ORDER BY ts DESC LIMIT 1",
            (host, tier.step)).fetchone()
        found = []
        if row is not None and len(row[1]) == self.codec.size:
            found.append(self.codec.unpack(*row))
        if last is not None:
            found += blocks.to_points(*(a[-1:] for a in self.decoded.decode(last[1], last[0], tier.step)))
        return max(found, key=lambda p: p.ts, default=None)

    def events(self, since_ms: int) -> list[tuple[tuple[int, int], str, str]]:
        rows = self.reader.execute(
            "SELECT ms, sq, type, data FROM event_log WHERE ms >= ? ORDER BY ms, sq", (since_ms,)).fetchall()
        return [((ms, sq), type, unpack_event(data)) for ms, sq, type, data in rows]

    def minutes(self, host: str, since: float) -> list[bytes]:
        """The host's packed chart minutes from `since` on, oldest first."""
        rows = self.reader.execute("SELECT data FROM chart_minutes WHERE host = ? AND ts >= ? ORDER BY ts",
                                   (host, int(since) // 60 * 60)).fetchall()
        return [data for (data,) in rows]

    def state(self) -> dict:
        out = {}
        for name, value in self.reader.execute("SELECT name, value FROM state"):
            try:
                out[name] = json.loads(value)
            except ValueError:
                log.warning("lasting state %r is not JSON; ignored", name)
        return out

    def size(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    def health(self) -> dict:
        return {"state": "failing" if self.error else "ok", "error": self.error, "path": self.path,
                "pending": self.writes.pending, "written": self.written, "dropped": self.dropped}

    # ---- the writer (store/group_commit.py) ---------------------------------------

    def start(self) -> None:
        self.writes.start()

    def flush(self) -> bool:
        """Write what is queued now; True when nothing is left queued."""
        return self.writes.flush()

    def _trim_due(self) -> bool:
        return time.time() - self._trimmed_at >= TRIM_SECONDS

    def _write(self, batch: list[tuple], final: bool) -> None:
        # Only the group-commit writer (under its lock) uses the writing connection.
        now = time.time()
        trim = final and now - self._trimmed_at >= TRIM_SECONDS
        db = self.writer
        db.execute("BEGIN")
        try:
            points: dict[tuple, list[Point]] = {}
            for kind, args in batch:
                if kind == "point":
                    host, step, point = args
                    points.setdefault((host, step), []).append(point)
                elif kind == "event":
                    db.execute("INSERT OR IGNORE INTO event_log (ms, sq, type, data) VALUES (?, ?, ?, ?)", args)
                elif kind == "minute":
                    db.execute("INSERT OR REPLACE INTO chart_minutes (host, ts, data) VALUES (?, ?, ?)", args)
                else:
                    db.execute("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", args)
            for (host, step), new in points.items():
                self._pack(db, host, step, new)
            if trim:
                self._convert(db)
                for tier in self.tiers:
                    self._trim(db, tier, int(now - tier.retention))
                db.execute("DELETE FROM event_log WHERE ms < ?", (int((now - self.events_seconds) * 1000),))
                db.execute("DELETE FROM chart_minutes WHERE ts < ?", (int(now - self.minutes_seconds) // 60 * 60 - 60,))
            db.execute("COMMIT")
        except BaseException:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        if trim:
            self._trimmed_at = now

    def _tier(self, step: int) -> Tier:
        return next((t for t in self.tiers if t.step == step), None) or Tier(str(step), step, float("inf"))

    def _pack(self, db: sqlite3.Connection, host: str, step: int, new: list[Point]) -> None:
        """Merge points into their blocks, with any old-format rows of those blocks."""
        for start, group in blocks.by_block(self._tier(step), new).items():
            self._pack_block(db, host, step, start, group)

    def _pack_block(self, db: sqlite3.Connection, host: str, step: int, start: int, group: list[Point]) -> None:
        span = blocks.steps_per_block(self._tier(step)) * step
        old = db.execute("SELECT data FROM blocks WHERE host = ? AND step = ? AND ts = ?",
                         (host, step, start)).fetchone()
        legacy = [self.codec.unpack(ts, data) for ts, data in db.execute(
            "SELECT ts, data FROM points WHERE host = ? AND step = ? AND ts >= ? AND ts < ?",
            (host, step, start, start + span)) if len(data) == self.codec.size]
        if legacy:
            db.execute("DELETE FROM points WHERE host = ? AND step = ? AND ts >= ? AND ts < ?",
                       (host, step, start, start + span))
        if old is None and not legacy and not group:
            return
        merged = blocks.merge(None if old is None else old[0], legacy + group, self.codec.width,
                              span // step, start, step)
        db.execute("INSERT OR REPLACE INTO blocks (host, step, ts, data) VALUES (?, ?, ?, ?)",
                   (host, step, start, merged))

    def _convert(self, db: sqlite3.Connection) -> None:
        """Pack some old-format rows into blocks (a database from before blocks)."""
        rows = db.execute("SELECT host, step, ts FROM points ORDER BY host, step, ts LIMIT ?",
                          (CONVERT_ROWS,)).fetchall()
        seen = set()
        for host, step, ts in rows:
            start = blocks.block_start(self._tier(step), ts)
            if (host, step, start) not in seen:
                seen.add((host, step, start))
                self._pack_block(db, host, step, start, [])

    def _trim(self, db: sqlite3.Connection, tier: Tier, cutoff: int) -> None:
        span = blocks.steps_per_block(tier) * tier.step
        db.execute("DELETE FROM points WHERE step = ? AND ts < ?", (tier.step, cutoff))
        db.execute("DELETE FROM blocks WHERE step = ? AND ts + ? <= ?", (tier.step, span, cutoff))
        # The block that straddles the cutoff keeps only its newer points.
        for host, start, data in db.execute("SELECT host, ts, data FROM blocks WHERE step = ? AND ts < ?",
                                            (tier.step, cutoff)).fetchall():
            kept = blocks.cut(data, start, tier.step, cutoff)
            if kept is data:
                continue
            if kept is None:
                db.execute("DELETE FROM blocks WHERE host = ? AND step = ? AND ts = ?", (host, tier.step, start))
            else:
                db.execute("UPDATE blocks SET data = ? WHERE host = ? AND step = ? AND ts = ?",
                           (kept, host, tier.step, start))

    def close(self) -> None:
        """Write everything queued, then stop (at shutdown)."""
        # The writer is never killed mid-batch: it is asked to stop, and the
        # last flush runs under the same lock.
        self.writes.close()
        for db in (self.reader, self.writer):
            try:
                db.close()
            except sqlite3.Error:
                pass

    def write_points(self, items: Iterable[tuple[Tier, str, Point]]) -> None:
        """Queue many points and write them now, in chunks (tools and tests filling history)."""
        for i, (tier, host, point) in enumerate(items, 1):
            self.add_point(tier, host, point)
            if i % 5000 == 0:
                self.flush()
        self.flush()
