"""The tiers of lasting chart history and the one interface both stores offer.

A tier keeps one point per `step` seconds and host: for each chart series the
minimum, mean and maximum of the samples taken in that step, and how many
samples there were. Points travel as `Point` tuples; both stores keep them in
compressed blocks of many steps (store/blocks.py), a few bytes per series and
step. `Codec` is the record of one point as stores kept it before blocks
(float32 triples, NaN for "no value", 12 bytes per series plus its key): old
databases are read with it. The stores know nothing of what the series are:
they are handed their names and count.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

import numpy as np

NAN = float("nan")


@dataclass(frozen=True)
class Tier:
    name: str  # "minute", "hour"
    step: int  # seconds between points
    retention: float  # seconds a point is kept


class Point(NamedTuple):
    ts: int  # start of the step, epoch seconds, a multiple of the tier's step
    n: int  # samples rolled into it
    values: tuple  # (min, mean, max) per series, or None where no sample had it
    # Samples of each series, where one had fewer than n (a series missing from some samples);
    # None when every present series had n. A mean times its count gives the exact sum back.
    counts: tuple | None = None


class Codec:
    """Packs a point's values: n as uint16, then min, mean, max per series as float32."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.struct = struct.Struct("<H" + "f" * (3 * width))
        self.size = self.struct.size

    def pack(self, n: int, values: Sequence) -> bytes:
        flat = []
        for triple in values:
            flat.extend((NAN, NAN, NAN) if triple is None else triple)
        return self.struct.pack(min(n, 65535), *flat)

    def unpack(self, ts: int, blob: bytes) -> Point:
        raw = self.struct.unpack(blob)
        values = tuple(
            None if math.isnan(raw[i]) else (raw[i], raw[i + 1], raw[i + 2])
            for i in range(1, len(raw), 3)
        )
        return Point(ts, raw[0], values)


def block(codec: Codec, rows: list) -> tuple:
    """(ts, n, values) arrays from stored (ts, packed) rows: values has the shape
    (points, series, 3) for min, mean, max, NaN where a point had no value."""
    rows = [r for r in rows if len(r[1]) == codec.size]
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    raw = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.dtype(
        [("n", "<u2"), ("v", "<f4", (codec.width, 3))]))
    return ts, raw["n"].astype(np.int64), raw["v"].astype(np.float64)


class TierStore(Protocol):
    """Lasting history as the rest of the app sees it, whichever store keeps it."""

    tiers: tuple[Tier, ...]

    def add_point(self, tier: Tier, host: str, point: Point) -> None: ...  # queued, never blocks
    def points(self, tier: Tier, host: str, since: float, until: float) -> list[Point]: ...
    # (ts, n, values, counts) as store/blocks.py's decode() gives them
    def block(self, tier: Tier, host: str, since: float, until: float) -> tuple: ...
    def oldest(self, tier: Tier, host: str) -> int | None: ...
    def health(self) -> dict: ...


def default_tiers(minute_days: float, hour_days: float) -> tuple[Tier, ...]:
    return (Tier("minute", 60, minute_days * 86400), Tier("hour", 3600, hour_days * 86400))
