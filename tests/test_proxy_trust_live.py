"""Trusting loopback as a proxy, against the real server: the warning when no
X-Forwarded-For ever comes from it, and the ceiling on failed logins from all
addresses together."""

from __future__ import annotations

import http.client
import json
import re

from tests.conftest import TOKEN
from tests.support.waiting import eventually

WARNING = "carried no X-Forwarded-For"


def call(port: int, path: str = "/healthz", source: str = "127.0.0.1", method: str = "GET",
         body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        data = None if body is None else json.dumps(body)
        extra = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"} if body else {}
        conn.request(method, path, body=data, headers={**extra, **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else {}
    finally:
        conn.close()


def started(start_server, env: dict | None = None):
    """A server made ready by polling from 127.0.0.2, which is not a trusted proxy:
    the test alone decides what the trusted loopback peer sends."""
    server = start_server(env, wait=False)

    def ready() -> bool:
        status, _, body = call(server.port, "/healthz", source="127.0.0.2",
                               headers={"Authorization": f"Bearer {TOKEN}"})
        return status == 200 and body["sampler"]["seq"] >= 1
    eventually(ready, 30, 0.1, ignoring=(OSError,), what="ready, asked from 127.0.0.2")
    return server


def warnings(server) -> list[dict]:
    return [json.loads(line) for line in server.log().splitlines()
            if '"dashboard.proxy"' in line and WARNING in line]


def test_the_loopback_proxy_warning_comes_once_after_20_plain_requests(start_server):
    server = started(start_server)
    for _ in range(19):
        assert call(server.port)[0] == 200
    assert warnings(server) == []  # each request is counted before it is answered
    assert call(server.port)[0] == 200
    [line] = warnings(server)
    assert line["level"] == "warning" and line["peer"] == "127.0.0.1"
    assert "FORWARDED_ALLOW_IPS trusts 127.0.0.1" in line["msg"]
    for _ in range(30):
        call(server.port)
    assert len(warnings(server)) == 1  # once per process


def test_no_warning_once_the_loopback_peer_forwarded_a_client(start_server):
    server = started(start_server)
    assert call(server.port, headers={"X-Forwarded-For": "198.51.100.7"})[0] == 200
    for _ in range(40):
        assert call(server.port)[0] == 200
    assert warnings(server) == []


def test_failed_logins_from_many_addresses_stop_every_address_for_the_minute(start_server):
    server = started(start_server, {"LOGIN_FAILURES_PER_MINUTE": "5", "LOGIN_FAILURES_ALLOWED": "100"})
    # A browser logged in before: its cookie presents no token, so it is never throttled.
    status, headers, _ = call(server.port, "/login", source="127.0.0.2", method="POST", body={"token": TOKEN})
    assert status == 200
    cookie = {"Cookie": headers["set-cookie"].split(";", 1)[0]}
    for i in range(2, 7):  # five addresses, one wrong token each: none is throttled alone
        status, _, body = call(server.port, "/login", source=f"127.0.0.{i}", method="POST",
                               body={"token": f"wrong-token-number-{i}"})
        assert status == 401 and body["error"]["code"] == "bad_token"
    # A sixth address, with the right token: the minute is used up for everyone.
    status, headers, body = call(server.port, "/login", source="127.0.0.7", method="POST", body={"token": TOKEN})
    assert status == 429 and body["error"]["code"] == "too_many_attempts"
    assert "all addresses" in body["error"]["message"] and "LOGIN_FAILURES_PER_MINUTE" in body["error"]["message"]
    assert 1 <= int(headers["retry-after"]) <= 60
    status, _, _ = call(server.port, "/api/snapshot", source="127.0.0.8", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 429  # a bearer token is a token presented too
    status, _, _ = call(server.port, "/api/snapshot", source="127.0.0.2", headers=cookie)
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=("127.0.0.2", 0))
    conn.request("GET", "/metrics", headers=cookie)
    metrics = conn.getresponse().read().decode()
    conn.close()
    assert re.search(r'^dashboard_refused_total\{reason="login_ceiling"\} 2\.0$', metrics, re.M), metrics
    assert re.search(r"^dashboard_login_failures_total 5\.0$", metrics, re.M)
    lines = [json.loads(line) for line in server.log().splitlines() if "within a minute from all addresses" in line]
    assert len(lines) == 1 and lines[0]["failures_this_minute"] == 5
