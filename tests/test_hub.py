"""The hub on real (gevent) socket pairs: fan-out, slow readers, resume, cleanup."""

import socket as stdsocket
import time

import gevent
import gevent.socket
import pytest

from dashboard.stream import events as events_mod
from dashboard.stream import hub as hub_mod
from dashboard.stream import sse
from dashboard.stream.events import Notice, format_id
from dashboard.stream.hub import Hub
from tests.support.sseclient import Dechunker, SSEParser


class Peer:
    """The client end of a viewer's socket."""

    def __init__(self, sock, chunked=True):
        self.sock = sock
        self.dechunk = Dechunker() if chunked else None
        self.parser = SSEParser()
        self.raw = b""

    def read(self, seconds=0.2):
        # time.monotonic, not the gevent loop's clock: that one is cached at the loop's last turn.
        self.sock.settimeout(0.02)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(1 << 20)
            except stdsocket.timeout:
                continue
            if not data:
                break
            self.raw += data
            body = self.dechunk.feed(data) if self.dechunk else data
            self.parser.feed(body.decode())
        return self.parser.events

    def ids(self):
        return [e.last_event_id for e in self.parser.events]


class Life:
    """A viewer's life in the hub: over once its stream ended and its socket closed."""

    def __init__(self, sub):
        self.sub = sub

    @property
    def dead(self):
        return self.sub.ended and self.sub.writer is None and self.sub.sock.fileno() == -1

    def join(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.dead and time.monotonic() < deadline:
            gevent.sleep(0.01)


def open_viewer(hub, last=None, chunked=True):
    a, b = gevent.socket.socketpair()
    sub, preamble = hub.open(last, sock=a, chunked=chunked, addr="test")
    # The stream writes its preamble (framed) before the hub takes over.
    a.sendall(sse.chunk(preamble) if chunked else preamble)
    hub.attach(sub)
    gevent.sleep(0.01)
    return sub, Peer(b, chunked), Life(sub)


def publish(hub, n, start=0):
    return [hub.publish(Notice(message=f"m{i}")) for i in range(start, start + n)]


def test_every_viewer_gets_the_same_bytes_encoded_once(monkeypatch):
    hub = Hub()
    viewers = [open_viewer(hub) for _ in range(20)]
    assert len(hub.sockets.caught_up) == 20  # all caught up: parked, written to directly

    calls = {"json": 0, "frame": 0}
    real_json, real_frame = events_mod.to_json, sse.frame

    def counting_json(*a, **k):
        calls["json"] += 1
        return real_json(*a, **k)

    def counting_frame(*a, **k):
        calls["frame"] += 1
        return real_frame(*a, **k)

    monkeypatch.setattr(hub_mod, "to_json", counting_json)
    monkeypatch.setattr(sse, "frame", counting_frame)
    frame = hub.publish(Notice(message="hello"))
    assert calls == {"json": 1, "frame": 1}

    for sub, peer, _ in viewers:
        (ev,) = peer.read(0.1)
        assert ev.type == "notice" and ev.json["message"] == "hello"
        assert ev.last_event_id == frame.id
        assert peer.raw.endswith(frame.wire)
        assert sub.events == 1
    hub.close_all("done")


def test_ids_strictly_increase_even_when_the_clock_stands_still():
    clock = events_mod.IdClock(time_fn=lambda: 1000.0)
    hub = Hub(clock=clock)
    frames = publish(hub, 5)
    keys = [f.key for f in frames]
    assert keys == sorted(keys) and len(set(keys)) == 5
    assert [f.id for f in frames][:2] == ["1000000-1", "1000000-2"]


def test_http10_viewers_get_the_frame_without_chunk_framing():
    hub = Hub()
    sub, peer, g = open_viewer(hub, chunked=False)
    frame = hub.publish(Notice(message="plain"))
    peer.read(0.1)
    assert peer.raw.endswith(bytes(frame.body))
    assert b"\r\n" not in peer.raw
    hub.close_all("done")


def test_resume_sends_exactly_the_missed_events_in_order():
    hub = Hub()
    frames = publish(hub, 10)
    sub, peer, g = open_viewer(hub, last=frames[3].id)
    later = publish(hub, 2, start=10)
    peer.read(0.2)
    assert peer.ids() == [f.id for f in frames[4:] + later]
    assert not [e for e in peer.parser.events if e.type == "resync"]
    hub.close_all("done")


def test_resume_from_the_head_sends_nothing_old():
    hub = Hub()
    frames = publish(hub, 3)
    sub, peer, g = open_viewer(hub, last=frames[-1].id)
    assert peer.read(0.05) == []
    hub.close_all("done")


@pytest.mark.parametrize(
    "last, reason",
    [("garbage", "invalid"), ("", "invalid"), ("1-0", "stale"), ("99999999999999-0", "unknown")],
)
def test_unusable_last_event_id_gets_one_resync_then_live(last, reason):
    hub = Hub(max_events=5)
    frames = publish(hub, 8)  # the first three were evicted
    sub, peer, g = open_viewer(hub, last=last)
    live = hub.publish(Notice(message="live"))
    evs = peer.read(0.1)
    assert [e.type for e in evs] == ["resync", "notice"]
    assert evs[0].json["reason"] == reason
    assert evs[0].json["oldest"] == frames[3].id and evs[0].json["latest"] == frames[-1].id
    assert evs[0].last_event_id == frames[-1].id  # ids on the wire still only grow
    assert evs[1].last_event_id == live.id
    hub.close_all("done")


def test_evicted_events_make_a_resume_stale_but_the_floor_itself_resumes():
    hub = Hub(max_events=5)
    frames = publish(hub, 10)
    assert len(hub) == 5 and hub.floor == frames[4].key
    sub, peer, g = open_viewer(hub, last=frames[4].id)  # everything after it is kept
    peer.read(0.1)
    assert peer.ids() == [f.id for f in frames[5:]]
    hub.close_all("done")
    sub2, peer2, g2 = open_viewer(hub, last=frames[3].id)  # frames[4] is gone
    assert peer2.read(0.1)[0].json["reason"] == "stale"
    hub.close_all("done")


def test_events_older_than_the_history_window_are_evicted():
    now = [1000.0]
    hub = Hub(history_seconds=10, clock=events_mod.IdClock(lambda: now[0]), wall=lambda: now[0])
    publish(hub, 3)
    now[0] += 11
    last = publish(hub, 1, start=3)[0]
    assert hub.frames() == [last]


def test_a_slow_reader_is_dropped_without_delaying_others_or_growing_memory():
    hub = Hub(backlog=8, write_timeout=5)
    slow_sub, slow_peer, slow_g = open_viewer(hub)
    slow_sub.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    slow_peer.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    fast_sub, fast_peer, fast_g = open_viewer(hub)
    big = "x" * 20000
    sent = []
    for i in range(30):
        sent.append(hub.publish(Notice(message=f"{i} {big}")))
        fast_peer.read(0.01)  # the fast viewer keeps reading; the slow one never does
        gevent.sleep(0)
    fast_peer.read(0.2)
    assert fast_peer.ids() == [f.id for f in sent]
    assert slow_sub.closed and "behind" in slow_sub.reason
    assert slow_g.dead
    assert slow_sub not in hub.subscribers
    assert hub.stats.dropped_slow == 1
    # What the slow viewer held while stalled was a view into a shared frame.
    assert slow_sub.pending is None or isinstance(slow_sub.pending, memoryview)
    hub.close_all("done")


def test_a_stalled_write_is_dropped_after_the_write_timeout():
    hub = Hub(backlog=1000, write_timeout=0.3)
    sub, peer, g = open_viewer(hub)
    sub.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 4096)
    peer.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
    hub.publish(Notice(message="y" * 500_000))
    g.join(timeout=2)
    assert g.dead and "blocked" in sub.reason
    assert sub not in hub.subscribers


