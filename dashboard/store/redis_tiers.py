"""Chart tiers in Redis: the same points as the SQLite store, shared by every worker and dyno.

Each host's tier is one hash of packed blocks (store/blocks.py; see
`redis_store.py` for the key): field = start of the block, value = its steps
compressed, cut to fill an allocator size class exactly (`fitted`), the rest
under the same field of a second hash. Points are written only by the process that takes the host's
samples (the holder of its sampler lease), so each is written once, however
many processes serve it. Writes are queued and sent about once a second by a
writer greenlet (group_commit.py), never on the sampler's path: the blocks a
batch touches are read, merged with its points and written back in one
pipeline each. Old blocks are trimmed by age once a minute.
While Redis is unreachable the points wait in the queue (up to MAX_PENDING)
and go out when it is back; the failure is logged once.

Before blocks, each point was one member of a sorted set (`{p}:tier:...`):
those still read, and the writer packs them into blocks, CONVERT_POINTS per
host and tier a minute (and any that fall in a block it writes anyway).
"""

from __future__ import annotations

import logging
import struct
import time

import redis

from . import blocks
from .audit import StoreUnavailable
from .group_commit import GroupCommit
from .host_budget import HostBudget
from .redis_trouble import REFUSALS, refuses_writes, said
from .tiers import Codec, Point, Tier, block

log = logging.getLogger("dashboard.history")

FLUSH_SECONDS = 1.0
TRIM_SECONDS = 60.0
MAX_PENDING = 20_000
CONVERT_POINTS = 2000
_TS = struct.Struct(">q")  # the old member started with its time, so no two points were equal
_ERRORS = (redis.RedisError, OSError)


_refused = refuses_writes


def _class_floor(size: int) -> int:
    """The largest of jemalloc's size classes not above size (Redis's allocator; four
    classes per doubling above 64 bytes)."""
    spacing = 1 << max(4, size.bit_length() - 3)
    return size // spacing * spacing


def fitted(blob: bytes) -> tuple[bytes, bytes]:
    """(head, tail): a head whose string (its header and NUL included) fills a size class
    exactly, and the rest. A block of 44.8 KB stored whole takes a 48 KiB allocation, 9.7 %
    of it slack; as a 40 KiB head and a 4.8 KB tail, about 1 %. Measured with MEMORY USAGE:
    a hash value of n bytes costs the class of n + 6 (n + 10 from 64 KiB)."""
    if len(blob) < 1024:
        return blob, b""
    size = _class_floor(len(blob) + 10)
    head = size - (6 if size - 6 < 1 << 16 else 10)
    return blob[:head], blob[head:]


def _why(exc: BaseException) -> str:
    return " - it refuses writes: full under noeviction, or a read-only replica" if _refused(exc) else ""


