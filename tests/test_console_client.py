"""The command-line client's output: tables and aligned lines (never a Python dict), refusals in
words, and pushes drawn above the line being typed."""

import io

from dashboard.console import client


def test_tables_show_dicts_and_lists_as_text():
    out = client.render({"columns": ["id", "values", "hosts"], "rows": [["a1", {"web-1": 93.25, "web-2": 12.0}, ["a", "b"]]]})
    assert out.splitlines()[1].split(None, 1)[1].startswith("web-1=93.25, web-2=12")
    assert "{" not in out and "[" not in out and "a, b" in out


def test_other_results_are_aligned_lines_with_nested_tables():
    out = client.render({"pid": 7, "sampler": {"interval": 1.0, "paused": False}, "rss": 2048,
                         "children": {"columns": ["pid", "name"], "rows": [[8, "worker"]], "total": 1},
                         "history": {"columns": ["ts"], "rows": [[1.0]] * 30}})
    lines = out.splitlines()
    assert lines[0] == "pid               7"
    assert "sampler.interval  1" in lines and "rss               2.0 KiB" in lines
    assert "children:" in lines and "  8    worker" in lines
    assert "history: 30 rows (--json shows them)" in lines


def test_a_refused_handshake_is_said_in_words():
    class Refused(Exception):
        status_code = 401

    assert "the token was not accepted (401)" in client.refused(Refused())
    Refused.status_code = 403
    assert "needs an observer or operator token" in client.refused(Refused())


def test_a_push_is_drawn_above_the_line_being_typed(monkeypatch):
    screen = io.StringIO()
    screen.isatty = lambda: True
    monkeypatch.setattr(client.sys, "stdout", screen)

    class Readline:
        @staticmethod
        def get_line_buffer():
            return "stat"

    prompt = client.Prompt(Readline())
    prompt.text = "cli@web> "
    prompt.show("[broadcast from bob] hello")
    assert screen.getvalue() == "\r\x1b[K[broadcast from bob] hello\ncli@web> stat"
    screen.seek(0)
    screen.truncate()
    prompt.text = None  # Enter was pressed, a reply is awaited: a plain line
    prompt.show("[config] pause by bob")
    assert screen.getvalue() == "[config] pause by bob\n"


def test_a_welcome_that_arrives_with_the_101_is_not_left_unread():
    # A server that sends its greeting in the very segment of its 101, then
    # nothing (no ping for 25 s): the client must see the greeting at once.
    import base64
    import hashlib
    import json
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []

    def serve():
        conn, _ = listener.accept()
        held.append(conn)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        payload = json.dumps({"type": "welcome", "operator": "x", "commands": []}).encode()
        frame = bytes([0x81, len(payload)]) + payload  # one unmasked text frame, under 126 bytes
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n" + frame)

    threading.Thread(target=serve, daemon=True).start()
    # A greeting left unread would be read only when more data came, and none comes: the client would
    # wait out its WELCOME_SECONDS (10 s) and raise "no welcome from the server". So getting the
    # welcome at all is the proof, with no clock of ours that a busy machine could outrun.
    try:
        session = client.Session(f"http://127.0.0.1:{listener.getsockname()[1]}", "token-that-is-long-enough")
    except ConnectionError as exc:
        raise AssertionError(f"the welcome that came with the 101 was not read: {exc}") from None
    assert session.welcome["type"] == "welcome"
    held[0].close()
    listener.close()