def test_a_viewer_that_disconnects_is_forgotten_at_once():
    hub = Hub()
    sub, peer, g = open_viewer(hub)
    assert sub in hub.sockets.caught_up
    peer.sock.close()
    g.join(timeout=1)
    assert g.dead
    assert not hub.subscribers and not hub.sockets.caught_up
    assert sub.watcher is None


def test_heartbeat_reaches_fast_viewers_without_moving_their_cursor():
    hub = Hub()
    sub, peer, g = open_viewer(hub)
    before = sub.cursor
    hub.heartbeat()
    peer.read(0.05)
    assert peer.parser.comments[-1] == "heartbeat"
    assert sub.cursor == before and sub.events == 0
    hub.close_all("done")


def test_close_all_ends_every_stream():
    hub = Hub()
    viewers = [open_viewer(hub) for _ in range(5)]
    assert hub.close_all("shutdown") == 5
    for _, _, g in viewers:
        g.join(timeout=1)
    assert all(g.dead for _, _, g in viewers)
    assert not hub.subscribers


def test_wsgi_iterator_path_follows_the_same_buffer():
    hub = Hub(heartbeat=0.05)
    frames = publish(hub, 3)
    sub, preamble = hub.open(frames[0].id)
    it = hub.iter_frames(sub)
    assert next(it) == bytes(frames[1].body)
    assert next(it) == bytes(frames[2].body)
    assert next(it) == sse.comment("heartbeat")  # nothing new within the heartbeat
    gevent.spawn_later(0.01, hub.publish, Notice(message="late"))
    late = next(it)
    assert b'"late"' in late
    hub.close(sub, "done")
    with pytest.raises(StopIteration):
        next(it)
    assert not hub.subscribers


