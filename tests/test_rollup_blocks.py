"""Roll-ups packed in blocks: a month of samples reads back exactly through both stores, at
every window; old one-row-per-point databases still read and are packed; the size is
at most 6 bytes per series and step."""

import random
import sqlite3
import struct
import time
from fractions import Fraction

import numpy as np
import pytest

from dashboard.sampling.rollup import Bucket
from dashboard.store import blocks
from dashboard.store.history_store import HistoryStore
from dashboard.store.redis_store import RedisStore
from dashboard.store.redis_tiers import RedisTiers
from dashboard.store.tiers import Codec, Point, default_tiers
from dashboard.stream.windows import Windows
from tests.test_lasting import DAY, NAMES, FakeView

TIERS = default_tiers(31, 400)
MINUTE, HOUR = TIERS
DECIMALS = {"load1": 2, "load5": 2, "load15": 2}  # as the collectors round them; the rest to 0.1


# Per series: (typical level, how far it wanders per sample, noise of one sample), shaped
# like a container's samples: cpu noisy, memory and load averages smooth, swap constant,
# rates bursty around their level.
SHAPES = {"cpu": (30, 0.5, 8), "memory": (60, 0.02, 0.1), "swap": (1.5, 0, 0), "load1": (1.2, 0.02, 0.05),
          "load5": (1.1, 0.01, 0.02), "load15": (1.0, 0.005, 0.01), "disk_read": (2e5, 2e3, 5e4),
          "disk_write": (8e5, 5e3, 2e5), "net_rx": (3e6, 2e4, 8e5), "net_tx": (1e6, 1e4, 3e5),
          "container_cpu": (20, 0.5, 6), "container_memory": (45, 0.02, 0.1)}


def synthetic_month(now: int, days: int = 30, every: int = 20, seed: int = 3, exact: bool = False) -> list:
    """Samples every `every` seconds for `days` days, rolled up as the sampler does: per series
    a level that wanders plus noise (SHAPES), rounded as the collectors round; a sample
    without cpu now and then. With `exact`, each point's means are instead the exact decimal
    sums of its samples over their count, rounded once to a float: what a store must read back."""
    rnd = random.Random(seed)
    level = [SHAPES[name][0] for name in NAMES]
    start = (now - days * DAY) // HOUR.step * HOUR.step
    open_ = {}
    sums = {}  # (tier, step start) -> exact sum per series
    items = []
    for ts in range(start, now // 60 * 60, every):
        values = []
        for j, name in enumerate(NAMES):
            typical, wander, noise = SHAPES[name]
            if name == "cpu" and rnd.random() < 0.01:
                values.append(None)
                continue
            level[j] = max(0.0, level[j] + rnd.gauss(0, wander) + 0.001 * (typical - level[j]))
            values.append(round(max(0.0, level[j] + rnd.gauss(0, noise)), DECIMALS.get(name, 1)))
        for tier in TIERS:
            at = ts // tier.step * tier.step
            bucket = open_.get(tier)
            if bucket is None or bucket.start != at:
                if bucket is not None:
                    items.append((tier, "web-1", _exact(bucket.point(), sums.pop((tier, bucket.start)))
                                  if exact else bucket.point()))
                bucket = open_[tier] = Bucket(at, len(NAMES))
            bucket.add(values)
            total = sums.setdefault((tier, at), [Fraction(0)] * len(NAMES))
            for j, v in enumerate(values):
                if v is not None:
                    total[j] += Fraction(repr(v))
    return items


def _exact(point: Point, sums: list) -> Point:
    counts = point.counts or [point.n] * len(point.values)
    return point._replace(values=tuple(None if v is None else (v[0], float(s / c), v[2])
                                       for v, s, c in zip(point.values, sums, counts)))


class Reference:
    """The points exactly as written, behind the stores' reading interface."""

    def __init__(self, items):
        self.tiers = TIERS
        self.points_of = {t: sorted((p for tier, _h, p in items if tier is t), key=lambda p: p.ts) for t in TIERS}

    def block(self, tier, host, since, until):
        chosen = [p for p in self.points_of[tier] if since <= p.ts <= until]
        return blocks.arrays(chosen, len(NAMES))


@pytest.fixture(scope="module")
def month():
    now = int(time.time()) // 60 * 60
    return now, synthetic_month(now), synthetic_month(now, exact=True)


def check_points(stored, written):
    """Every step, its count and each series' min, mean, max and count read back exactly."""
    assert [p.ts for p in stored] == [p.ts for p in written]
    for got, want in zip(stored, written):
        assert (got.n, got.counts) == (want.n, want.counts)
        for name, g, w in zip(NAMES, got.values, want.values):
            assert g == w, (got.ts, name, g, w)


def check_windows(store, exact, now):
    reference = Windows(3600, TIERS, Reference(exact))
    windows = Windows(3600, TIERS, store)
    for seconds in (2 * 3600, 6 * 3600, DAY, 7 * DAY, 30 * DAY):
        want = reference.window(FakeView(), seconds, now=now)
        got = windows.window(FakeView(), seconds, now=now)
        assert got["tier"] == want["tier"] != "raw" and got["count"] == want["count"] > 0, seconds
        for name in NAMES:
            for column in (name + "_min", name, name + "_max"):
                assert got["columns"][column] == want["columns"][column], (seconds, column)


def test_a_month_of_samples_reads_back_from_sqlite_exactly_at_every_window(month, tmp_path):
    now, items, exact = month
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 3600)
    store.write_points(items)
    for tier in TIERS:
        check_points(store.points(tier, "web-1", 0, now + DAY), [p for t, _h, p in exact if t is tier])
    check_windows(store, exact, now)
    store.close()


