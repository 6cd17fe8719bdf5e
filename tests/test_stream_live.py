"""/events served by gunicorn + gevent, read by a raw socket client."""

import re
import signal
import time

import pytest

from dashboard.stream.events import parse_id
from tests.support.leaving import assert_left_by_themselves
from tests.support.sseclient import SSEClient
from tests.support.waiting import eventually

FAST = {"SAMPLE_INTERVAL": "0.25", "HEARTBEAT_SECONDS": "0.5"}


def test_headers_first_byte_and_no_compression(start_server):
    server = start_server({"SAMPLE_INTERVAL": "60"})
    with SSEClient(server.port, headers={"Accept-Encoding": "gzip, br"}) as c:
        assert c.status == 200
        assert c.headers["content-type"].startswith("text/event-stream")
        assert c.headers["cache-control"] == "no-cache, no-transform"
        assert c.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in c.headers
        c.wait_for(lambda c: c.parser.comments, timeout=2)
        assert c.first_byte_at - c.started < 1.0  # not waiting for the next sample
        assert c.parser.retry == 2000
        assert c.parser.comments[0] == "connected"


def test_ids_strictly_increase_and_seq_steps_by_one(start_server):
    server = start_server(FAST)
    with SSEClient(server.port) as c:
        events = c.read_events(8)
    keys = [parse_id(e.last_event_id) for e in events]
    assert None not in keys and keys == sorted(keys) and len(set(keys)) == len(keys)
    seqs = [e.json["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    sample = events[-1].json
    for key in ("ts", "cpu", "memory", "swap", "load", "disks", "net", "processes", "uptime"):
        assert key in sample, key
    # Epoch seconds to the millisecond; a whole second goes on the wire as an integer.
    assert isinstance(sample["ts"], (int, float)) and abs(sample["ts"] - time.time()) < 60
    assert not c.parser.anomalies


def test_heartbeat_comments_keep_an_idle_stream_alive(start_server):
    server = start_server({"SAMPLE_INTERVAL": "60", "HEARTBEAT_SECONDS": "0.3"})
    with SSEClient(server.port) as c:
        assert c.wait_for(lambda c: c.parser.comments.count("heartbeat") >= 3, timeout=3)
        assert c.events_of("metrics") == []  # nothing but heartbeats in that time


def test_last_event_id_resumes_without_gap_or_duplicate(start_server):
    server = start_server(FAST)
    with SSEClient(server.port) as c:
        seen = c.read_events(3)
    last = seen[-1]
    time.sleep(1.2)  # several samples go by while disconnected
    with SSEClient(server.port, headers={"Last-Event-ID": last.last_event_id}) as c:
        resumed = c.read_events(6)
    assert not c.events_of("resync")
    seqs = [e.json["seq"] for e in resumed]
    assert seqs[0] == last.json["seq"] + 1
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert parse_id(resumed[0].last_event_id) > parse_id(last.last_event_id)


@pytest.mark.parametrize("last, reason", [("1-0", "stale"), ("not-an-id", "invalid")])
def test_unusable_last_event_id_gets_resync_then_live(start_server, last, reason):
    server = start_server(FAST)
    with SSEClient(server.port, headers={"Last-Event-ID": last}) as c:
        c.read_events(2)
    first = c.parser.events[0]
    assert first.type == "resync" and first.json["reason"] == reason
    assert [e.type for e in c.parser.events[1:]] == ["metrics"] * (len(c.parser.events) - 1)


def _chunks_by_id(wire: bytes) -> dict[str, bytes]:
    """Each event's HTTP chunk as it came off the socket (size line, frame, CRLF), by event id."""
    out, rest = {}, wire
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0 or len(rest) < size + 2:
            break  # the end of the stream, or a chunk still on its way when we stopped reading
        chunk, rest = size_line + b"\r\n" + rest[:size + 2], rest[size + 2:]
        ids = re.findall(rb"^id: (.*)$", chunk, re.M)
        if ids:
            out[ids[0].decode()] = chunk
    return out


def test_every_viewer_receives_identical_bytes(start_server):
    server = start_server(FAST)
    with SSEClient(server.port) as a, SSEClient(server.port) as b:
        a.read_events(4), b.read_events(4)
        a.pump(0.2), b.pump(0.2)
    ca, cb = _chunks_by_id(a.wire), _chunks_by_id(b.wire)
    common = sorted(set(ca) & set(cb))
    assert len(common) >= 3
    for ev_id in common:
        assert ca[ev_id] == cb[ev_id]  # the same bytes on the wire, chunk header included
        assert ca[ev_id].count(b"\r\n") >= 2 and b"event: metrics" in ca[ev_id]


def test_http10_clients_get_an_unchunked_stream(start_server):
    server = start_server(FAST)
    with SSEClient(server.port, http10=True) as c:
        assert "transfer-encoding" not in c.headers
        events = c.read_events(3)
    assert not c.parser.anomalies and events[-1].json["seq"] > 0


def test_a_closed_client_is_cleaned_up_within_two_heartbeats(start_server):
    server = start_server({"SAMPLE_INTERVAL": "60", "HEARTBEAT_SECONDS": "0.5"})
    clients = [SSEClient(server.port) for _ in range(20)]
    for c in clients:
        c.wait_for(lambda c: c.parser.comments, timeout=2)
    assert server.get("/healthz")[1]["subscribers"] == 20
    for c in clients:
        c.close()
    # Noticed at the second write after the close: within about two heartbeats (1 s), longer on a busy host.
    eventually(lambda: server.get("/healthz")[1]["subscribers"] == 0, what="closed streams are let go")


def test_a_thousand_connect_disconnect_cycles_leak_nothing(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.25", "HEARTBEAT_SECONDS": "0.5"})
    time.sleep(1)

    def process():
        return server.get("/healthz?details=1")[1]["process"]

    for _ in range(50):  # warm up allocator and caches
        SSEClient(server.port).close()
    time.sleep(1)
    before = process()
    for i in range(1000):
        c = SSEClient(server.port)
        if i % 2:
            c.wait_for(lambda c: c.parser.comments, timeout=2)
        c.close()
    time.sleep(1.5)
    after = process()
    assert server.get("/healthz")[1]["subscribers"] == 0
    assert after["open_files"] <= before["open_files"] + 2, (before, after)
    assert after["greenlets"] <= before["greenlets"] + 2, (before, after)
    assert after["rss"] - before["rss"] < 8 * 1024 * 1024, (before, after)


def test_open_streams_are_owned_by_the_hub_with_no_greenlet_each(start_server):
    from tests.support.crowd import Crowd

    server = start_server({"SAMPLE_INTERVAL": "0.5", "MAX_CONNECTIONS_PER_CLIENT": "1000"})
    time.sleep(1)
    before = server.get("/healthz?details=1")[1]["process"]
    crowd = Crowd(server.port, 500).start()
    try:
        assert crowd.wait(lambda: all(len(v.seqs) >= 2 for v in crowd.viewers), timeout=30)
        health = server.get("/healthz?details=1")[1]
        after = health["process"]
        assert health["subscribers"] == 500
        # Caught up, each viewer is a socket the hub writes to, not a parked request.
        assert after["greenlets"] <= before["greenlets"] + 10, (before, after)
        assert after["open_files"] >= before["open_files"] + 500  # one descriptor each, still open
    finally:
        crowd.stop()


def test_sigterm_ends_streams_cleanly_and_exits_fast(start_server):
    server = start_server(FAST)
    clients = [SSEClient(server.port) for _ in range(5)]
    for c in clients:
        c.read_events(1)
    worker = server.worker().pid
    # Time enough for the failure mode (held to the 25 s graceful timeout, then killed) to show in the log.
    elapsed = server.stop(signal.SIGTERM, timeout=60)
    assert server.proc.returncode == 0
    # "Fast" is what the server says: the worker closed its streams and left by itself, not at the timeout.
    assert_left_by_themselves(server, [worker])
    # About 2 s here; far below the graceful timeout (25 s) however busy the machine.
    assert elapsed < 15, f"took {elapsed:.1f}s"
    for c in clients:
        c.wait_for(lambda c: c.ended, timeout=2)
        assert c.ended and c.dechunker.done  # the final chunk, not a cut connection
        assert not c.parser.anomalies
        c.close()
    assert "closed 5 event streams" in server.log()


def test_web_concurrency_above_one_without_a_store_runs_one_worker(start_server):
    server = start_server({"WEB_CONCURRENCY": "3"})
    assert len(server.workers()) == 1
    assert "WEB_CONCURRENCY=3 ignored" in server.log()
