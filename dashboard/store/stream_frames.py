"""Samples in a host's Redis stream, compressed against a recent sample of the same stream.

One sample in FRAME_EVERY is a key frame, compressed alone (field "z"); the
samples after it are compressed with the key frame as zlib's preset
dictionary (field "y", with the key frame's entry id in "k"). A sample and
one taken a minute earlier share most of their text (keys, process names,
disk and interface rows), so each costs about a third of what it costs
compressed alone. The key frame is an entry of the same stream, so nothing
else must outlive it: trimming the stream is all there is. A reader finds
the key frame in its cache (it read it a moment before) or fetches it once;
an entry whose key frame was trimmed away (the first minute of the kept
hour, at worst) is skipped and counted.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Callable

FRAME_EVERY = 60
_CACHE = 256  # key frames kept by a reader (a few per followed host)


def _squeeze(data: bytes, frame: bytes | None) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=frame) if frame else zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _unsqueeze(blob: bytes, frame: bytes | None) -> bytes:
    d = zlib.decompressobj(-15, zdict=frame) if frame else zlib.decompressobj(-15)
    return d.decompress(blob) + d.flush()


class Writer:
    """The fields of each new sample of one stream (the lease holder's)."""

    def __init__(self) -> None:
        self.frame: tuple[str, bytes] | None = None  # (entry id, text) of the key frame
        self.since = 0

    def fields(self, data: str) -> dict:
        raw = data.encode()
        if self.frame is None or self.since >= FRAME_EVERY - 1:
            return {"t": "metrics", "z": zlib.compress(raw, 6)}
        self.since += 1
        return {"t": "metrics", "k": self.frame[0], "y": _squeeze(raw, self.frame[1])}

    def written(self, fields: dict, entry_id: str, data: str) -> None:
        if "z" in fields:
            self.frame, self.since = (entry_id, data.encode()), 0

    def lost(self) -> None:
        """A write failed: the next sample is a key frame (the last one may not exist)."""
        self.frame = None


class Reader:
    """Stream entries read as bytes, given back as text with the sample in "d"."""

    def __init__(self, fetch: Callable[[str, str], bytes | None]) -> None:
        self.fetch = fetch  # (stream key, entry id) -> the key frame's "z", or None when gone
        self.frames: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.skipped = 0

    def _frame(self, key: str, frame_id: str) -> bytes | None:
        found = self.frames.get((key, frame_id))
        if found is None:
            packed = self.fetch(key, frame_id)
            if packed is None:
                return None
            found = self._keep(key, frame_id, zlib.decompress(packed))
        return found

    def _keep(self, key: str, frame_id: str, text: bytes) -> bytes:
        self.frames[(key, frame_id)] = text
        while len(self.frames) > _CACHE:
            self.frames.popitem(last=False)
        return text

    def entries(self, key: str, raw: list) -> list[tuple[str, dict]]:
        out = []
        for entry_id, fields in raw:
            entry_id = entry_id.decode()
            decoded = {}
            try:
                for name, value in fields.items():
                    if name == b"z":
                        text = zlib.decompress(value)
                        self._keep(key, entry_id, text)
                        decoded["d"] = text.decode()
                    elif name == b"y":
                        frame = self._frame(key, fields[b"k"].decode())
                        if frame is None:
                            raise LookupError(entry_id)
                        decoded["d"] = _unsqueeze(value, frame).decode()
                    elif name != b"k":
                        decoded[name.decode()] = value.decode()
            except (LookupError, zlib.error):
                self.skipped += 1
                continue
            out.append((entry_id, decoded))
        return out
