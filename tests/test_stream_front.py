"""The stream front (dashboard/web/stream_front.py): GET /events opened in front of Flask.

Each request goes through the app's whole WSGI chain with a real (gevent)
socket pair as gunicorn's client socket, once with the front and once with it
off (Flask's route answers), and the two answers are compared: the same head
(but its date, request id and cookie signature), the same first bytes, the
same log line, the same counters. Where the front must leave the request to
Flask, Flask's own answer is asserted.
"""

import logging
import re
import socket as stdsocket
import time

import gevent
import gevent.socket
import pytest
from werkzeug.test import EnvironBuilder

from dashboard import create_app
from dashboard.stream.events import Notice
from dashboard.web.budgets import ClientBudget
from dashboard.web.stream_front import StreamFront
from tests.conftest import METRICS, TOKEN, VIEWER
from tests.support.sseclient import Dechunker, SSEParser


def layer_of(app, kind):
    """The middleware of that kind in the app's WSGI chain."""
    layer = app.wsgi_app
    while not isinstance(layer, kind):
        layer = getattr(layer, "plain", None) or layer.app
    return layer


def front_of(app) -> StreamFront:
    return layer_of(app, StreamFront)


class Answer:
    """What the client saw: a stream head and its first bytes read off the socket,
    or an ordinary WSGI answer."""

    def __init__(self, status, headers, body: bytes, stream: bool):
        self.status, self.headers, self.body, self.stream = status, headers, body, stream

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def normalized_head(self):
        out = []
        for name, value in self.headers:
            if name in ("Date", "X-Request-ID"):
                value = "*"
            elif name == "Set-Cookie":
                value = re.sub(r"^dashboard_session=[^;]*", "dashboard_session=*", value)
                value = re.sub(r"Expires=[^;]*", "Expires=*", value)
            out.append((name, value))
        return self.status, out


def read_stream(peer, until=b": connected\n\n", seconds=2.0):
    peer.settimeout(0.05)
    raw = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (until is None or until not in raw):
        try:
            data = peer.recv(1 << 16)
        except stdsocket.timeout:
            continue
        if not data:
            break
        raw += data
    return raw


def call(app, *, front=True, headers=None, query="", method="GET", remote="127.0.0.1", peers=None):
    """One request through the app's WSGI chain, the client socket a gevent socket pair."""
    builder = EnvironBuilder(path="/events", method=method, query_string=query, headers=headers or {},
                             base_url="http://127.0.0.1:8000/",
                             environ_base={"REMOTE_ADDR": remote, "SERVER_PROTOCOL": "HTTP/1.1"})
    environ = builder.get_environ()
    server_end, client_end = gevent.socket.socketpair()
    environ["gunicorn.socket"] = server_end
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"], seen["headers"] = status, list(response_headers)

    layer = front_of(app)
    layer.enabled, was = front, layer.enabled
    try:
        body = b"".join(app.wsgi_app(environ, start_response))
    except StopIteration:  # the hub took the connection (OwnedStream)
        raw = read_stream(client_end)
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        hdrs = [tuple(line.split(": ", 1)) for line in lines]
        if peers is not None:
            peers.append(client_end)
        else:
            client_end.close()
        answer = Answer(status_line.split(" ", 1)[1], hdrs, Dechunker().feed(rest), True)
        answer.raw = rest  # still chunked: what came after the head so far
        return answer
    finally:
        layer.enabled = was
        server_end.close()
    client_end.close()
    return Answer(seen["status"], seen["headers"], body, False)


@pytest.fixture
def flask_calls(app, monkeypatch):
    """How many requests the front left to Flask."""
    layer = front_of(app)
    calls = []
    inner = layer.flask

    def counted(environ, start_response):
        if environ.get("PATH_INFO") == "/events":
            calls.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    monkeypatch.setattr(layer, "flask", counted)
    return calls


@pytest.fixture
def sampled(svc):
    svc.ensure_started()
    svc.sampler.tick()
    return svc


