import pytest

from dashboard.stream import sse
from tests.support.sseclient import Dechunker, SSEParser


def parse(raw: bytes) -> SSEParser:
    p = SSEParser()
    p.feed(raw.decode("utf-8"))
    return p


def test_frame_has_id_event_and_data_lines():
    raw = sse.frame('{"a":1}', event="metrics", id="17-0")
    assert raw == b'id: 17-0\nevent: metrics\ndata: {"a":1}\n\n'
    (ev,) = parse(raw).events
    assert (ev.type, ev.data, ev.last_event_id) == ("metrics", '{"a":1}', "17-0")


@pytest.mark.parametrize("text", ["a\nb", "a\r\nb", "a\rb", "line\n\ndata: forged\n\nid: 9"])
def test_each_data_line_gets_its_own_field_and_cannot_forge_events(text):
    raw = sse.frame(text, event="notice", id="1-0")
    p = parse(raw)
    assert len(p.events) == 1
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    assert p.events[0].data == normalized
    assert p.events[0].last_event_id == "1-0"
    assert not p.anomalies


def test_leading_space_in_data_survives():
    (ev,) = parse(sse.frame("  indented")).events
    assert ev.data == "  indented"


def test_unicode_line_separators_are_not_line_breaks():
    text = "a\u2028b\u0085c\x0bd"
    (ev,) = parse(sse.frame(text)).events
    assert ev.data == text


@pytest.mark.parametrize("bad", ["1\n2", "1\r", "a\x00b"])
def test_id_and_event_refuse_line_breaks_and_nul(bad):
    with pytest.raises(ValueError):
        sse.frame("x", id=bad)
    with pytest.raises(ValueError):
        sse.frame("x", event=bad)


def test_comment_and_retry_dispatch_nothing():
    p = parse(sse.retry(2500) + sse.comment("hello\nworld"))
    assert p.events == []
    assert p.retry == 2500
    assert p.comments == ["hello", "world"]


def test_chunk_round_trips_through_a_decoder():
    payload = sse.frame("x" * 300, id="5-1")
    d = Dechunker()
    out = b"".join(d.feed(bytes([b])) for b in sse.chunk(payload) + b"0\r\n\r\n")
    assert out == payload and d.done