def test_a_month_of_samples_reads_back_from_redis_exactly_at_every_window(month, redis_server):
    now, items, exact = month
    store = RedisStore(redis_server.url, "t")
    tiers = RedisTiers(store, TIERS, NAMES)
    tiers.write_points(items)
    assert tiers.health()["pending"] == 0
    for tier in TIERS:
        check_points(tiers.points(tier, "web-1", 0, now + DAY), [p for t, _h, p in exact if t is tier])
    check_windows(tiers, exact, now)
    # At most 6 bytes per series and step in Redis (MEMORY USAGE of the tier's keys), and
    # about 1 % more than the blocks' own bytes: each is cut to fill an allocation (fitted()).
    for tier in TIERS:
        steps = sum(1 for t, _h, _p in items if t is tier)
        keys = (store.blocks_key(tier.step, "web-1"), store.tails_key(tier.step, "web-1"))
        used = sum(store.binary.memory_usage(k, samples=0) or 0 for k in keys)
        packed = sum(len(v) for k in keys for v in store.binary.hvals(k))
        assert used / steps / len(NAMES) <= 6.0, (tier.name, used / steps / len(NAMES))
        assert used <= 1.03 * packed + 2000, (tier.name, used, packed)
    store.close()


def test_at_most_six_bytes_per_series_and_step_on_disk(month, tmp_path):
    now, items, _exact_items = month
    sizes = {}
    for tier in TIERS:
        store = HistoryStore(str(tmp_path / tier.name), TIERS, NAMES, 3600)
        empty = page_bytes(store.path)
        store.write_points([i for i in items if i[0] is tier])
        store.close()
        steps = sum(1 for t, _h, _p in items if t is tier)
        sizes[tier.name] = (page_bytes(store.path) - empty) / steps / len(NAMES)
    assert sizes["minute"] <= 6.0 and sizes["hour"] <= 6.0, sizes