def request_lines(caplog):
    out = []
    for r in caplog.records:
        if r.name == "dashboard.request":
            fields = dict(r.fields)
            fields.pop("ms")
            out.append(fields)
    return out


BEARER_VIEWER = {"Authorization": f"Bearer {VIEWER}"}


def test_a_bearer_open_is_answered_by_the_front_as_flask_answers_it(app, sampled, flask_calls, caplog):
    caplog.set_level(logging.INFO, logger="dashboard.request")
    front = call(app, headers=BEARER_VIEWER)
    assert flask_calls == []
    flask = call(app, front=False, headers=BEARER_VIEWER)
    assert flask_calls == ["/events"]
    assert front.stream and flask.stream
    assert front.normalized_head() == flask.normalized_head()
    assert front.status == "200 OK" and front.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert front.header("Content-Security-Policy") and front.header("X-Request-ID")
    assert front.header("Set-Cookie") is None and front.header("Vary") is None
    assert front.body == flask.body == b"retry: 2000\n: connected\n\n"
    first, second = request_lines(caplog)
    assert first == second == {"method": "GET", "path": "/events", "status": 200, "remote": "127.0.0.1",
                               "bytes": None, "stream": "opened"}
    assert sampled.hub.stats.opened == 2


def test_a_bearer_stream_belongs_to_its_login_and_client_name(app, sampled, flask_calls):
    peers = []
    call(app, headers=BEARER_VIEWER, query="client=page-1", peers=peers)
    call(app, headers=BEARER_VIEWER, query="client=no%20spaces", peers=peers)
    call(app, headers=BEARER_VIEWER, query="host=&client=first&client=second", peers=peers)  # as args.get
    assert flask_calls == []
    subs = sorted(sampled.hub.subscribers, key=lambda s: s.since)
    assert [s.client for s in subs] == ["page-1", None, "first"]
    assert all(s.login.startswith("b-") and s.addr == "127.0.0.1" for s in subs)
    assert all(s in sampled.hub.sockets.caught_up for s in subs)
    for p in peers:
        p.close()


def login_cookie(app, token=VIEWER):
    client = app.test_client()
    r = client.post("/login", json={"token": token}, headers={"Origin": "http://localhost"})
    assert r.status_code == 200
    return client.get_cookie("dashboard_session").value


def test_a_cookie_open_refreshes_the_cookie_as_flask_does(app, sampled, flask_calls):
    cookie = {"Cookie": f"dashboard_session={login_cookie(app)}"}
    front = call(app, headers=cookie)
    assert flask_calls == []
    flask = call(app, front=False, headers=cookie)
    assert front.normalized_head() == flask.normalized_head()
    assert front.header("Vary") == "Cookie"
    assert "HttpOnly" in front.header("Set-Cookie") and "SameSite=Strict" in front.header("Set-Cookie")
    assert "Secure" not in front.header("Set-Cookie")  # plain http here
    assert front.body == flask.body


