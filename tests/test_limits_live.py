"""Hostile HTTP clients against the real server: slow and oversized bodies, one
address holding its connection budget, and SIGTERM with slow bodies open."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time


from tests.conftest import TOKEN
from tests.support.leaving import assert_left_by_themselves
from tests.support.sseclient import SSEClient
from tests.support.waiting import eventually

AUTH = f"Authorization: Bearer {TOKEN}\r\n"


def connect(port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def head(port: int, path: str, length: int | None = None, chunked: bool = False, source="127.0.0.1",
         method: str = "POST", extra: str = "") -> socket.socket:
    """Open a connection and send a request's head (and no body yet)."""
    s = connect(port, source)
    lines = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{AUTH}"
    lines += f"Origin: http://127.0.0.1:{port}\r\n" if path == "/login" else ""
    if length is not None:
        lines += f"Content-Length: {length}\r\n"
    if chunked:
        lines += "Transfer-Encoding: chunked\r\n"
    s.sendall((lines + extra + "\r\n").encode())
    return s


def read_response(s: socket.socket, timeout: float = 10.0) -> tuple[int, dict, bytes, bool]:
    """(status, headers, body, closed): reads until the body is complete, then
    whether the server closed the connection right after."""
    s.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += piece
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = s.recv(65536)
        if not piece:
            break
        body += piece
    s.settimeout(3)
    try:
        closed = s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        closed = False
    return int(status_line.split()[1]), headers, body, closed


