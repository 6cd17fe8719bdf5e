"""Abuse of the console socket and the event stream, against the real server:
each case ends as documented, others keep being served, nothing leaks."""

import json
import socket
import time

import pytest
import websocket

from dashboard.console.client import Session
from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, Console
from tests.support.waiting import eventually


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client frame (masked, as RFC 6455 requires), possibly without FIN."""
    return websocket.ABNF(fin=int(fin), opcode=opcode, data=payload).format()


def process(server):
    return server.get("/healthz?details=1")[1]["process"]


def settle(server, before, timeout=10.0):
    """Wait until open files and greenlets are back near where they were; what they are then
    (the caller asserts on it, so a leak is named with its figures)."""
    def back():
        now = process(server)
        return now if (now["open_files"] <= before["open_files"] + 2
                       and now["greenlets"] <= before["greenlets"] + 3) else None
    try:
        return eventually(back, timeout, 0.2)
    except AssertionError:
        return process(server)


@pytest.fixture
def server(start_server):
    # Pings every 2 s: a half-open peer is closed within two of them, and a bystander that answers
    # by itself has that long to do it even on a busy machine (at 0.5 s a loaded host missed one).
    return start_server({"CONSOLE_PING_SECONDS": "2", "CONSOLE_RATE": "50", "CONSOLE_BURST": "20"})


def test_each_abuse_ends_as_documented_and_leaks_nothing(server):
    # A client that answers pings by itself, as browsers do (the CLI's session).
    bystander = Session(server.base, TOKEN, "bystander", on_push=lambda m: None)
    for _ in range(3):  # warm every path once before measuring
        Console(server.port).close()
    time.sleep(0.5)
    before = process(server)

    for _round in range(3):
        # A binary frame: an error reply, the socket stays.
        c = Console(server.port)
        c.ws.sock.sendall(frame(websocket.ABNF.OPCODE_BINARY, b"\x00\x01\x02"))
        assert c.recv()["error"]["code"] == "bad_request"
        assert c.ok("whoami")["operator"] == "cli"
        c.close()

        # Invalid UTF-8 in a text frame: 1007.
        c = Console(server.port)
        c.ws.sock.sendall(frame(websocket.ABNF.OPCODE_TEXT, b'{"id":1,"line":"\xc3\x28"}'))
        assert c.close_code() == 1007

        # A message in fragments that never ends: held up to the size limit, then 1009.
        c = Console(server.port)
        c.ws.sock.sendall(frame(websocket.ABNF.OPCODE_TEXT, b"x" * 10000, fin=False))
        for _ in range(7):
            c.ws.sock.sendall(frame(websocket.ABNF.OPCODE_CONT, b"x" * 10000, fin=False))
        assert c.close_code() == 1009

        # A frame over the limit: 1009.
        c = Console(server.port)
        c.ws.send(json.dumps({"id": 1, "line": "broadcast " + "y" * 70000}))
        assert c.close_code() == 1009

        # A thousand requests in a burst: answers up to the burst, refusals, then 1008.
        c = Console(server.port)
        c.ws.sock.sendall(b"".join(frame(websocket.ABNF.OPCODE_TEXT, json.dumps({"id": i, "line": "whoami"}).encode())
                                   for i in range(1000)))
        codes = []
        while True:
            f = c.ws.recv_frame()
            if f.opcode == websocket.ABNF.OPCODE_CLOSE:
                assert int.from_bytes(f.data[:2], "big") == 1008
                break
            codes.append(json.loads(f.data).get("error", {}).get("code", "ok"))
        assert codes.count("ok") >= 20 and "rate_limited" in codes
        c.close()

        # A half-open peer (no FIN, never a pong): closed by the ping timeout with 1008.
        c = Console(server.port)
        c.ws.sock.settimeout(15)  # two ping intervals and then some: a recv timeout here fails the test
        data = b""
        while True:
            chunk = c.ws.sock.recv(4096)  # raw reads: pings are never answered
            if not chunk:
                break
            data += chunk
        assert b"\x03\xf0Ping/Pong timeout" in data  # close frame, code 1008
        c.close()

        # An abrupt disconnect halfway through a frame.
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.sendall(b"GET /console HTTP/1.1\r\nHost: x\r\n\r\n")
        raw.close()

        assert bystander.request("status")["result"]["version"]  # everyone else is still served

    after = settle(server, before)
    assert after["open_files"] <= before["open_files"] + 2, (before, after)
    assert after["greenlets"] <= before["greenlets"] + 3, (before, after)
    assert after["rss"] - before["rss"] < 8 * 1024 * 1024, (before, after)


def _viewer_counts(server) -> tuple[float, float]:
    """(viewers catching up now, viewers dropped for their backlog so far), from /metrics."""
    lines = server.request("GET", "/metrics")[2].decode().splitlines()
    stuck = [line for line in lines if line.startswith("dashboard_viewers_catching_up{")]
    dropped = [line for line in lines
               if line.startswith("dashboard_viewers_dropped_total{") and 'reason="backlog"' in line]
    assert stuck and dropped, lines
    return tuple(sum(float(line.rsplit(" ", 1)[1]) for line in group) for group in (stuck, dropped))


def test_slow_readers_are_dropped_and_never_hold_up_the_others(start_server):
    # No wall-time bound here (a busy machine makes any one late): the proof is
    # in the order of counters. Before broadcast i some stalled viewer is stuck
    # (catching up); every reader then gets notice i while no stalled viewer has
    # been dropped yet. Had the fan-out waited on a stuck socket, notice i would
    # only come after that viewer was dropped. The write timeout is long so the
    # stalled ones can only go for their backlog.
    server = start_server({"SAMPLE_INTERVAL": "0.25", "VIEWER_BACKLOG": "24", "VIEWER_WRITE_TIMEOUT": "300",
                           "CONSOLE_RATE": "1000", "CONSOLE_BURST": "1000", "CONSOLE_LOGIN_RATE": "1000",
                           "CONSOLE_LOGIN_BURST": "1000"})
    readers = [SSEClient(server.port) for _ in range(10)]
    stalled = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                  f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
        stalled.append(s)  # never read from again
    def all_subscribed() -> bool:
        for r in readers:
            r.pump(0.01)
        return server.get("/healthz")[1]["subscribers"] >= 15
    eventually(all_subscribed, 30, 0, what="15 subscribers")
    assert server.get("/healthz")[1]["subscribers"] == 15
    op = Console(server.port)
    served_while_stuck = sent = 0
    while _viewer_counts(server)[1] < 5:
        assert sent < 1000, ("the stalled viewers were never dropped", _viewer_counts(server))
        stuck, dropped = _viewer_counts(server)
        op.ok(f"broadcast {sent} " + "z" * 900)
        for r in readers:
            assert r.wait_for(lambda c, n=sent + 1: len(c.events_of("notice")) >= n, timeout=60), sent
        if stuck >= 1 and _viewer_counts(server)[1] == dropped:
            served_while_stuck += 1
        sent += 1
    assert served_while_stuck >= 3, (served_while_stuck, sent)
    assert server.get("/healthz")[1]["subscribers"] == 10
    assert _viewer_counts(server) == (0, 5)
    # The readers got every event: the same ids, in the same order, from the
    # moment the last of them joined to the last broadcast.
    seen = []
    for r in readers:
        notices = [e.json["message"].split()[0] for e in r.events_of("notice")]
        assert notices == [str(i) for i in range(sent)]
        ids = [e.last_event_id for e in r.parser.events]
        seen.append(ids[:ids.index(r.events_of("notice")[-1].last_event_id) + 1])
        r.close()
    common = next(i for i in seen[0] if all(i in ids for ids in seen))
    tails = {tuple(ids[ids.index(common):]) for ids in seen}
    assert len(tails) == 1 and len(next(iter(tails))) > sent
    for s in stalled:
        s.close()
