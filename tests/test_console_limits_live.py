"""Console budgets per login against the real server: sockets per login, a rate
limit that survives reconnects, malformed handshakes, and the CLI's patience."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import websocket

from dashboard.console.commands.inspecting import PROC_COST
from tests.support.sseclient import SSEClient
from tests.support.wsclient import OBSERVER, TOKEN, Console, login_cookie
from tests.support.waiting import eventually


def raw_handshake(port: int, headers: str) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((f"GET /console HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {TOKEN}\r\n{headers}\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            piece = s.recv(4096)
            if not piece:
                break
            data += piece
        try:
            s.settimeout(1)
            data += s.recv(4096)
        except OSError:
            pass
    top, _, body = data.partition(b"\r\n\r\n")
    return int(top.split()[1]), body.decode("latin-1")


def test_consoles_per_login_are_capped_with_429_and_retry_after(start_server):
    server = start_server({"MAX_CONSOLES_PER_LOGIN": "3"})
    mine = [Console(server.port) for _ in range(3)]
    try:
        Console(server.port)
        raise AssertionError("a fourth console of the same login was accepted")
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 429
        assert exc.resp_headers["retry-after"] == "5"
        assert json.loads(exc.resp_body)["error"]["code"] == "too_many_consoles"
    # Another login (the observer token; a cookie session) is not affected.
    Console(server.port, token=OBSERVER).close()
    cookie = login_cookie(server.base, name="alice")
    Console(server.port, token=None, cookie=cookie, origin=server.base).close()
    mine[0].close()
    def a_console_opens() -> bool:  # the slot comes back once the server saw the close
        Console(server.port).close()
        return True

    eventually(a_console_opens, ignoring=(websocket.WebSocketBadStatusException,), what="the slot comes back")
    for c in mine[1:]:
        c.close()
    status, _, body = server.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert re.search(rb'^dashboard_refused_total\{reason="consoles"\} [1-9]', body, re.M)


def test_the_login_rate_limit_survives_reconnects(start_server):
    # Per socket generous, per login tight: reconnecting must not refill it.
    server = start_server({"CONSOLE_RATE": "1000", "CONSOLE_BURST": "1000",
                           "CONSOLE_LOGIN_RATE": "1", "CONSOLE_LOGIN_BURST": "10"})
    first = Console(server.port)
    assert [first.request("whoami")["ok"] for _ in range(10)] == [True] * 10
    assert first.error("whoami")["code"] == "rate_limited"
    first.close()
    again = Console(server.port)
    err = again.error("whoami")
    assert err["code"] == "rate_limited" and "this login" in err["message"] and err["retry_after"] > 0
    # A second socket of the same login shares the bucket too; another login does not.
    other_socket = Console(server.port)
    assert other_socket.error("whoami")["code"] == "rate_limited"
    assert Console(server.port, token=OBSERVER).ok("whoami")["role"] == "observer"
    # Flooding on: more than a burst of refusals within 10 s closes with 1008.
    for i in range(30):
        again.send_line("whoami")
    assert again.close_code() == 1008
    for c in (again, other_socket):
        c.close()


def test_a_malformed_handshake_gets_400_and_no_traceback(start_server):
    server = start_server()
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n"
    cases = {
        "no key": upgrade + "Sec-WebSocket-Version: 13\r\n",
        "short key": upgrade + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n",
        "not base64": upgrade + "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\nSec-WebSocket-Version: 13\r\n",
        "bad version": upgrade + f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 8\r\n",
        "no version": upgrade + f"Sec-WebSocket-Key: {key}\r\n",
        "no Connection: Upgrade": f"Upgrade: websocket\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
    }
    for name, headers in cases.items():
        status, body = raw_handshake(server.port, headers)
        assert status == 400, name
        assert json.loads(body)["error"]["code"] in ("bad_handshake", "bad_request"), (name, body)
    assert Console(server.port).ok("whoami")["operator"] == "cli"
    # (the start_server fixture fails the test if the log holds a traceback)


def test_the_cli_gives_up_with_exit_2_when_no_welcome_comes():
    # A TCP server that accepts, answers the upgrade, then never says a word.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held = []

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            request = b""
            while b"\r\n\r\n" not in request:
                piece = conn.recv(4096)
                if not piece:
                    break
                request += piece
            match = re.search(rb"Sec-WebSocket-Key: (\S+)", request, re.I)
            if match:
                import hashlib

                accept = base64.b64encode(hashlib.sha1(
                    match.group(1) + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dashboard.console", f"http://127.0.0.1:{port}",
                           "-c", "status"], capture_output=True, text=True, timeout=60,
                          env={"OPERATOR_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    took = time.monotonic() - started
    listener.close()
    for conn in held:
        conn.close()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "no welcome" in done.stderr  # it gave up by itself (a hang would end in our timeout of 60 s)
    # It waited its 10 s first (counted after its start-up, so more here); the upper bound is only
    # "well before our timeout": a busy machine may be slow to start Python, never 30 s slow.
    assert 9 < took < 40, took


def test_the_cli_gives_up_when_the_server_accepts_and_never_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "dashboard.console", f"http://127.0.0.1:{port}",
                           "-c", "status"], capture_output=True, text=True, timeout=60,
                          env={"OPERATOR_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    took = time.monotonic() - started
    listener.close()
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "no welcome" in done.stderr  # it gave up by itself (a hang would end in our timeout of 60 s)
    assert 9 < took < 40, took  # as above: the 10 s wait, then well before our timeout


def test_console_sockets_count_against_the_address_budget(start_server):
    server = start_server({"MAX_CONNECTIONS_PER_CLIENT": "3"})
    held = [Console(server.port, token=OBSERVER), Console(server.port)]
    viewer = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    viewer.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                   f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
    assert viewer.recv(100).startswith(b"HTTP/1.1 200")
    try:
        Console(server.port)
        raise AssertionError("a fourth connection of one address was accepted")
    except websocket.WebSocketBadStatusException as exc:
        assert exc.status_code == 429
        assert json.loads(exc.resp_body)["error"]["code"] == "too_many_connections"
    viewer.close()
    for c in held:
        c.close()


def _served_in_a_burst(console: Console, line: str, n: int) -> list[bool]:
    """Send n requests without waiting, then read their n replies: which were served."""
    ids = [console.send_line(line) for _ in range(n)]
    replies = [console.reply_to(rid) for rid in ids]
    for reply in replies:
        assert reply["ok"] or reply["error"]["code"] == "rate_limited", reply
    return [reply["ok"] for reply in replies]


def test_a_proc_flood_from_one_login_is_held_to_its_budget_while_a_viewer_and_health_carry_on(start_server):
    # One login floods proc over four sockets, retrying every refusal at once and reconnecting
    # after every close; a viewer streams and /healthz is asked alongside. What is proven is
    # counted, not timed: proc is answered no more often than the login's budget allows
    # (CONSOLE_LOGIN_BURST 100 and CONSOLE_LOGIN_RATE 50 a second, PROC_COST each), every
    # /healthz is answered 200, and the viewer gets every sample the server took, in order.
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stop = threading.Event()
    served, refused = [0], [0]

    def flood() -> None:
        console = None
        while not stop.is_set():
            try:
                console = console or Console(server.port, token=OBSERVER)
                reply = console.request(f"proc {os.getpid()}")
                if reply["ok"]:
                    served[0] += 1
                else:
                    assert reply["error"]["code"] == "rate_limited", reply
                    refused[0] += 1
            except AssertionError:
                raise
            except Exception:  # closed for flooding, or a fifth socket refused: again at once
                if console is not None:
                    console.close()
                console = None
        if console is not None:
            console.close()

    with SSEClient(server.port, headers=auth) as viewer:
        viewer.read_events(1)
        pump = threading.Thread(target=lambda: [viewer.pump(0.2) for _ in iter(stop.is_set, True)])
        pump.start()
        started = time.monotonic()
        floods = [threading.Thread(target=flood) for _ in range(4)]
        for t in floods:
            t.start()
        health = []
        while len(health) < 40:
            health.append(server.get("/healthz")[0])
            time.sleep(0.1)
        stop.set()
        for t in floods + [pump]:
            t.join(30)
        took = time.monotonic() - started  # at least the server's own time for the flood
    print(f"\nproc: {served[0]} answered, {refused[0]} refused over {took:.1f} s")
    assert served[0] <= (100 + 50 * took) / PROC_COST + 1, (served[0], took)
    assert refused[0] > served[0]
    assert set(health) == {200}
    seqs = [e.json["seq"] for e in viewer.events_of("metrics")]
    assert len(seqs) >= 4 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every sample, in order


def test_a_burst_of_proc_is_refused_far_sooner_than_a_burst_of_ping(start_server):
    # The default limits: 20 requests a second per connection in bursts of 40.
    server = start_server()
    pings = Console(server.port)  # the operator's login
    procs = Console(server.port, token=OBSERVER)  # another login, so the buckets are apart
    try:
        assert all(_served_in_a_burst(pings, "ping", 40))
        served = _served_in_a_burst(procs, f"proc {os.getpid()}", 40)
        # Each proc takes PROC_COST (15) of the burst of 40: two go through (more on a slow
        # machine, where the bucket refills while each runs), then rate_limited.
        assert 2 <= sum(served) < 20, served
        err = procs.error(f"proc {os.getpid()}")
        assert err["code"] == "rate_limited" and f"counts as {PROC_COST}" in err["message"]
        assert "pong" in procs.ok("ping")  # a ping still fits in what is left
    finally:
        pings.close()
        procs.close()
