"""Console operations over real TCP against gunicorn + gevent: a console that
stops reading, CONSOLE_MAX_MESSAGE, and the `clients`, `hosts` and `drop`
commands on live connections."""

from __future__ import annotations

import json
import socket
import time

import pytest
import websocket

from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, Console

PAYLOAD = "x" * 990  # broadcasts hold at most 1,000 characters


def stalled_console(port: int) -> websocket.WebSocket:
    """A console that reads its welcome and then never reads again, with a small
    receive buffer so the server's writes back up soon."""
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{port}/console", header=[f"Authorization: Bearer {TOKEN}", "X-Operator-Name: stalled"],
        suppress_origin=True, timeout=10, sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    assert json.loads(ws.recv())["type"] == "welcome"
    return ws


def consoles_named(op: Console, name: str) -> list[list]:
    return [row for row in op.ok("clients")["rows"] if row[0] == "console" and row[5] == name]


def test_a_console_that_stops_reading_is_closed_1008_and_pushes_to_others_never_wait(start_server):
    unlimited = {name: "100000" for name in ("CONSOLE_RATE", "CONSOLE_BURST", "CONSOLE_LOGIN_RATE",
                                             "CONSOLE_LOGIN_BURST")}
    server = start_server({"CONSOLE_OUTBOX": "8", "SAMPLE_INTERVAL": "5", **unlimited})
    stalled = stalled_console(server.port)
    sender = Console(server.port, name="sender")
    reader = Console(server.port, name="reader")
    assert consoles_named(sender, "stalled")
    round_trips, sent = [], 0
    while sent < 4000 and (sent % 20 or "is not reading; closing it" not in server.log()):
        start = time.monotonic()
        sender.ok(f"broadcast {sent} {PAYLOAD}")
        round_trips.append(time.monotonic() - start)
        sent += 1
    assert "is not reading; closing it" in server.log(), f"not closed after {sent} pushes of 1 KB"
    # It reads again: the pushes that fitted in the socket, then the close frame.
    stalled.settimeout(10)
    close, got = None, []
    while close is None:
        frame = stalled.recv_frame()
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            close = int.from_bytes(frame.data[:2], "big")
            reason = frame.data[2:].decode()
        elif (msg := json.loads(frame.data)).get("type") == "notice":
            got.append(int(msg["message"].split(" ", 1)[0]))
    assert (close, reason) == (1008, "not reading its messages")
    # Whole frames in order; what was queued behind the full socket was dropped, not delivered late.
    assert got == list(range(len(got))) and len(got) < sent
    # The sender's replies never waited for the stalled socket (its write timeout is 10 s).
    assert max(round_trips) < 2.0, sorted(round_trips)[-5:]
    # Everyone else got every push, in order.
    notices = []
    reader.ws.settimeout(10)
    for msg in reader.pushes:
        if msg.get("type") == "notice":
            notices.append(int(msg["message"].split(" ", 1)[0]))
    while len(notices) < sent:
        msg = reader.recv()
        if msg.get("type") == "notice":
            notices.append(int(msg["message"].split(" ", 1)[0]))
    assert notices == list(range(sent))
    assert not consoles_named(sender, "stalled")
    print(f"stalled console closed after {sent} pushes; {len(got)} reached it; slowest reply "
          f"{max(round_trips) * 1000:.1f} ms")


def test_clients_lists_streams_and_consoles_and_drop_closes_them(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.25", "HEARTBEAT_SECONDS": "0.5"})
    op = Console(server.port, name="ops")
    other = Console(server.port, name="bob")
    with SSEClient(server.port, path="/events?client=tab-a") as a, \
            SSEClient(server.port, path="/events?client=tab-b") as b, SSEClient(server.port) as anonymous:
        for c in (a, b, anonymous):
            c.read_events(2)
        table = op.ok("clients")
        assert table["columns"] == ["kind", "name", "addr", "since", "messages", "host / operator"]
        rows = {(r[0], r[1]): r for r in table["rows"]}
        assert {k for k in rows if k[0] == "sse"} == {("sse", "tab-a"), ("sse", "tab-b"), ("sse", "-")}
        assert [r[5] for r in table["rows"] if r[0] == "console"] == ["ops", "bob"]
        for row in table["rows"]:
            assert row[2] == "127.0.0.1" and abs(row[3] - time.time()) < 60
        assert rows[("sse", "tab-a")][4] >= 2 and rows[("sse", "tab-a")][5] == op.welcome["server"]
        assert rows[("console", other.welcome["connection"])][4] == 0  # bob sent no command yet

        # One stream by name: it ends with its final chunk, the others carry on.
        assert op.ok("drop sse tab-a") == {"dropped": 1, "kind": "sse"}
        assert a.wait_for(lambda c: c.ended, timeout=5) and a.ended
        assert not a.parser.anomalies
        n = len(b.events_of("metrics"))
        b.read_events(n + 2)
        assert op.error("drop sse tab-a")["code"] == "not_found"
        # It comes back with Last-Event-ID: no gap.
        last = a.events_of("metrics")[-1]
        with SSEClient(server.port, path="/events?client=tab-a",
                       headers={"Last-Event-ID": last.last_event_id}) as again:
            resumed = again.read_events(2)
            assert resumed[0].json["seq"] == last.json["seq"] + 1 and not again.events_of("resync")
            # Every stream at once.
            assert op.ok("drop sse all") == {"dropped": 3, "kind": "sse"}
            for c in (b, anonymous, again):
                assert c.wait_for(lambda c: c.ended, timeout=5), c
    # None left: "all" of nothing is done already, and says so.
    assert op.ok("drop sse all") == {"dropped": 0, "kind": "sse", "note": "no event stream is open"}
    assert op.error("drop sse tab-a")["code"] == "not_found"  # a name that is not open

    # One console by name: 1012 (come back), the others stay.
    assert op.ok(f"drop console {other.welcome['connection']}") == {"dropped": 1, "kind": "console"}
    assert other.close_code() == 1012 and other.close_reason == "dropped by an operator"
    assert op.error("drop console c99999")["code"] == "not_found"
    third = Console(server.port, name="carol")
    # All consoles, the one asking included: the reply first, then 1012 for each.
    assert op.ok("drop console all") == {"dropped": 2, "kind": "console"}
    assert [op.close_code(), third.close_code()] == [1012, 1012]
    last = Console(server.port)
    assert [r for r in last.ok("clients")["rows"] if r[0] == "console"] == [
        ["console", last.welcome["connection"], "127.0.0.1", pytest.approx(time.time(), abs=60), 1, "cli"]]


def test_hosts_lists_this_host_without_redis(start_server):
    server = start_server({"HOST_NAME": "box-1"})
    table = Console(server.port).ok("hosts")
    assert table["columns"] == ["host", "role", "ts", "stale", "this"]
    [(name, role, ts, stale, this)] = table["rows"]
    assert (name, role, stale, this) == ("box-1", "web", False, True)
    assert abs(ts - time.time()) < 10


def test_console_max_message_is_the_limit_that_closes_with_1009(start_server):
    server = start_server({"CONSOLE_MAX_MESSAGE": "2048"})
    fits = Console(server.port)
    line = "broadcast " + "y" * 900
    assert len(json.dumps({"id": 1, "line": line})) < 2048
    assert fits.ok(line)["sent"]
    assert fits.welcome["limits"]["max_message"] == 2048
    big = Console(server.port)
    big.ws.send(json.dumps({"id": 1, "line": "status", "pad": "z" * 2100}))  # over 2,048 bytes
    assert big.close_code() == 1009
    assert fits.ok("status")["consoles"] == 1