def get(port: int, path: str, source: str = "127.0.0.1", timeout: float = 5.0):
    s = connect(port, source, timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{AUTH}Connection: close\r\n\r\n".encode())
        status, headers, body, _ = read_response(s, timeout)
        return status, headers, body
    finally:
        s.close()


def timed_health(port: int) -> float:
    started = time.monotonic()
    status, _, _ = get(port, "/healthz", timeout=5)
    assert status == 200
    return time.monotonic() - started


def refused(port: int, source: str = "127.0.0.1") -> dict[str, float]:
    _, _, body = get(port, "/metrics", source=source)
    return {m.group(1): float(m.group(2)) for m in
            re.finditer(r'^dashboard_refused_total\{reason="(\w+)"\} (\S+)$', body.decode(), re.M)}


def test_slow_and_oversized_bodies_are_cut_while_a_viewer_and_health_carry_on(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.25", "BODY_TIMEOUT_SECONDS": "2", "MAX_BODY_BYTES": "4096",
                           "MAX_CONNECTIONS_PER_CLIENT": "500"})
    port = server.port
    with SSEClient(port, headers={"Authorization": f"Bearer {TOKEN}"}) as viewer:
        viewer.read_events(2)
        # 100 bodies that trickle: each declares 1,000 bytes and sends one a second.
        slow = [head(port, "/login", length=1000) for _ in range(100)]
        opened = time.monotonic()
        for s in slow:
            s.sendall(b"{")
        # A declared body over the limit: answered before a byte of it is read.
        big = head(port, "/login", length=200 * 1024 * 1024)
        status, headers, body, closed = read_response(big)
        assert (status, json.loads(body)["error"]["code"], headers["connection"], closed) == \
            (413, "body_too_large", "close", True)
        # A chunked body that goes over it while arriving.
        chunked = head(port, "/login", chunked=True)
        for _ in range(10):
            chunked.sendall(b"400\r\n" + b" " * 1024 + b"\r\n")
        status, headers, body, closed = read_response(chunked)
        assert (status, json.loads(body)["error"]["code"], headers["connection"], closed) == \
            (413, "body_too_large", "close", True)
        # While the trickling bodies are waited for, everyone else is served.
        health = []
        while time.monotonic() - opened < 1.5:
            for s in slow:
                s.sendall(b" ")
            health.append(timed_health(port))
            time.sleep(0.2)
        answers = [read_response(s) for s in slow]
        cut_after = time.monotonic() - opened
        for status, headers, body, closed in answers:
            assert (status, json.loads(body)["error"]["code"], headers["connection"], closed) == \
                (408, "body_timeout", "close", True)
        assert 1.8 < cut_after < 6, cut_after  # BODY_TIMEOUT_SECONDS after the headers, not per byte
        assert max(health) < 1.0, health
        before = len(viewer.events_of("metrics"))
        viewer.read_events(before + 4)
        seqs = [e.json["seq"] for e in viewer.events_of("metrics")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap while it all happened
    counts = refused(port)
    assert counts["body_timeout"] == 100 and counts["body_too_large"] == 2
    # Logged once per client and window, not once per refusal.
    lines = [json.loads(line) for line in server.log().splitlines() if '"dashboard.refusals"' in line]
    assert sorted(line["reason"] for line in lines) == ["body_timeout", "body_too_large"]
    for s in slow + [big, chunked]:
        s.close()


def test_a_body_within_limits_still_works(start_server):
    server = start_server({"BODY_TIMEOUT_SECONDS": "2", "MAX_BODY_BYTES": "4096"})
    body = json.dumps({"token": TOKEN, "name": "slowpoke"}).encode()
    s = head(server.port, "/login", length=len(body))
    for i in range(0, len(body), 10):  # in pieces, inside the deadline
        s.sendall(body[i:i + 10])
        time.sleep(0.05)
    status, headers, raw, _ = read_response(s)
    assert status == 200 and json.loads(raw)["operator"] == "slowpoke"
    s.close()


def test_one_address_holding_its_budget_cannot_starve_another(start_server):
    server = start_server({"WORKER_CONNECTIONS": "40", "MAX_CONNECTIONS_PER_CLIENT": "10",
                           "SAMPLE_INTERVAL": "0.5"})
    port = server.port
    held = [SSEClient(port, headers={"Authorization": f"Bearer {TOKEN}"}) for _ in range(10)]
    assert all(v.status == 200 for v in held)
    # The same address keeps asking for more, 200 times over: each gets 429 at once.
    answers = []
    for _ in range(200):
        s = head(port, "/events", method="GET")
        answers.append(read_response(s))
        s.close()
    for status, headers, body, closed in answers:
        assert (status, headers["retry-after"], json.loads(body)["error"]["code"], closed) == \
            (429, "5", "too_many_connections", True)
    # Another address still gets the page and its own stream.
    status, _, page = get(port, "/", source="127.0.0.2")
    assert status == 200 and b"<html" in page.lower()
    other = head(port, "/events", method="GET", source="127.0.0.2")
    other.settimeout(5)
    assert other.recv(4096).startswith(b"HTTP/1.1 200 ")
    other.close()
    # The held streams still get their events.
    for v in held:
        v.read_events(2)
    assert refused(port, source="127.0.0.2")["connections"] >= 200
    lines = [json.loads(line) for line in server.log().splitlines() if '"dashboard.refusals"' in line]
    assert [(line["client"], line["reason"]) for line in lines] == [("127.0.0.1", "connections")]
    # Closing some of the held streams gives the budget back.
    for v in held[:5]:
        v.close()
    eventually(lambda: get(port, "/healthz")[0] == 200, what="the budget given back")
    for v in held[5:]:
        v.close()


def test_sigterm_with_slow_bodies_open_exits_at_once(start_server):
    server = start_server({"BODY_TIMEOUT_SECONDS": "60"})
    slow = [head(server.port, "/login", length=1000) for _ in range(20)]
    for s in slow:
        s.sendall(b"{")
    time.sleep(0.5)
    answers = []
    reader = threading.Thread(target=lambda: answers.extend(read_response(s) for s in slow))
    reader.start()
    worker = server.worker().pid
    # Time enough for the failure mode (the bodies hold the worker to the 25 s graceful timeout) to show.
    took = server.stop(signal.SIGTERM, timeout=60)
    reader.join(10)
    assert server.proc.returncode == 0
    # "At once" is what the server says: no request held the worker to the timeout; it left by itself.
    assert_left_by_themselves(server, [worker])
    assert took < 15, f"exit took {took:.1f}s"  # about 2 s here; far below the graceful timeout's 25 s
    assert [(a[0], json.loads(a[2])["error"]["code"]) for a in answers] == [(503, "shutting_down")] * 20


def test_huge_bodies_do_not_grow_the_worker(start_server):
    server = start_server({"MAX_BODY_BYTES": "16384"})
    worker = server.worker()
    get(server.port, "/healthz")
    before = worker.memory_info().rss
    chunk = b"x" * (1 << 20)
    for declared, chunked in ((200 * 1024 * 1024, False), (None, True), (None, True)):
        s = head(server.port, "/login", length=declared, chunked=chunked)
        sent = 0
        try:
            while sent < 200 * (1 << 20):  # as much of 200 MB as the server lets in
                s.sendall((b"100000\r\n" + chunk + b"\r\n") if chunked else chunk)
                sent += len(chunk)
        except OSError:
            pass  # answered and closed: the rest is refused
        s.close()
        assert sent < 50 * (1 << 20), sent
    time.sleep(0.5)
    grew = worker.memory_info().rss - before
    print(f"worker RSS grew by {grew / 1024:.0f} KiB over three 200 MB bodies")
    assert grew < 20 * 1024 * 1024, grew