class RedisTiers:
    def __init__(self, store, tiers: tuple[Tier, ...], names: tuple[str, ...], budget: int | None = None) -> None:
        self.store = store
        # HOST_BUDGET_BYTES: each host this process writes for is trimmed to it (store/host_budget.py).
        self.budget = None if budget is None else HostBudget(store, tiers, budget)
        self.tiers = tiers
        self.codec = Codec(len(names))
        self.width = len(names)
        self.decoded = blocks.DecodedCache()
        self._hosts: set[str] = set()
        self._trimmed_at = 0.0
        self.refused = False  # the last write failed because Redis refuses writes
        self.writes = GroupCommit(
            self._write, errors=_ERRORS, name="history points", period=FLUSH_SECONDS,
            max_pending=MAX_PENDING, logger=log, upkeep_due=self._trim_due,
            failing=lambda exc, kept: f"history points cannot reach Redis ({said(exc)}){_why(exc)}; live data goes on, "
                                      f"{kept} points kept queued, retrying",
            recovered=lambda n: f"history points reach Redis again ({n} caught up)",
            announced=self._announce, describe=said)

    @staticmethod
    def _announce(exc: BaseException) -> bool:
        """A refusal is said once for the whole process (store/redis_trouble.Refusals), not here."""
        if not _refused(exc):
            return False
        REFUSALS.met(exc, "the history writer")
        return True

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
        self.writes.add((host, tier.step, point))
        self._hosts.add(host)

    # ---- reading ---------------------------------------------------------------------

    def _legacy(self, members: list[bytes]) -> list[tuple[int, bytes]]:
        return [(_TS.unpack_from(m)[0], m[_TS.size:]) for m in members]

    def block(self, tier: Tier, host: str, since: float, until: float) -> tuple:
        span = blocks.steps_per_block(tier) * tier.step
        starts = list(range(blocks.block_start(tier, since), int(until) + 1, span))
        try:
            pipe = self.store.binary.pipeline(transaction=False)
            pipe.zrangebyscore(self.store.tier_key(tier.step, host), int(since), int(until))
            if starts:
                pipe.hmget(self.store.blocks_key(tier.step, host), starts)
                pipe.hmget(self.store.tails_key(tier.step, host), starts)
            found = pipe.execute()
        except _ERRORS as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        packed = zip(starts, (h and h + (t or b"") for h, t in zip(found[1], found[2]))) if starts else ()
        return blocks.combine(block(self.codec, self._legacy(found[0])),
                              [self.decoded.decode(data, start, tier.step) for start, data in packed if data],
                              self.width, since, until)

    def points(self, tier: Tier, host: str, since: float, until: float) -> list[Point]:
        return blocks.to_points(*self.block(tier, host, since, until))

    def _edge(self, tier: Tier, host: str, newest: bool) -> Point | None:
        """The oldest or newest stored point of host's tier."""
        key = self.store.blocks_key(tier.step, host)
        legacy_key = self.store.tier_key(tier.step, host)
        try:
            fields = [int(f) for f in self.store.binary.hkeys(key)]
            found = []
            if fields:
                start = max(fields) if newest else min(fields)
                data = self._whole(tier.step, host, start)
                if data:
                    edge = slice(-1, None) if newest else slice(0, 1)
                    found += blocks.to_points(*(a[edge] for a in self.decoded.decode(data, start, tier.step)))
            rows = self._legacy(self.store.binary.zrange(legacy_key, -1, -1) if newest
                                else self.store.binary.zrange(legacy_key, 0, 0))
        except _ERRORS as exc:
            raise StoreUnavailable(f"Redis: {exc}") from exc
        found += [self.codec.unpack(ts, blob) for ts, blob in rows if len(blob) == self.codec.size]
        return (max if newest else min)(found, key=lambda p: p.ts, default=None)

    def _whole(self, step: int, host: str, start: int) -> bytes | None:
        head, tail = self.store.binary.hmget(self.store.blocks_key(step, host), start) + \
            self.store.binary.hmget(self.store.tails_key(step, host), start)
        return head and head + (tail or b"")

    def _put(self, pipe, step: int, host: str, start: int, data: bytes | None) -> None:
        """Write (or with None delete) one block, fitted (see fitted())."""
        if data is None:
            pipe.hdel(self.store.blocks_key(step, host), start)
            pipe.hdel(self.store.tails_key(step, host), start)
            return
        head, tail = fitted(data)
        pipe.hset(self.store.blocks_key(step, host), start, head)
        if tail:
            pipe.hset(self.store.tails_key(step, host), start, tail)
        else:
            pipe.hdel(self.store.tails_key(step, host), start)

    def oldest(self, tier: Tier, host: str) -> int | None:
        point = self._edge(tier, host, newest=False)
        return None if point is None else point.ts

    def last_point(self, tier: Tier, host: str) -> Point | None:
        return self._edge(tier, host, newest=True)

    def health(self) -> dict:
        out = {"state": "failing" if self.error else "ok", "error": self.error, "store": "redis",
               "pending": self.writes.pending, "written": self.written, "dropped": self.dropped}
        if self.error and self.refused:
            out["refused"] = "Redis refuses writes (full under noeviction, or a read-only replica)"
        if self.budget is not None:
            out.update(self.budget.health())
        return out

    # ---- the writer (store/group_commit.py) ---------------------------------------

    def start(self) -> None:
        self.writes.start()

    def flush(self) -> bool:
        return self.writes.flush()

    def _trim_due(self) -> bool:
        return bool(self._hosts) and time.time() - self._trimmed_at >= TRIM_SECONDS

    def _tier(self, step: int) -> Tier:
        return next((t for t in self.tiers if t.step == step), None) or Tier(str(step), step, float("inf"))

    def _write(self, batch: list[tuple[str, int, Point]], final: bool) -> None:
        now = time.time()
        trim = final and self._trim_due()
        touched: dict[tuple[str, int, int], list[Point]] = {}
        for host, step, point in batch:
            touched.setdefault((host, step, blocks.block_start(self._tier(step), point.ts)), []).append(point)
        if trim:
            for host in self._hosts:
                for tier in self.tiers:
                    for ts, _ in self._legacy_rows(host, tier, "-inf", "+inf", CONVERT_POINTS):
                        touched.setdefault((host, tier.step, blocks.block_start(tier, ts)), [])
        try:
            self._pack(touched)
        except _ERRORS as exc:
            self.refused = _refused(exc)
            if self.refused and self.budget is not None:
                # Full: deleting is still allowed, and frees what is over a budget.
                for host in self._hosts:
                    self.budget.enforce(host, now)
            raise
        if self.refused:
            REFUSALS.cleared("the history writer")
        self.refused = False
        if trim:
            for host in self._hosts:
                for tier in self.tiers:
                    self._trim(host, tier, int(now - tier.retention))
                if self.budget is not None:
                    self.budget.enforce(host, now)
            self._trimmed_at = now

    def _legacy_rows(self, host: str, tier: Tier, low, high, count: int | None = None) -> list:
        members = self.store.binary.zrangebyscore(self.store.tier_key(tier.step, host), low, high,
                                                  start=0 if count else None, num=count)
        return self._legacy(members)

    def _pack(self, touched: dict[tuple[str, int, int], list[Point]]) -> None:
        """Merge points into their blocks (with any old-format points of those blocks), one
        pipeline to read the blocks, one to write them."""
        if not touched:
            return
        keys = list(touched)
        read = self.store.binary.pipeline(transaction=False)
        for host, step, start in keys:
            span = blocks.steps_per_block(self._tier(step)) * step
            read.hget(self.store.blocks_key(step, host), start)
            read.hget(self.store.tails_key(step, host), start)
            read.zrangebyscore(self.store.tier_key(step, host), start, f"({start + span}")
        found = read.execute()
        write = self.store.binary.pipeline(transaction=False)
        for i, (host, step, start) in enumerate(keys):
            head, tail, members = found[3 * i: 3 * i + 3]
            old = head and head + (tail or b"")
            legacy = [self.codec.unpack(ts, blob) for ts, blob in self._legacy(members)
                      if len(blob) == self.codec.size]
            if old is None and not legacy and not touched[keys[i]]:
                continue
            span = blocks.steps_per_block(self._tier(step)) * step
            self._put(write, step, host, start,
                      blocks.merge(old, legacy + touched[keys[i]], self.width, span // step, start, step))
            if members:
                write.zremrangebyscore(self.store.tier_key(step, host), start, f"({start + span}")
        write.execute()

    def _trim(self, host: str, tier: Tier, cutoff: int) -> None:
        key = self.store.blocks_key(tier.step, host)
        span = blocks.steps_per_block(tier) * tier.step
        pipe = self.store.binary.pipeline(transaction=False)
        pipe.zremrangebyscore(self.store.tier_key(tier.step, host), "-inf", f"({cutoff}")
        for start in sorted(int(f) for f in self.store.binary.hkeys(key)):
            if start + span <= cutoff:
                self._put(pipe, tier.step, host, start, None)
            elif start < cutoff:
                data = self._whole(tier.step, host, start)
                kept = None if data is None else blocks.cut(data, start, tier.step, cutoff)
                if kept is not data:
                    self._put(pipe, tier.step, host, start, kept)
        pipe.execute()

    def write_points(self, items) -> None:
        """Queue many points and write them now, in chunks (tools and tests filling history)."""
        for i, (tier, host, point) in enumerate(items, 1):
            self.add_point(tier, host, point)
            if i % 5000 == 0:
                self.flush()
        self.flush()

    def close(self) -> None:
        self.writes.close()
