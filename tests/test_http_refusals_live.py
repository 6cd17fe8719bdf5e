"""Errors are JSON even when gunicorn refuses a request before the app sees it: a too-long
request line (414), too many or too long header fields (431), a request that is not HTTP (400).
Raw sockets against the real server; and the worker's mapping for every gunicorn parse error."""

import inspect
import json
import logging
import re
import socket

from gunicorn.http import errors as http

from dashboard import serving

SECRET = "secret-login-token-in-a-long-url"


def exchange(port: int, request: bytes) -> tuple[int, dict, bytes]:
    """Send request as is; (status, headers, body) of the answer, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        raw = b""
        while True:
            data = s.recv(65536)  # a reset here would mean the answer could be lost: the server lingers
            if not data:
                break
            raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


CASES = [
    ("a 5,000-byte request line", b"GET /?token=" + SECRET.encode() + b"&x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
     414, "uri_too_long", "longer than 4094 bytes"),
    ("a 20,000-byte request line", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
     414, "uri_too_long", "longer than 4094 bytes"),
    ("a 9,000-byte header field", b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
     431, "headers_too_large", "longer than 8190 bytes"),
    ("150 header fields", b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n",
     431, "headers_too_large", "more than 100 header fields"),
    ("a request line that is not HTTP", b"GET /?token=" + SECRET.encode() + b"\r\n\r\n",
     400, "bad_request", "request line"),
    ("a malformed header name", b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: 1\r\n\r\n",
     400, "bad_request", "header field is malformed"),
]


def test_gunicorns_own_refusals_are_json_counted_and_logged_without_the_request(start_server):
    server = start_server()
    for what, request, status, code, says in CASES:
        got, headers, body = exchange(server.port, request)
        assert got == status, what
        assert headers["content-type"] == "application/json" and headers["connection"] == "close", what
        assert int(headers["content-length"]) == len(body), what
        error = json.loads(body)["error"]
        assert error["code"] == code and says in error["message"], (what, error)
    # The server carries on, and counts what it refused.
    status, _, metrics = server.request("GET", "/metrics")
    assert status == 200
    counts = {m[1]: float(m[2]) for m in re.finditer(r'^dashboard_refused_total\{reason="(\w+)"\} (\S+)$',
                                                      metrics.decode(), re.M)}
    assert counts["uri_too_long"] == 2 and counts["headers_too_large"] == 2 and counts["bad_request"] == 2
    log = server.log()
    assert SECRET not in log and "<html" not in log.lower()
    # One line per client, reason and minute: three reasons, three lines.
    assert len([line for line in log.splitlines() if '"dashboard.refusals"' in line]) == 3


def test_every_gunicorn_parse_error_has_a_json_answer():
    class Cfg:
        limit_request_line, limit_request_fields, limit_request_field_size = 4094, 100, 8190

    ours = (http.InvalidResponseHeader, http.InvalidResponseHeaderName, http.ConfigurationProblem)
    kinds = [k for _, k in inspect.getmembers(http, inspect.isclass) if issubclass(k, http.ParseException)]
    assert len(kinds) >= 20
    for kind in kinds:
        exc = kind.__new__(kind)
        answer = serving.refusal(exc, Cfg())
        if issubclass(kind, ours):
            assert answer is None, kind  # a fault of the app or the settings: 500, with its traceback
        else:
            assert answer is not None and 400 <= answer[0] < 600, kind
    assert serving.refusal(RuntimeError("bug"), Cfg()) is None


def test_a_fault_of_ours_is_a_json_500_and_a_logged_traceback(caplog):
    worker = serving.Worker.__new__(serving.Worker)
    worker.log = logging.getLogger("gunicorn.error.test")
    worker.cfg, worker.wsgi = None, None
    mine, theirs = socket.socketpair()
    with mine, theirs:
        try:
            raise RuntimeError("a bug")
        except RuntimeError as exc:
            with caplog.at_level(logging.ERROR):
                worker.handle_error(None, mine, ("127.0.0.1", 5), exc)
        mine.close()
        raw = theirs.recv(65536)
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n") and b"application/json" in raw
    assert json.loads(raw.partition(b"\r\n\r\n")[2])["error"]["code"] == "internal"
    assert "RuntimeError: a bug" in caplog.text and "(no request line read)" in caplog.text

