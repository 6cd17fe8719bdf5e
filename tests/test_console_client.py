"""The command-line console client against a server that sends its greeting in
the very segment that completes the handshake (what a busy machine does)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time

from dashboard.console.client import Session

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _frame(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 126
    return bytes([0x81, len(data)]) + data


def test_a_greeting_in_the_same_segment_as_the_handshake_is_read_at_once():
    welcome = json.dumps({"type": "welcome", "operator": "cli"})
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def serve():
            conn, _ = server.accept()
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                       if line.lower().startswith(b"sec-websocket-key:"))
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + _frame(welcome))  # one segment
            time.sleep(2)  # and nothing more for a while: no later read can carry it
            conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        started = time.monotonic()
        session = Session(f"http://127.0.0.1:{port}", "token-of-the-test", on_push=lambda m: None)
        took = time.monotonic() - started
        assert session.welcome == json.loads(welcome)
        assert took < 1.0, f"the greeting waited {took:.1f}s"
        session.close()
        thread.join(5)
