"""Chart tiers in Redis: the same points as the SQLite store, shared by every worker and dyno.

Each host's tier is one sorted set (scored by the start of the step; see
`redis_store.py` for the key). Points are written only by the process that
takes the host's samples (the holder of its sampler lease), so each is
written once, however many processes serve it. Writes are queued and sent
about once a second in one pipeline by a writer greenlet, never on the
sampler's path; old points are trimmed by age once a minute. While Redis is
unreachable the points wait in the queue (up to MAX_PENDING) and go out when
it is back; the failure is logged once.
"""

from __future__ import annotations

import logging
import struct
import time

import gevent
import redis
from gevent.event import Event as _Flag
from gevent.lock import Semaphore

from .audit import StoreUnavailable
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
        self._ops: list[tuple[str, int, bytes]] = []
        self._hosts: set[str] = set()
        self._lock = Semaphore()
        self._wake = _Flag()
        self._greenlet: gevent.Greenlet | None = None
        self._stopping = False
        self._trimmed_at = 0.0
        self.error: str | None = None
        self.written = 0
        self.dropped = 0

    def add_point(self, tier: Tier, host: str, point: Point) -> None:
        self._ops.append((self.store.tier_key(tier.step, host), point.ts,
                          _TS.pack(point.ts) + self.codec.pack(point.n, point.values)))
        self._hosts.add(host)
        if len(self._ops) > MAX_PENDING:
            drop = len(self._ops) - MAX_PENDING
            del self._ops[:drop]
            self.dropped += drop

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
                "pending": len(self._ops), "written": self.written, "dropped": self.dropped}

    def start(self) -> None:
        if self._greenlet is None or self._greenlet.dead:
            self._stopping = False
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> bool:
        with self._lock:
            now = time.time()
            trim = self._hosts and now - self._trimmed_at >= TRIM_SECONDS
            if not self._ops and not trim:
                return True
            batch, self._ops = self._ops, []
            try:
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
            except (redis.RedisError, OSError) as exc:
                self._ops[:0] = batch
                del self._ops[:max(0, len(self._ops) - MAX_PENDING)]
                if self.error is None:
                    log.error("history points cannot reach Redis (%s); kept queued, retrying", exc)
                self.error = str(exc)
                return False
            if trim:
                self._trimmed_at = now
            if self.error is not None:
                log.warning("history points reach Redis again (%d caught up)", len(batch))
                self.error = None
            self.written += len(batch)
            return not self._ops

    def write_points(self, items) -> None:
        """Queue many points and write them now, in chunks (tools and tests filling history)."""
        for i, (tier, host, point) in enumerate(items, 1):
            self.add_point(tier, host, point)
            if i % 5000 == 0:
                self.flush()
        self.flush()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._greenlet is not None:
            self._greenlet.join(5)
            self._greenlet = None
        self.flush()
