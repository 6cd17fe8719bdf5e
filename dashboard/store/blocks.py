"""Roll-up blocks: many steps of one host's tier packed column by column and compressed.

A block holds the points of `steps_per_block(tier)` consecutive steps (six
hours of minutes, four weeks of hours), stored under the start of its first step. Both
stores keep one compressed blob per block instead of one 150-byte record per
point, so a stored point costs a few bytes per series instead of 12 + key.

How a block is packed (`encode`), and why:
- Every column (samples per step; min, mean, max of each series) becomes
  integers. The samples carry at most a few decimals (percentages to 0.1,
  load to 0.01, rates to 0.1 B/s), so min and max are stored as exact
  integers of 10**-d (the smallest d of 0..6 that keeps every value of the
  block's column exact, checked by decoding it): they read back exactly. The
  mean is kept as the exact decimal sum of its step's samples (mean times
  count, an integer of 10**-e for the smallest e at which every step's sum is
  one), beside each step's count where a series had fewer samples than the
  step: it reads back as sum / count, the float nearest the exact mean. The
  sampler's compensated sums (sampling/rollup.py) make mean times count land
  within a rounding of that integer; a mean that does not (a value from
  elsewhere) is kept as before version 2: to two decimals more than min and
  max, or float32's 24 bits of the block's largest mean, or exactly at fewer.
  A column no decimal scale can keep exactly keeps its float64 bits, losslessly.
- Each column is stored as the zig-zagged differences between neighbouring
  steps (metrics change little from one step to the next, so most
  differences are small), in the fewest bytes (1, 2, 4 or 8) its largest
  difference needs, and byte-shuffled (all first bytes, then all second
  bytes: the high bytes are mostly zero and compress to nearly nothing).
- The whole is compressed with zlib, or LZMA for blocks of hours (see
  _LZMA). Measured on these columns: LZMA 7 % smaller than zlib, bz2 and
  zlib level 9 no better than level 6, Huffman-only 15 % larger; a bit-level
  (Gorilla-style) coder was not tried. Both are in C: decoding a block takes
  about a millisecond with numpy, and decoded blocks are cached by content
  (DecodedCache), so a year's window decodes only what changed.
A series that had no value in a step is marked in a bit mask per series.
"""

from __future__ import annotations

import lzma
import math
import struct
import zlib
from collections import OrderedDict

import numpy as np

from .tiers import Point, Tier

VERSION = 2  # 2: means as exact sums (_SUM); 1 is read too
_HEAD = struct.Struct("<BHB")  # version, steps per block, series
_RAW = 255  # the scale byte of a column kept as float64 bits
_MAX_EXACT = 2.0 ** 52
_FLOAT32_STEPS = 2.0 ** 24  # a float32 keeps 24 bits of a number
_SIGNED = 64  # the mean's scale byte is its decimals + 64
_PLAIN = 0x80
_SUM = 128  # the mean's scale byte is e + 128: its column holds exact sums of 10**-e
# The method byte before the compressed block. Blocks of hour steps or longer are written
# once an hour: LZMA's 7 % smaller output is worth its ~20 ms there; minute blocks,
# rewritten every minute, use zlib (~1 ms).
_ZLIB, _LZMA = b"z", b"x"
LZMA_STEP = 3600
_LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6, "lc": 0, "lp": 0, "pb": 0}]