def test_an_https_cookie_is_marked_secure_outside_flask_too(app, sampled, flask_calls):
    cookie = {"Cookie": f"dashboard_session={login_cookie(app)}"}
    # What the trusted-proxy fix makes of X-Forwarded-Proto: https from a trusted proxy.
    forwarded = {**cookie, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    front = call(app, headers=forwarded)
    flask = call(app, front=False, headers=forwarded)
    assert flask_calls == ["/events"]
    assert "Secure" in front.header("Set-Cookie")
    assert front.normalized_head() == flask.normalized_head()


def test_a_logged_out_cookie_is_left_to_flask(app, sampled, flask_calls):
    value = login_cookie(app)
    client = app.test_client()
    client.set_cookie("dashboard_session", value)
    assert client.post("/logout", json={}, headers={"Origin": "http://localhost"}).status_code == 200
    answer = call(app, headers={"Cookie": f"dashboard_session={value}"})
    assert flask_calls == ["/events"] and answer.status.startswith("401")
    assert not sampled.hub.subscribers


@pytest.mark.parametrize("headers, status, code", [
    ({}, "401", "unauthorized"),
    ({"Authorization": "Bearer not-the-token"}, "401", "bad_token"),
    ({"Authorization": "Basic abc"}, "401", "unauthorized"),
    ({"Authorization": "Bearer "}, "401", "unauthorized"),
    ({"Authorization": f"Bearer {METRICS}"}, "403", "forbidden"),
    ({"Cookie": "dashboard_session=forged.value.sig"}, "401", "unauthorized"),
])
def test_what_is_not_a_good_open_is_answered_by_flask(app, sampled, flask_calls, headers, status, code):
    answer = call(app, headers=headers)
    assert flask_calls == ["/events"]
    assert answer.status.startswith(status) and f'"code":"{code}"' in answer.body.decode()
    assert not sampled.hub.subscribers


@pytest.fixture
def loopback_app(tmp_path):
    """The app as bound to loopback: it answers to loopback names only (ALLOWED_HOSTS's default)."""
    app = create_app({"TESTING": True, "HOST": "127.0.0.1", "OPERATOR_TOKEN": TOKEN, "VIEWER_TOKEN": VIEWER,
                      "SECRET_KEY": "test-secret-key-of-length", "AUDIT_DB": str(tmp_path / "audit.sqlite3"),
                      "DATA_DIR": str(tmp_path / "data")})
    yield app
    app.extensions["dashboard"].shutdown("test finished")


@pytest.mark.parametrize("headers", [
    {"Host": "evil.example"},
    {"Host": "127.0.0.1:8000", "X-Forwarded-Host": "evil.example"},  # from a trusted proxy: both checked
])
def test_a_host_not_allowed_is_refused_by_flask(loopback_app, headers):
    svc = loopback_app.extensions["dashboard"]
    svc.ensure_started()
    svc.sampler.tick()
    answer = call(loopback_app, headers={**BEARER_VIEWER, **headers})
    assert answer.status.startswith("400") and '"code":"host_not_allowed"' in answer.body.decode()
    assert not svc.hub.subscribers and svc.throttle.failures_total == 0
    peers = []
    assert call(loopback_app, headers=BEARER_VIEWER, peers=peers).stream  # its own name: opened
    peers[0].close()


def test_a_wrong_token_counts_once_and_a_throttled_address_is_told_by_flask(app, sampled, flask_calls):
    throttle = sampled.throttle
    call(app, headers={"Authorization": "Bearer wrong"})
    assert throttle.failures_total == 1
    for _ in range(10):
        call(app, headers={"Authorization": "Bearer wrong"})
    refused_before = throttle.refused_total
    answer = call(app, headers=BEARER_VIEWER)  # the right token, but the address must wait
    assert answer.status.startswith("429") and answer.header("Retry-After")
    assert throttle.refused_total == refused_before + 1  # counted by Flask alone
    assert not sampled.hub.subscribers


def test_a_good_token_forgets_the_address_failures_as_flask_does(app, sampled, flask_calls):
    call(app, headers={"Authorization": "Bearer wrong"})
    assert sampled.throttle._clients
    answer = call(app, headers=BEARER_VIEWER)
    assert answer.stream and flask_calls == ["/events"]  # the first, wrong one
    assert not sampled.throttle._clients


def test_head_another_host_and_a_stopping_worker_are_flask_s(app, sampled, flask_calls, monkeypatch):
    assert call(app, method="HEAD", headers=BEARER_VIEWER).status == "200 OK"
    unknown = call(app, headers=BEARER_VIEWER, query="host=elsewhere")
    assert unknown.status.startswith("404") and "unknown_host" in unknown.body.decode()
    local = call(app, headers=BEARER_VIEWER, query=f"host={sampled.views.local.name}")
    assert local.stream
    assert flask_calls == ["/events", "/events"]
    monkeypatch.setattr(type(sampled), "shutting_down", property(lambda self: True))
    leaving = call(app, headers=BEARER_VIEWER)
    assert flask_calls[-1] == "/events" and len(flask_calls) == 3
    assert b"server restarting" in leaving.body and leaving.status == "200 OK"


def test_origin_is_treated_as_flask_treats_it(app, sampled, flask_calls):
    # /events checks no Origin (a GET; the cookie is SameSite=Strict and no CORS header
    # lets another site read the stream): a foreign one changes neither answer.
    headers = {**BEARER_VIEWER, "Origin": "https://evil.example"}
    front = call(app, headers=headers)
    flask = call(app, front=False, headers=headers)
    assert flask_calls == ["/events"] and front.stream
    assert front.normalized_head() == flask.normalized_head()


def test_last_event_id_resumes_with_no_gap_header_first(app, sampled, flask_calls):
    hub = sampled.hub
    frames = [hub.publish(Notice(message=f"m{i}")) for i in range(5)]
    peers = []
    answers = [
        call(app, headers={**BEARER_VIEWER, "Last-Event-ID": frames[1].id}, peers=peers),
        call(app, headers=BEARER_VIEWER, query=f"last_event_id={frames[2].id}", peers=peers),
        call(app, headers={**BEARER_VIEWER, "Last-Event-ID": frames[3].id},
             query=f"last_event_id={frames[0].id}", peers=peers),
    ]
    assert flask_calls == []
    gevent.sleep(0.05)  # each one's writer sends what it missed
    got = []
    for answer, peer in zip(answers, peers):
        body = Dechunker().feed(answer.raw + read_stream(peer, until=None, seconds=0.3))
        parser = SSEParser()
        parser.feed(body.decode())
        got.append([e.last_event_id for e in parser.events])
        peer.close()
    wanted = [[f.id for f in frames[2:]], [f.id for f in frames[3:]], [frames[4].id]]
    # Then the sampler's samples, if one came meanwhile.
    assert [ids[:len(w)] for ids, w in zip(got, wanted)] == wanted


def test_a_deferred_open_is_answered_by_the_front_and_counted_once(app, sampled, flask_calls, caplog):
    caplog.set_level(logging.INFO, logger="dashboard.request")
    admission = sampled.views.admission
    admission.rate, admission.burst, admission._tokens = 1.0, 1, 0.0
    admission._at = admission.clock()
    answer = call(app, headers=BEARER_VIEWER)
    assert flask_calls == [] and not answer.stream
    assert answer.status == "200 OK" and b"busy, come back later" in answer.body and b"retry: " in answer.body
    assert admission.deferred == 1 and sampled.refusals.counts["stream_deferred"] == 1
    assert answer.header("X-Request-ID") and answer.header("Content-Security-Policy")
    (line,) = request_lines(caplog)
    assert line["status"] == 200 and "stream" not in line and line["bytes"] == len(answer.body)
    assert not sampled.hub.subscribers


def test_a_public_dashboard_opens_anonymous_streams_in_the_front(app, sampled, flask_calls, monkeypatch):
    monkeypatch.setitem(app.config, "DASHBOARD_ACCESS", "public")
    peers = []
    answer = call(app, peers=peers)
    assert answer.stream and flask_calls == []
    (sub,) = sampled.hub.subscribers
    assert sub.login is None
    wrong = call(app, headers={"Authorization": "Bearer wrong"})
    assert wrong.status.startswith("401") and flask_calls == ["/events"]
    peers[0].close()


def test_the_stream_holds_its_connection_slot_until_it_ends(app, sampled, flask_calls):
    layer = layer_of(app, ClientBudget)
    peers = []
    call(app, headers=BEARER_VIEWER, remote="10.0.0.7", peers=peers)
    assert flask_calls == [] and layer.open.get("10.0.0.7") == 1
    peers[0].close()
    deadline = time.monotonic() + 2
    while layer.open.get("10.0.0.7") and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert "10.0.0.7" not in layer.open and not sampled.hub.subscribers


def test_the_operator_token_opens_a_stream_too(app, sampled, flask_calls):
    answer = call(app, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.stream and flask_calls == []
