"""The raw hour's chart columns, a minute to a blob: what the charts plot, without the rest of each sample.

Whole samples (every process, disk and interface) are kept only as long as a
viewer may resume from them (RESUME_SECONDS); the charts' hour at full
resolution needs only a few dozen numbers per sample. Each finished minute of
one host's samples is packed into one blob of columns: the sample's time (ms),
seq and interval, each chart series and each core's CPU. Each column is kept
exactly: as integers of 10**-d (the fewest decimals, 0..6, that give every
value back; float64 bits where none does), as zig-zagged differences between
neighbouring samples in variable-length bytes (most are one byte), with a bit
mask of the samples that had no value; then the whole is zlib-compressed.
About 1-1.5 B per value. Plain Python, no numpy: the agent packs its minutes too,
and installs only what sampling and Redis need.

A row is (ts, seq, interval, cores, values): ts in epoch seconds, cores and
values tuples of float or None. The store does not know what the values are;
the blob says how many there are and how many cores, and a blob of another
shape (an older release with other series) or a damaged one reads as nothing.
"""

from __future__ import annotations

import struct
import zlib

VERSION = 2
_HEAD = struct.Struct("<BHHH")  # version, values per row, cores per row, rows
_FIXED = 3  # ts (ms), seq, interval
_RAW = 255  # the scale byte of a column kept as float64 bits
_F64 = struct.Struct("<d")
_I64 = struct.Struct("<q")


def _number(v) -> float | None:
    return None if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or v != v else float(v)


def _scale(column: list[float]) -> int:
    for d in range(7):
        f = 10 ** d
        if all(abs(v) * f < 2 ** 52 and round(v * f) / f == v for v in column):
            return d
    return _RAW


def _varint(n: int, out: bytearray) -> None:
    n = (n << 1) ^ (n >> 63)  # zig-zag: small negatives are small too
    n &= (1 << 64) - 1
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _pack_column(column: list[float | None], out: bytearray) -> None:
    present = [v for v in column if v is not None]
    mask = bytearray((len(column) + 7) // 8)
    for i, v in enumerate(column):
        if v is not None:
            mask[i >> 3] |= 1 << (i & 7)
    d = _scale(present)
    out.append(d)
    out += mask
    prev = 0
    for v in present:
        n = _I64.unpack(_F64.pack(v))[0] if d == _RAW else round(v * 10 ** d)
        _varint((n - prev) & ((1 << 64) - 1) if d == _RAW else n - prev, out)
        prev = n


def encode(rows: list[tuple]) -> bytes:
    """One blob of rows (a minute of one host's samples, oldest first)."""
    nvalues = max((len(r[4]) for r in rows), default=0)
    ncores = max((len(r[3]) for r in rows), default=0)
    columns: list[list] = [[] for _ in range(_FIXED + nvalues + ncores)]
    for ts, seq, interval, cores, values in rows:
        ts = _number(ts)
        cells = [None if ts is None else float(round(ts * 1000)), _number(seq), _number(interval)]
        cells += [_number(v) for v in values] + [None] * (nvalues - len(values))
        cells += [_number(v) for v in cores] + [None] * (ncores - len(cores))
        for column, cell in zip(columns, cells):
            column.append(cell)
    out = bytearray()
    for column in columns:
        _pack_column(column, out)
    return _HEAD.pack(VERSION, nvalues, ncores, len(rows)) + zlib.compress(bytes(out), 6)


def _unpack_column(buf: bytes, at: int, k: int) -> tuple[list, int]:
    d = buf[at]
    at += 1
    mask = buf[at:at + (k + 7) // 8]
    at += (k + 7) // 8
    out: list = []
    prev = 0
    for i in range(k):
        if not mask[i >> 3] & (1 << (i & 7)):
            out.append(None)
            continue
        n = shift = 0
        while True:
            byte = buf[at]
            at += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        delta = (n >> 1) ^ -(n & 1)
        if d == _RAW:
            prev = (prev + delta) & ((1 << 64) - 1)
            out.append(_F64.unpack(struct.pack("<Q", prev))[0])
        else:
            prev += delta
            out.append(prev / 10 ** d if d else float(prev))
    return out, at


def decode(blob: bytes, nvalues: int) -> list[tuple]:
    """The rows of a blob written with `nvalues` values per row ([] for one of another shape)."""
    try:
        version, have, ncores, k = _HEAD.unpack_from(blob)
        if version != VERSION or have != nvalues:
            return []
        buf = zlib.decompress(blob[_HEAD.size:])
        columns, at = [], 0
        for _ in range(_FIXED + nvalues + ncores):
            column, at = _unpack_column(buf, at, k)
            columns.append(column)
    except (struct.error, zlib.error, IndexError):  # damaged: that minute is a gap
        return []
    out = []
    for i in range(k):
        ts, seq = columns[0][i], columns[1][i]
        out.append((None if ts is None else ts / 1000, None if seq is None else int(seq), columns[2][i],
                    tuple(c[i] for c in columns[_FIXED + nvalues:]),
                    tuple(c[i] for c in columns[_FIXED:_FIXED + nvalues])))
    return out
