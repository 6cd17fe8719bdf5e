"""Settings that change what the running server does, each tried against the
real server (gunicorn + gevent): the setting's value is the one observed."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import pytest
import redis
from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from tests.support.leaving import exited
from tests.support.server import REPO
from tests.support.sseclient import SSEClient
from tests.support.system import require
from tests.support.wsclient import Console, handshake_status
from tests.support.waiting import eventually

SECRET = "settings-secret-key-of-tests"


def _aged(cookie: str, seconds: float) -> str:
    """The same session cookie, signed with the same key as if it were issued `seconds` ago."""
    app = Flask(__name__)
    app.secret_key = SECRET
    signer = SecureCookieSessionInterface().get_signing_serializer(app)
    name, _, value = cookie.partition("=")
    data = signer.loads(value)
    real = time.time
    try:
        time.time = lambda: real() - seconds
        return f"{name}={signer.dumps(data)}"
    finally:
        time.time = real


def test_session_hours_is_how_long_a_login_lasts(start_server):
    server = start_server({"SECRET_KEY": SECRET, "SESSION_HOURS": "0.05"})  # 180 s
    status, headers, _ = server.request("POST", "/login", body={"token": server.env["OPERATOR_TOKEN"]},
                                        headers={"Origin": server.base}, auth=False)
    assert status == 200
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", headers["Set-Cookie"])[1]).timestamp()
    assert abs(expires - (time.time() + 180)) < 5, headers["Set-Cookie"]
    cookie = headers["Set-Cookie"].split(";", 1)[0]

    def authenticated(c):
        status, _, body = server.request("GET", "/api/session", headers={"Cookie": c}, auth=False)
        assert status == 200
        return json.loads(body)["authenticated"]

    assert authenticated(cookie) and authenticated(_aged(cookie, 150))
    assert not authenticated(_aged(cookie, 200))  # older than SESSION_HOURS: the server refuses it
    assert server.request("GET", "/api/snapshot", headers={"Cookie": _aged(cookie, 200)}, auth=False)[0] == 401


def test_log_format_text_writes_plain_lines(start_server):
    server = start_server({"LOG_FORMAT": "text"})
    assert server.get("/api/snapshot")[0] == 200
    lines = [line for line in server.log().splitlines() if "/api/snapshot" in line]
    assert lines
    for line in lines:
        assert not line.startswith("{")
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[\d+\] INFO ", line), line
    assert '"request_id"' in lines[-1]  # the fields follow the message


def test_log_format_json_is_one_object_per_line(start_server):
    server = start_server({})
    assert server.get("/api/snapshot")[0] == 200
    Console(server.port).ok("status")
    lines = [line for line in server.log().splitlines() if "/api/snapshot" in line]
    assert lines and all(json.loads(line)["request_id"] for line in lines)
    assert any(json.loads(line).get("audit", {}).get("line") == "status" for line in server.log().splitlines()
               if line.startswith("{"))  # the audit record


def test_redis_prefix_names_every_key(start_server, redis_server):
    server = start_server({"REDIS_URL": redis_server.url, "REDIS_PREFIX": "other-app", "SECRET_KEY": SECRET,
                           "HOST_NAME": "web-1", "SAMPLE_INTERVAL": "0.5"})
    Console(server.port).ok("broadcast hello")
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    keys = set(r.scan_iter("*"))
    assert {"other-app:host:web-1", "other-app:lease:web-1", "other-app:audit"} <= keys, keys
    assert all(k.startswith("other-app:") for k in keys), keys


def _send_buffers(port: int) -> list[int]:
    """The kernel send buffer (skmem tb) of each established socket the server holds on port."""
    ss = require("ss", "iproute2")
    out = subprocess.run([ss, "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return [int(m) for m in re.findall(r"\btb(\d+)", out)]


@pytest.mark.parametrize("size", [16384, 0])
def test_viewer_send_buffer_sets_each_streams_kernel_buffer(start_server, size):
    server = start_server({"VIEWER_SEND_BUFFER": str(size), "SAMPLE_INTERVAL": "0.5"})
    with SSEClient(server.port) as viewer:
        viewer.read_events(1)
        [tb] = _send_buffers(server.port)
    if size:
        assert tb == 2 * size  # Linux doubles what SO_SNDBUF asks for (bookkeeping)
    else:
        assert tb != 2 * 16384 and tb >= 16384  # the system's own, autotuned


def test_worker_connections_is_the_most_one_worker_serves(start_server):
    server = start_server({"WORKER_CONNECTIONS": "20", "SAMPLE_INTERVAL": "1"})
    streams = [SSEClient(server.port) for _ in range(20)]
    try:
        for s in streams:  # each one open and owned by the hub (no longer in gunicorn's pool)
            assert s.wait_for(lambda c: c.parser.retry is not None, timeout=5)
        # The 21st, a stream or a health check, is told at once (not hung).
        status, headers, body = server.request("GET", "/healthz", timeout=5)
        assert status == 503 and headers["retry-after"] == "5", (status, body)
        assert json.loads(body)["error"]["code"] == "server_full"
        status, _headers, body = server.request("GET", "/events", timeout=5)
        assert status == 503 and json.loads(body)["error"]["code"] == "server_full"
        streams.pop().close()
        # The slot is freed when the hub sees EOF.
        eventually(lambda: server.request("GET", "/healthz", timeout=5)[0] == 200, what="a slot is free again")
    finally:
        for s in streams:
            s.close()


def test_graceful_timeout_bounds_how_long_a_worker_waits_after_sigterm(start_server, tmp_path):
    server = start_server({"GRACEFUL_TIMEOUT": "3"})
    # A request that never finishes its headers no longer holds a leaving worker (it is ended
    # with the idle kept-alive connections), so the worker that cannot leave is a stopped one.
    with socket.create_connection(("127.0.0.1", server.port)) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        time.sleep(0.3)
        worker = server.worker()
        worker.suspend()  # SIGSTOP: it cannot act on SIGTERM
        took = server.stop(signal.SIGTERM, timeout=60)  # time for the default's 25 s to show, were it used
    assert server.proc.returncode == 0
    assert exited(worker.pid) not in server.log()  # it never left by itself: the master killed it
    # The master waited out the 3 s (a busy machine only adds to that) and no more than a wide margin
    # allows: well below the default 25 s that would mean the setting was not used.
    assert 2.5 < took < 15, f"exit took {took:.1f}s"
    # It must leave room for the drain: a value that does not stops the start with one line.
    done = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
                          cwd=REPO, env={**server.env, "GRACEFUL_TIMEOUT": "10", "DRAIN_SECONDS": "20"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: GRACEFUL_TIMEOUT=10: must be more than DRAIN_SECONDS=20 "
                                   "(the worker would be killed mid-drain)")


def test_sse_retry_ms_is_the_retry_field_of_every_stream(start_server):
    server = start_server({"SSE_RETRY_MS": "4321", "SAMPLE_INTERVAL": "60"})
    with SSEClient(server.port) as c:
        assert c.wait_for(lambda c: c.parser.retry is not None, timeout=3)
    assert c.parser.retry == 4321 and c.raw.startswith(b"retry: 4321\n")


def test_top_processes_is_the_length_of_each_top_table(start_server):
    server = start_server({"TOP_PROCESSES": "3", "SAMPLE_INTERVAL": "0.5"})
    with SSEClient(server.port) as c:
        sample = c.read_events(2)[-1].json
    assert len(sample["processes"]["top_cpu"]) == len(sample["processes"]["top_mem"]) == 3


def test_history_seconds_bounds_what_history_serves(start_server):
    # Without a history store (HISTORY_STORE=0) the buffer is all there is.
    server = start_server({"HISTORY_SECONDS": "120", "HISTORY_STORE": "0"})
    status, body = server.get("/api/history?seconds=120")
    assert status == 200 and body["tier"] == "raw"
    status, body = server.get("/api/history?seconds=121")
    assert status == 400 and "at most 120 (HISTORY_SECONDS)" in body["error"]["message"]


def test_log_level_warning_leaves_out_the_apps_info_lines(start_server):
    server = start_server({"LOG_LEVEL": "warning"})
    assert server.get("/api/snapshot")[0] == 200  # at info this is a line (test_log_format_json_...)
    Console(server.port).ok("status")  # and so is the audit record of a command
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert lines  # gunicorn's own lifecycle lines stay at info
    assert [line for line in lines if not line["logger"].startswith("gunicorn.")
            and line["level"] in {"debug", "info"}] == []
    assert "/api/snapshot" not in server.log() and '"audit"' not in server.log()


def test_observer_tokens_log_in_named_observers(start_server):
    server = start_server({"OBSERVER_TOKENS": "olga:olga-observer-token-1,oscar:oscar-observer-token-2"})
    olga = Console(server.port, token="olga-observer-token-1", name="someone-else")
    assert (olga.welcome["operator"], olga.welcome["role"]) == ("olga", "observer")
    assert olga.error("pause")["code"] == "forbidden"
    assert Console(server.port, token="oscar-observer-token-2").ok("whoami")["operator"] == "oscar"


def test_viewer_tokens_open_the_dashboards_and_not_the_console(start_server):
    server = start_server({"VIEWER_TOKENS": "vera:vera-viewer-token-01"})
    bearer = {"Authorization": "Bearer vera-viewer-token-01"}
    assert server.request("GET", "/api/snapshot", headers=bearer, auth=False)[0] == 200
    assert handshake_status(server.port, token="vera-viewer-token-01") == 403


def test_sample_interval_is_the_cadence_at_start(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.5"})
    with SSEClient(server.port) as c:
        events = c.read_events(7)
    assert {e.json["interval"] for e in events} == {0.5}
    ts = [e.json["ts"] for e in events]  # the server's own clock, not ours
    gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
    assert 0.4 < gaps[len(gaps) // 2] < 0.6, gaps