def steps_per_block(tier: Tier) -> int:
    """Six hours of minute steps (360), four weeks of hour steps (672): a minute block is
    rewritten each minute, so it stays small; an hour block each hour, so it may be larger,
    which wastes less of the last page (SQLite) or allocation (Redis) per step."""
    if tier.step <= 60:
        return max(24, min(1440, 21600 // tier.step))
    return max(24, min(672, 2419200 // tier.step))


def block_start(tier: Tier, ts: int) -> int:
    span = steps_per_block(tier) * tier.step
    return int(ts) // span * span


def _scale(column: np.ndarray, extra: int = 0) -> int:
    """The smallest d (0..6) such that column * 10**d as integers gives column back exactly."""
    if not len(column):
        return 0
    top = float(np.max(np.abs(column)))
    for d in range(7):
        factor = 10.0 ** (d + extra)
        if top * factor >= _MAX_EXACT:
            break
        if np.array_equal(np.round(column * factor) / factor, column):
            return d
    return _RAW


def _integers(column: np.ndarray, scale: int) -> np.ndarray:
    if scale == _RAW:
        return column.astype("<f8").view("<i8")
    return np.round(column * 10.0 ** scale).astype(np.int64)


def _floats(ints: np.ndarray, scale: int) -> np.ndarray:
    if scale == _RAW:
        return ints.astype("<i8").view("<f8")
    return ints / 10.0 ** scale


def _zigzag(ints: np.ndarray) -> np.ndarray:
    return ((ints << 1) ^ (ints >> 63)).view(np.uint64)


def _cost(zigzag: np.ndarray) -> float:
    return float(np.log2(zigzag.astype(np.float64) + 1).sum())


def _pack_column(ints: np.ndarray) -> bytes:
    """The integers or their differences (whichever is smaller: differences for what moves
    slowly, the values for what is noise around a level), zig-zagged, in the fewest bytes
    that hold them, byte-shuffled. The first byte: the width, plus _PLAIN without differences."""
    plain = _zigzag(ints)
    deltas = _zigzag(np.diff(ints, prepend=np.int64(0)))  # wraps around like the decoder's cumsum
    flag = 0
    if _cost(plain) < _cost(deltas):
        deltas, flag = plain, _PLAIN
    top = int(deltas.max()) if len(deltas) else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    planes = deltas.astype(f"<u{width}").view(np.uint8).reshape(-1, width).T
    return bytes((width | flag,)) + planes.tobytes()


def _unpack_column(buf: memoryview, offset: int, count: int) -> tuple[np.ndarray, int]:
    width, plain = buf[offset] & ~_PLAIN, buf[offset] & _PLAIN
    offset += 1
    planes = np.frombuffer(buf, np.uint8, width * count, offset).reshape(width, count)
    zigzag = np.ascontiguousarray(planes.T).view(f"<u{width}").ravel().astype(np.uint64)
    ints = (zigzag >> np.uint64(1)).view(np.int64) ^ -(zigzag & np.uint64(1)).view(np.int64)
    return (ints if plain else np.cumsum(ints)), offset + width * count


def _rescale(ints: np.ndarray, scale: int, to: int) -> np.ndarray:
    """Integers of 10**-scale as integers of 10**-to, in integer arithmetic (the same on both sides)."""
    return ints // 10 ** (scale - to) if scale >= to else ints * 10 ** (to - scale)


def arrays(points: list[Point], width: int) -> tuple:
    """(ts, n, values, counts) of points, as decode() gives them: counts is each series'
    samples per step, shaped (points, series)."""
    values = np.full((len(points), width, 3), np.nan)
    n = np.array([p.n for p in points], dtype=np.int64)
    counts = np.repeat(n[:, None], width, axis=1)
    for i, p in enumerate(points):
        for j, triple in enumerate(p.values[:width]):
            if triple is not None:
                values[i, j] = triple
        if p.counts is not None:
            fewer = p.counts[:width]
            counts[i, :len(fewer)] = fewer
    return np.array([p.ts for p in points], dtype=np.int64), n, values, counts


def encode(points: list[Point], width: int, steps: int, start: int, step: int) -> bytes:
    """One block of the given points (ts inside [start, start + steps * step))."""
    return encode_arrays(*arrays(points, width), steps=steps, start=start, step=step)


def encode_arrays(ts: np.ndarray, n: np.ndarray, values: np.ndarray, counts: np.ndarray | None = None, *,
                  steps: int, start: int, step: int) -> bytes:
    if counts is None:
        counts = np.repeat(n[:, None], values.shape[1], axis=1)
    order = np.argsort(ts, kind="stable")
    ts, n, values, counts = ts[order], n[order], values[order], counts[order]
    width = values.shape[1]
    present = np.zeros(steps, dtype=bool)
    present[(ts - start) // step] = True
    parts = [_HEAD.pack(VERSION, steps, width), np.packbits(present).tobytes(), _pack_column(n)]
    for j in range(width):
        has = ~np.isnan(values[:, j, 1])
        parts.append(np.packbits(has).tobytes())
        column = values[has, j, :]
        d = _scale(column[:, [0, 2]].ravel())
        found = _sums(column[:, 1], counts[has, j], d)
        if found is not None:
            e, sums = found
            middle = _rescale(sums // counts[has, j], e, d)
            parts.append(bytes((d, e + _SUM)))
            columns = [sums, middle - _integers(column[:, 0], d), _integers(column[:, 2], d) - middle,
                       n[has] - counts[has, j]]
            parts.extend(_pack_column(c) for c in columns)
            continue
        dm = _mean_scale(column[:, 1], d)
        parts.append(bytes((d, _RAW if dm == _RAW else dm + _SIGNED)))
        if d == _RAW:
            columns = [_integers(column[:, k], _RAW) for k in (1, 0, 2)]
        else:
            # min and max as their distances below and above the mean (at their scale):
            # small numbers when a step's samples stay near their mean.
            mean = _integers(column[:, 1], dm)
            middle = _rescale(mean, dm, d)
            columns = [mean, middle - _integers(column[:, 0], d), _integers(column[:, 2], d) - middle]
        parts.extend(_pack_column(c) for c in columns)
    raw = b"".join(parts)
    if step >= LZMA_STEP:
        return _LZMA + lzma.compress(raw, format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    return _ZLIB + zlib.compress(raw, 6)


def _inflate(blob: bytes) -> bytes:
    if blob[:1] == _LZMA:
        return lzma.decompress(blob[1:], format=lzma.FORMAT_RAW, filters=_LZMA_FILTERS)
    if blob[:1] == _ZLIB:
        return zlib.decompress(blob[1:])
    raise ValueError(f"roll-up block packed with unknown method {blob[:1]!r}")


def _sums(means: np.ndarray, counts: np.ndarray, d: int) -> tuple[int, np.ndarray] | None:
    """(e, sums): each step's exact decimal sum as integers of 10**-e, for the smallest e
    (d..6) at which mean times count is within a rounding of an integer for every step;
    None if there is none (means that are no sum of decimals)."""
    if d == _RAW or not len(means):
        return None
    for e in range(d, 7):
        f = means * counts * 10.0 ** e
        sums = np.round(f)
        if float(np.max(np.abs(sums))) >= _MAX_EXACT / 8:
            return None
        if np.all(np.abs(f - sums) <= 1e-9 + np.abs(f) * 1e-13):
            return e, sums.astype(np.int64)
    return None


def _mean_scale(column: np.ndarray, d: int) -> int:
    """Decimals the mean is kept to: two more than min and max (at least three), or as many
    as float32 would keep of the block's largest mean, whichever is fewer (may be below 0)."""
    if d == _RAW:
        return _RAW
    scale = max(d, 1) + 2
    top = float(np.max(np.abs(column))) if len(column) else 0.0
    if top > 0:
        scale = min(scale, math.floor(math.log10(_FLOAT32_STEPS / top)))
    # Means that need fewer decimals (one sample per step, a constant) are kept exactly at those:
    # the decoder reads the scale from the block, so this costs no format change.
    exact = _scale(column)
    if exact != _RAW and (exact < scale or exact <= d):
        scale = exact
    return max(scale, -_SIGNED)


def decode(blob: bytes, start: int, step: int) -> tuple:
    """(ts, n, values, counts) of the block's points: values shaped (points, series, 3) with
    NaN where none, counts (points, series) each series' samples."""
    buf = memoryview(_inflate(blob))
    version, steps, width = _HEAD.unpack_from(buf)
    if version not in (1, VERSION):
        raise ValueError(f"roll-up block version {version} is not {VERSION}")
    offset = _HEAD.size
    mask_len = (steps + 7) // 8
    present = np.unpackbits(np.frombuffer(buf, np.uint8, mask_len, offset))[:steps].astype(bool)
    offset += mask_len
    slots = np.flatnonzero(present)
    k = len(slots)
    counts, offset = _unpack_column(buf, offset, k)
    values = np.full((k, width, 3), np.nan)
    per_series = np.repeat(counts[:, None], width, axis=1)
    has_len = (k + 7) // 8
    for j in range(width):
        has = np.unpackbits(np.frombuffer(buf, np.uint8, has_len, offset))[:k].astype(bool)
        offset += has_len
        d, dm = buf[offset], buf[offset + 1]
        offset += 2
        m = int(has.sum())
        mean, offset = _unpack_column(buf, offset, m)
        below, offset = _unpack_column(buf, offset, m)
        above, offset = _unpack_column(buf, offset, m)
        if _SUM <= dm < _RAW:
            short, offset = _unpack_column(buf, offset, m)
            c = counts[has] - short
            per_series[has, j] = c
            middle = _rescale(mean // c, dm - _SUM, d)
            values[has, j, 0] = _floats(middle - below, d)
            values[has, j, 1] = mean / (c * 10.0 ** (dm - _SUM))  # one rounding: the float nearest
            values[has, j, 2] = _floats(middle + above, d)
            continue
        dm = _RAW if dm == _RAW else dm - _SIGNED
        if d != _RAW:
            middle = _rescale(mean, dm, d)
            below, above = middle - below, middle + above
        values[has, j, 0] = _floats(below, d)
        values[has, j, 1] = _floats(mean, dm)
        values[has, j, 2] = _floats(above, d)
    return start + slots * step, counts, values, per_series


class DecodedCache:
    """Decoded blocks by their content (a block rewritten is a new entry), least recently
    used dropped past `limit` bytes: a year's window reads 53 blocks, of which only the
    newest changes between two reads, so each process decodes each block about once."""

    def __init__(self, limit: int = 16 << 20) -> None:
        self.limit = limit
        self.size = 0
        self.hits = 0
        self._entries: OrderedDict = OrderedDict()

    def decode(self, blob: bytes, start: int, step: int) -> tuple:
        key = (start, step, len(blob), zlib.crc32(blob))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        found = decode(blob, start, step)
        for array in found:
            array.flags.writeable = False  # shared by every reader: copied, never changed
        self._entries[key] = found
        self.size += sum(a.nbytes for a in found)
        while self.size > self.limit and self._entries:
            _key, old = self._entries.popitem(last=False)
            self.size -= sum(a.nbytes for a in old)
        return found


def to_points(ts: np.ndarray, n: np.ndarray, values: np.ndarray, counts: np.ndarray | None = None) -> list[Point]:
    out = []
    for i in range(len(ts)):
        row = values[i]
        present = ~np.isnan(row[:, 1])
        short = counts is not None and bool(np.any(counts[i][present] != n[i]))
        out.append(Point(int(ts[i]), int(n[i]), tuple(
            None if np.isnan(row[j, 1]) else (float(row[j, 0]), float(row[j, 1]), float(row[j, 2]))
            for j in range(row.shape[0])),
            tuple(int(c) if p else 0 for c, p in zip(counts[i], present)) if short else None))
    return out


def merge(blob: bytes | None, points: list[Point], width: int, steps: int, start: int, step: int) -> bytes:
    """The block with points added (a point of a step already stored replaces it, and of
    points given for one step the last wins)."""
    new = arrays(list({p.ts: p for p in points}.values()), width)
    if blob is not None:
        old = concat([decode(blob, start, step)], width)
        keep = ~np.isin(old[0], new[0])
        new = concat([tuple(a[keep] for a in old), new], width)
    return encode_arrays(*new, steps=steps, start=start, step=step)


def concat(parts: list[tuple], width: int) -> tuple:
    """One (ts, n, values, counts) from several (ts, n, values[, counts]), in the order given;
    cut or padded to width series."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, width, 3)), np.zeros((0, width), np.int64)
    fitted = []
    for ts, n, values, *rest in parts:
        counts = rest[0] if rest else np.repeat(n[:, None], values.shape[1], axis=1)
        if values.shape[1] < width:
            values = np.concatenate((values, np.full((len(ts), width - values.shape[1], 3), np.nan)), axis=1)
            counts = np.concatenate((counts, np.zeros((len(ts), width - counts.shape[1]), np.int64)), axis=1)
        fitted.append((ts, n, values[:, :width, :], counts[:, :width]))
    return tuple(np.concatenate([f[i] for f in fitted]) for i in range(4))


def by_block(tier: Tier, points: list[Point]) -> dict[int, list[Point]]:
    out: dict[int, list[Point]] = {}
    for point in points:
        out.setdefault(block_start(tier, point.ts), []).append(point)
    return out


def combine(legacy: tuple, decoded: list[tuple], width: int, since: float, until: float) -> tuple:
    """Old-format rows and decoded blocks as one (ts, n, values, counts) inside [since, until],
    in time order; where both have a step, the block's point wins."""
    found = concat([legacy] + decoded, width)
    ts = found[0]
    found = tuple(a[(ts >= int(since)) & (ts <= int(until))] for a in found)
    ts = found[0]
    if len(legacy[0]) and len(ts):
        # The last of each run of equal ts is the block's (concatenated after the rows).
        order = np.argsort(ts, kind="stable")
        found = tuple(a[order] for a in found)
        ts = found[0]
        found = tuple(a[np.append(ts[1:] != ts[:-1], True)] for a in found)
    return found


def cut(blob: bytes, start: int, step: int, cutoff: int) -> bytes | None:
    """The block without its points before cutoff: itself if it has none, None if nothing is left."""
    found = decode(blob, start, step)
    keep = found[0] >= cutoff
    if keep.all():
        return blob
    if not keep.any():
        return None
    steps = _HEAD.unpack_from(_inflate(blob))[1]
    return encode_arrays(*(a[keep] for a in found), steps=steps, start=start, step=step)
