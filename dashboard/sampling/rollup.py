"""Roll-ups: min, mean and max of each chart series per minute and per hour, computed once.

Fed with every sample where it is taken (the sampler's process, or the holder
of the host's sampler lease), before it is published. Each tier keeps one open
bucket; the first sample of the next step closes it and hands the finished
`Point` to `emit` (which only queues it: writing is the store's job, later).
Hour points are made from the samples themselves, not from minute points, so
every tier's mean is the exact mean of the samples it covers.
"""

from __future__ import annotations

from typing import Callable

from ..store.tiers import Point, Tier
from .series import SERIES


class Bucket:
    """One step's open roll-up. Sums are compensated (Neumaier): the float sum then stays
    within a rounding of the exact decimal sum of the samples, so the stores can rebuild
    that sum exactly from mean times count and keep the mean exact (store/blocks.py)."""

    __slots__ = ("start", "n", "mins", "sums", "carry", "maxs", "counts")

    def __init__(self, start: int, width: int) -> None:
        self.start = start
        self.n = 0
        self.mins: list = [None] * width
        self.sums = [0.0] * width
        self.carry = [0.0] * width  # what the float sums lost, added back in point()
        self.maxs: list = [None] * width
        self.counts = [0] * width

    def add(self, values) -> None:
        self.n += 1
        mins, sums, carry, maxs, counts = self.mins, self.sums, self.carry, self.maxs, self.counts
        for i, v in enumerate(values):
            if v is None:
                continue
            if counts[i] == 0 or v < mins[i]:
                mins[i] = v
            if counts[i] == 0 or v > maxs[i]:
                maxs[i] = v
            s = sums[i]
            t = s + v
            carry[i] += (s - t) + v if abs(s) >= abs(v) else (v - t) + s
            sums[i] = t
            counts[i] += 1

    def seed(self, point: Point) -> None:
        """Continue a bucket that was stored before a restart."""
        self.n = point.n
        counts = point.counts or (point.n,) * len(point.values)
        for i, triple in enumerate(point.values[: len(self.sums)]):
            if triple is not None:
                low, mean, high = triple
                self.mins[i], self.maxs[i] = low, high
                self.sums[i], self.counts[i] = mean * counts[i], counts[i]

    def point(self) -> Point:
        values = tuple(
            None if c == 0 else (lo, (s + e) / c, hi)
            for lo, s, e, hi, c in zip(self.mins, self.sums, self.carry, self.maxs, self.counts)
        )
        short = any(0 < c < self.n for c in self.counts)
        return Point(self.start, self.n, values, tuple(self.counts) if short else None)


def values_of(sample: dict) -> tuple:
    """The chart series of one sample, in SERIES order (None where it has none)."""
    out = []
    for series in SERIES:
        value = series.get(sample)
        out.append(float(value) if isinstance(value, (int, float)) and value == value else None)
    return tuple(out)


class Rollups:
    """The open buckets of each tier for one host."""

    def __init__(self, tiers: tuple[Tier, ...], emit: Callable[[Tier, Point], None],
                 load: Callable[[Tier], Point | None] | None = None) -> None:
        self.tiers = tiers
        self.emit = emit
        # The stored point of a tier, read once to continue its bucket after a restart.
        self.load = load
        self.width = len(SERIES)
        self.open: dict[Tier, Bucket] = {}

    def seed(self, tier: Tier, point: Point | None, now: float) -> None:
        """Take up the stored bucket of the current step again (after a restart)."""
        if point is not None and point.ts == int(now) // tier.step * tier.step:
            bucket = Bucket(point.ts, self.width)
            bucket.seed(point)
            self.open[tier] = bucket

    def add(self, sample: dict) -> None:
        ts = sample.get("ts")
        if not isinstance(ts, (int, float)):
            return
        values = values_of(sample)
        for tier in self.tiers:
            start = int(ts) // tier.step * tier.step
            bucket = self.open.get(tier)
            if bucket is None and self.load is not None:
                try:
                    self.seed(tier, self.load(tier), ts)
                except Exception:  # an unreadable store only costs the bucket's past
                    pass
                bucket = self.open.get(tier)
            if bucket is None or bucket.start != start:
                if bucket is not None and bucket.n:
                    self.emit(tier, bucket.point())
                bucket = self.open[tier] = Bucket(start, self.width)
            bucket.add(values)

    def current(self, tier: Tier) -> Point | None:
        """The open bucket so far (shown as the newest point; written when it closes)."""
        bucket = self.open.get(tier)
        return bucket.point() if bucket is not None and bucket.n else None

    def close(self) -> None:
        """Hand over the open buckets as they are (at shutdown; `seed` takes them up)."""
        for tier, bucket in self.open.items():
            if bucket.n:
                self.emit(tier, bucket.point())
