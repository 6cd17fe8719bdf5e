"""The console's limits over real TCP against gunicorn + gevent: a console that
stops reading, CONSOLE_MAX_MESSAGE, and the `clients`, `hosts` and `drop`
commands on live connections."""

from __future__ import annotations

import json
import socket
import time

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
    server = start_server({"CONSOLE_OUTBOX": "8", "CONSOLE_RATE": "100000", "CONSOLE_BURST": "100000",
                           "SAMPLE_INTERVAL": "5"})
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