def test_publish_with_an_external_id_must_move_forward():
    hub = Hub()
    hub.publish_raw("metrics", "{}", key=(10**13, 5))
    with pytest.raises(ValueError):
        hub.publish_raw("metrics", "{}", key=(10**13, 5))
    assert hub.head.id == format_id((10**13, 5))
    assert hub.clock.next() > (10**13, 5)  # local ids continue above it


def test_caught_up_viewers_are_sockets_in_the_hub_with_no_greenlet_each():
    hub = Hub()
    viewers = [open_viewer(hub) for _ in range(20)]
    assert all(sub.owned and sub.writer is None and sub in hub.sockets.caught_up for sub, _, _ in viewers)
    frame = hub.publish(Notice(message="to all"))
    for sub, peer, _ in viewers:
        assert [e.last_event_id for e in peer.read(0.05)][-1] == frame.id
        assert sub.writer is None  # publish wrote it; no greenlet woke
    hub.close_all("done")


def test_a_resuming_viewer_gets_a_writer_only_until_it_is_caught_up():
    hub = Hub()
    frames = publish(hub, 6)
    a, b = gevent.socket.socketpair()
    sub, preamble = hub.open(frames[1].id, sock=a, chunked=True, addr="test")
    a.sendall(sse.chunk(preamble))
    hub.attach(sub)
    assert sub.writer is not None  # four frames to catch up on
    peer = Peer(b)
    assert [e.last_event_id for e in peer.read(0.1)] == [f.id for f in frames[2:]]
    assert sub.writer is None and sub in hub.sockets.caught_up
    later = hub.publish(Notice(message="live"))
    assert peer.read(0.05)[-1].last_event_id == later.id
    hub.close_all("done")


def test_an_owned_stream_ends_with_the_last_chunk_then_eof_and_says_so_once():
    hub = Hub()
    sub, peer, life = open_viewer(hub)
    ended = []
    sub.on_end = lambda s: ended.append(s.reason)
    hub.publish(Notice(message="one"))
    hub.close_all("server shutting down")
    peer.read(0.1)
    assert peer.raw.endswith(b"\r\n0\r\n\r\n")  # the chunked body ends cleanly
    assert peer.sock.recv(10) == b""  # and the connection is closed
    assert life.dead and ended == ["server shutting down"]
    hub.close(sub, "again")  # idempotent: no second end
    assert ended == ["server shutting down"]


def test_a_stream_whose_head_could_not_be_written_ends_at_once_through_the_hub():
    hub = Hub()
    a, b = gevent.socket.socketpair()
    sub, _ = hub.open(None, sock=a, chunked=True, addr="test")
    ended = []
    sub.on_end = lambda s: ended.append(s.reason)
    hub.abort(sub, "write failed: Broken pipe")
    assert ended == ["write failed: Broken pipe"]
    assert sub.ended and a.fileno() == -1 and not hub.subscribers
    assert b.recv(10) == b""  # closed without a final chunk: the head never went out
    hub.abort(sub, "again")
    assert ended == ["write failed: Broken pipe"]


def test_socket_streams_need_only_a_batch_source_and_a_release():
    from dashboard.stream.frame import Frame
    from dashboard.stream.sockets import HubStats, SocketStreams
    from dashboard.stream.subscriber import Subscriber

    frames = [Frame(n, (1000, n), "notice", f'"m{n}"') for n in (1, 2, 3)]
    released = []

    def next_batch(sub):
        return frames[sub.cursor:]

    streams = SocketStreams(next_batch=next_batch, release=released.append, stats=HubStats(),
                            write_timeout=5)
    a, b = gevent.socket.socketpair()
    sub = Subscriber(a, True, "test", None)
    streams.attach(sub)
    assert sub in streams.catching_up or sub.writer is not None
    peer = Peer(b)
    assert peer.read(0.1) and peer.ids() == ["1000-1", "1000-2", "1000-3"]
    assert sub in streams.caught_up and sub not in streams.catching_up and sub.writer is None
    live = Frame(4, (1000, 4), "notice", '"m4"')
    streams.fan_out(live.n, live.wire, live.body_at)
    assert peer.read(0.05)[-1].last_event_id == "1000-4" and sub.cursor == 4
    streams.close(sub, "done")
    assert released == [sub] and sub.reason == "done" and sub not in streams.caught_up
    peer.read(0.05)
    assert peer.raw.endswith(b"\r\n0\r\n\r\n") and sub.sock.fileno() == -1
