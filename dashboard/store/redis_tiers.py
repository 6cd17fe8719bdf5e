"""Chart tiers in Redis: the same points as the SQLite store, shared by every worker and dyno.

Each host's tier is one sorted set (scored by the start of the step; see
`redis_store.py` for the key). Points are written only by the process that
takes the host's samples (the holder of its sampler lease), so each is
written once, however many processes serve it. Writes are queued and sent
about once a second in one pipeline by a writer greenlet (group_commit.py),
never on the sampler's path; old points are trimmed by age once a minute.
While Redis is unreachable the points wait in the queue (up to MAX_PENDING)
and go out when it is back; the failure is logged once.
"""

from __future__ import annotations

import logging
import struct
import time

import redis

from .audit import StoreUnavailable
from .group_commit import GroupCommit
from .tiers import Codec, Point, Tier, block

log = logging.getLogger("dashboard.history")

FLUSH_SECONDS = 1.0
TRIM_SECONDS = 60.0
MAX_PENDING = 20_000
_TS = struct.Struct(">q")  # the member starts with its time, so no two points are equal


class RedisTiers:
    def __init__(self, store, tiers: tuple[Tier, ...], names: tuple[str, ...]) -> None:
        self.store = store
        self.tiers = tiers
        self.codec = Codec(len(names))
        self._hosts: set[str] = set()
        self._trimmed_at = 0.0
        self.writes = GroupCommit(
            self._write, errors=(redis.RedisError, OSError), name="history points", period=FLUSH_SECONDS,
            max_pending=MAX_PENDING, logger=log, upkeep_due=self._trim_due,
            failing=lambda exc, kept: f"history points cannot reach Redis ({exc}); kept queued, retrying",
            recovered=lambda n: f"history points reach Redis again ({n} caught up)")

    @property
    def error(self) -> str | None:
        return self.writes.error

    @property
    def written(self) -> int:
        return self.writes.written

    @property
    def dropped(self) -> int:
        return self.writes.dropped

    def add_point(self, tier: Tier, host: str, point: Point) -> None:
        self.writes.add((self.store.tier_key(tier.step, host), point.ts,
                         _TS.pack(point.ts) + self.codec.pack(point.n, point.values)))
        self._hosts.add(host)

    def _rows(self, members: list[bytes]) -> list[tuple[int, bytes]]:
        return [(_TS.unpack_from(m)[0], m[_TS.size:]) for m in members]

    def _range(self, tier: Tier, host: str, since: float, until: float) -> list[tuple[int, bytes]]:
        try:
            members = self.store.binary.zrangebyscore(self.store.tier_key(tier.step, host), int(since), int(until))
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        return self._rows(members)

    def block(self, tier: Tier, host: str, since: float, until: float) -> tuple:
        return block(self.codec, self._range(tier, host, since, until))

    def points(self, tier: Tier, host: str, since: float, until: float) -> list[Point]:
        return [self.codec.unpack(t, blob) for t, blob in self._range(tier, host, since, until)
                if len(blob) == self.codec.size]

    def oldest(self, tier: Tier, host: str) -> int | None:
        try:
            first = self.store.binary.zrange(self.store.tier_key(tier.step, host), 0, 0, withscores=True)
        except (redis.RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        return int(first[0][1]) if first else None

    def last_point(self, tier: Tier, host: str) -> Point | None:
        members = self.store.binary.zrevrange(self.store.tier_key(tier.step, host), 0, 0)
        rows = [r for r in self._rows(members) if len(r[1]) == self.codec.size]
        return self.codec.unpack(*rows[0]) if rows else None

    def health(self) -> dict:
        return {"state": "failing" if self.error else "ok", "error": self.error, "store": "redis",
                "pending": self.writes.pending, "written": self.written, "dropped": self.dropped}

    # ---- the writer (store/group_commit.py) ---------------------------------------

    def start(self) -> None:
        self.writes.start()

    def flush(self) -> bool:
        return self.writes.flush()

    def _trim_due(self) -> bool:
        return bool(self._hosts) and time.time() - self._trimmed_at >= TRIM_SECONDS

    def _write(self, batch: list[tuple[str, int, bytes]], final: bool) -> None:
        now = time.time()
        trim = final and self._trim_due()
        pipe = self.store.binary.pipeline(transaction=False)
        for key, ts, member in batch:
            pipe.zremrangebyscore(key, ts, ts)  # the same step written again replaces it
            pipe.zadd(key, {member: ts})
        if trim:
            for host in self._hosts:
                for tier in self.tiers:
                    pipe.zremrangebyscore(self.store.tier_key(tier.step, host), "-inf",
                                          f"({int(now - tier.retention)}")
        pipe.execute()
        if trim:
            self._trimmed_at = now

    def write_points(self, items) -> None:
        """Queue many points and write them now, in chunks (tools and tests filling history)."""
        for i, (tier, host, point) in enumerate(items, 1):
            self.add_point(tier, host, point)
            if i % 5000 == 0:
                self.flush()
        self.flush()

    def close(self) -> None:
        self.writes.close()