def page_bytes(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return size


def test_an_hour_of_rates_at_1_hz_keeps_its_exact_mean_and_each_series_count():
    """The sampler's sums, packed and repacked, give each mean back as the float nearest the
    exact mean (before exact sums: 5.5 B/s off for a rate near 1.8e7 B/s)."""
    rnd = random.Random(7)
    bucket = Bucket(0, len(NAMES))
    exact = [Fraction(0)] * len(NAMES)
    for i in range(3600):
        values = [None if j == 0 and i % 7 == 0 else float(rnd.randrange(17_000_000, 19_000_000))
                  if name.startswith(("disk", "net")) else round(rnd.uniform(0, 100), DECIMALS.get(name, 1))
                  for j, name in enumerate(NAMES)]
        bucket.add(values)
        for j, v in enumerate(values):
            exact[j] += Fraction(repr(v)) if v is not None else 0
    point = bucket.point()
    assert point.counts == (3600 - 515,) + (3600,) * (len(NAMES) - 1)
    blob = blocks.merge(None, [point], len(NAMES), 672, 0, 3600)
    blob = blocks.merge(blob, [Point(3600, 1, (None,) * len(NAMES))], len(NAMES), 672, 0, 3600)  # repacked
    got = blocks.to_points(*blocks.decode(blob, 0, 3600))[0]
    assert got.counts == point.counts
    for j, (low, mean, high) in enumerate(got.values):
        assert (low, high) == (point.values[j][0], point.values[j][2])
        assert mean == float(exact[j] / point.counts[j]), NAMES[j]


def test_a_mean_that_is_no_sum_of_decimals_is_kept_to_three_decimals():
    point = Point(0, 3, ((1.0, 1.2345678901, 2.0),) + (None,) * (len(NAMES) - 1))
    got = blocks.to_points(*blocks.decode(blocks.merge(None, [point], len(NAMES), 360, 0, 60), 0, 60))[0]
    assert got.values[0][::2] == (1.0, 2.0) and abs(got.values[0][1] - 1.2345678901) <= 0.0005


def test_a_block_keeps_what_no_decimal_scale_holds_and_replaces_a_step_written_again():
    odd = (1 / 3, 2 / 3, 1e300)
    first = Point(0, 5, (odd,) + (None,) * (len(NAMES) - 1))
    again = Point(0, 7, ((1.0, 2.0, 3.0),) + (None,) * (len(NAMES) - 1))
    later = Point(120, 1, (None,) * len(NAMES))
    blob = blocks.merge(None, [first, later], len(NAMES), 360, 0, 60)
    assert blocks.to_points(*blocks.decode(blob, 0, 60)) == [first, later]  # float64 kept bit for bit
    blob = blocks.merge(blob, [again], len(NAMES), 360, 0, 60)
    assert blocks.to_points(*blocks.decode(blob, 0, 60)) == [again, later]
    assert blocks.cut(blob, 0, 60, 60) is not blob and blocks.cut(blob, 0, 60, 180) is None


# ---- databases from before blocks ----------------------------------------------------

def old_rows(items):
    codec = Codec(len(NAMES))
    return [(t, h, p.ts, codec.pack(p.n, p.values)) for t, h, p in items]


def as_float32(points):
    """What the old format kept: float32 values."""
    return [Point(p.ts, p.n, tuple(None if v is None else tuple(float(np.float32(x)) for x in v)
                                   for v in p.values)) for p in points]


def test_an_old_sqlite_database_still_reads_and_is_packed_into_blocks(month, tmp_path):
    now, items, _exact_items = month
    week = [i for i in items if i[2].ts >= now - 7 * DAY]
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 3600)
    store.writer.executemany("INSERT INTO points (host, step, ts, data) VALUES (?, ?, ?, ?)",
                             [(h, t.step, ts, data) for t, h, ts, data in old_rows(week)])
    want = {t: as_float32([p for tier, _h, p in week if tier is t]) for t in TIERS}
    for tier in TIERS:
        assert store.points(tier, "web-1", 0, now + DAY) == want[tier]
    while store.writer.execute("SELECT COUNT(*) FROM points").fetchone()[0]:
        store._trimmed_at = 0  # the upkeep's minute has passed
        store.flush()
    assert store.writer.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] > 0
    for tier in TIERS:  # packed: min, max and count exact, means as blocks keep them
        check_points(store.points(tier, "web-1", 0, now + DAY), want[tier])
    store.close()


def test_old_redis_points_still_read_and_are_packed_into_blocks(month, redis_server):
    now, items, _exact_items = month
    week = [i for i in items if i[2].ts >= now - 7 * DAY]
    store = RedisStore(redis_server.url, "t")
    pipe = store.binary.pipeline()
    for t, h, ts, data in old_rows(week):
        pipe.zadd(store.tier_key(t.step, h), {struct.pack(">q", ts) + data: ts})
    pipe.execute()
    tiers = RedisTiers(store, TIERS, NAMES)
    want = {t: as_float32([p for tier, _h, p in week if tier is t]) for t in TIERS}
    for tier in TIERS:
        assert tiers.points(tier, "web-1", 0, now + DAY) == want[tier]
        assert tiers.oldest(tier, "web-1") == want[tier][0].ts
    # A new point joins its block with the old points around it; the upkeep packs the rest.
    tiers.add_point(MINUTE, "web-1", Point(now, 1, (None,) * len(NAMES)))
    while any(store.binary.zcard(store.tier_key(t.step, "web-1")) for t in TIERS):
        tiers._trimmed_at = 0
        tiers.flush()
    for tier in TIERS:
        got = tiers.points(tier, "web-1", 0, now + DAY)
        check_points(got[:len(want[tier])], want[tier])
    assert tiers.last_point(MINUTE, "web-1") == Point(now, 1, (None,) * len(NAMES))
    store.close()
