"""The body guard on its own: caps, one deadline for the whole body, shutdown."""

from __future__ import annotations

import io
import time

import gevent
import pytest

from dashboard.web.body_limits import BodyInterrupted, BodyLimits, BodyTimeout, BodyTooLarge, GuardedInput


class Trickle:
    """A body that arrives a piece at a time, `pause` seconds apart."""

    def __init__(self, pieces: list[bytes], pause: float) -> None:
        self.pieces, self.pause = list(pieces), pause

    def read(self, size=-1):
        out = b""
        while self.pieces and (size < 0 or len(out) < size):
            gevent.sleep(self.pause)
            out += self.pieces.pop(0)
        return out


def guard(max_bytes=100, timeout=1.0):
    refused = []
    limits = BodyLimits(lambda environ, start_response: [], max_bytes, timeout,
                        on_refused=lambda reason, addr: refused.append((reason, addr)))
    return limits, refused


def body(limits, raw, declared):
    return GuardedInput(raw, limits, declared, time.monotonic() + limits.timeout, "10.0.0.1")


def test_a_body_within_its_limits_reads_whole():
    limits, refused = guard()
    b = body(limits, io.BytesIO(b'{"a": 1}'), 8)
    assert b.read(0) == b"" and not b.finished
    assert b.read() == b'{"a": 1}' and b.finished and b.read() == b""
    assert refused == []


def test_one_deadline_for_the_whole_body_not_per_read():
    limits, refused = guard(timeout=0.5)
    b = body(limits, Trickle([b"x"] * 20, 0.1), 20)  # every piece on time, the whole too slow
    with pytest.raises(BodyTimeout):
        while b.read(1):
            pass
    assert refused == [("body_timeout", "10.0.0.1")]
    with pytest.raises(BodyTimeout):
        b.read(1)  # stays refused


def test_a_chunked_body_is_cut_once_it_passes_the_cap():
    limits, refused = guard(max_bytes=10)
    b = body(limits, io.BytesIO(b"y" * 50), None)
    with pytest.raises(BodyTooLarge) as exc:
        b.read()
    assert exc.value.code == 413 and refused == [("body_too_large", "10.0.0.1")]


def test_shutdown_ends_a_waiting_read_at_once():
    limits, refused = guard(timeout=30)
    b = body(limits, Trickle([b"z"], 20), 1)
    reader = gevent.spawn(b.read)
    gevent.sleep(0.05)
    assert limits.stop() == 1
    reader.join(1)
    assert isinstance(reader.exception, BodyInterrupted) and reader.exception.code == 503
    with pytest.raises(BodyInterrupted):
        body(limits, io.BytesIO(b"late"), 4).read()  # after shutdown: refused at once
