"""ConsoleSession with a fake socket: the whole life of a frame, no network."""

import json
import os

import gevent

from dashboard.store.audit import StoreUnavailable
from dashboard.console.operator import Operator
from dashboard.console.sessions import ConsoleSession


class FakeWS:
    def __init__(self):
        self.sent = []
        self.closed = None
        self.block = False

    def send(self, text):
        while self.block:
            gevent.sleep(0.01)
        self.sent.append(json.loads(text))

    def close(self, code=None, reason=None):
        self.closed = (code, reason)


def session(svc, role="operator", name="alice"):
    ws = FakeWS()
    s = ConsoleSession(ws, Operator(name, role, f"sess-{name}", "127.0.0.1", "bearer"), svc.desk)
    svc.consoles.add(s)
    return s, ws


def replies(ws):
    gevent.sleep(0.01)
    return [m for m in ws.sent if "ok" in m]


def test_every_request_gets_exactly_one_reply_with_its_id(svc):
    svc.sampler.tick()
    s, ws = session(svc)
    for i, frame in enumerate(['{"id": 1, "line": "status"}', "garbage", '{"id": "x", "line": "nope"}',
                               '{"id": 4, "line": "top 2"}']):
        s.handle(frame)
    got = replies(ws)
    assert [(m["id"], m["ok"]) for m in got] == [(1, True), (None, False), ("x", False), (4, True)]
    assert got[1]["error"]["code"] == "bad_json"
    assert got[2]["error"]["code"] == "unknown_command"


class FakeClock:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limit_answers_then_closes_on_sustained_abuse(app, svc):
    clock = FakeClock()
    svc.desk.rate, svc.desk.burst, svc.desk.clock = 1.0, 3, clock
    s, ws = session(svc)
    for i in range(6):
        s.handle(json.dumps({"id": i, "line": "whoami"}))
    got = replies(ws)
    assert [m["ok"] for m in got] == [True, True, True, False, False, False]
    assert got[3]["error"]["code"] == "rate_limited" and got[3]["id"] == 3
    assert got[3]["error"]["retry_after"] == 1.0  # one request a second, none left
    assert not s.closed
    clock.now += 1.0  # a second later: exactly one more request
    s.handle('{"id": 7, "line": "whoami"}')
    s.handle('{"id": 8, "line": "whoami"}')  # the fourth refusal within 10 s
    gevent.sleep(0.01)
    assert [m["ok"] for m in replies(ws)][6:] == [True]
    assert s.closed and ws.closed == (1008, "rate limit exceeded repeatedly")


def test_proc_takes_its_cost_from_the_rate_limits_and_ping_does_not(app, svc):
    from dashboard.console.commands.inspecting import PROC_COST

    clock = FakeClock()
    svc.desk.rate, svc.desk.burst, svc.desk.clock = 10.0, 2 * PROC_COST, clock
    s, ws = session(svc)
    proc = json.dumps({"id": "p", "line": f"proc {os.getpid()}"})
    ping = json.dumps({"id": "g", "line": "ping"})
    for _ in range(3):
        s.handle(proc)
    got = replies(ws)
    assert [m["ok"] for m in got] == [True, True, False]
    err = got[2]["error"]
    assert err["code"] == "rate_limited" and f"counts as {PROC_COST}" in err["message"]
    assert err["retry_after"] == PROC_COST / 10.0
    clock.now += 1.0  # ten requests' worth back: ten pings, not one proc
    s.handle(proc)
    for _ in range(10):
        s.handle(ping)
    got = replies(ws)[3:]
    assert [m["ok"] for m in got] == [False] + [True] * 10
    # A refused proc took nothing: the pings above were all served from the same second.


def test_a_console_that_stops_reading_is_closed_without_blocking_others(svc):
    svc.desk.outbox = 8
    slow, slow_ws = session(svc, name="slow")
    fast, fast_ws = session(svc, name="fast")
    slow_ws.block = True
    for i in range(20):
        svc.broadcast(f"message {i}", by="ops")  # pushes to every console, never waits
        gevent.sleep(0)  # pushes come from other greenlets: writers run in between
    gevent.sleep(0.05)
    assert slow.closed and slow.close_code == 1008
    assert len([m for m in fast_ws.sent if m.get("type") == "notice"]) == 20
    slow_ws.block = False


def test_changes_are_echoed_to_other_consoles_as_audit_lines(svc):
    a, a_ws = session(svc, name="a")
    b, b_ws = session(svc, name="b")
    a.handle('{"id": 1, "line": "interval 2"}')
    a.handle('{"id": 2, "line": "status"}')
    gevent.sleep(0.01)
    audits = [m for m in b_ws.sent if m.get("type") == "audit"]
    assert [m["record"]["line"] for m in audits] == ["interval 2"]
    assert not [m for m in a_ws.sent if m.get("type") == "audit"]
    assert [m for m in b_ws.sent if m.get("type") == "config"][0]["interval"] == 2.0


def test_no_audit_no_change(svc, monkeypatch):
    s, ws = session(svc)

    def broken(record):
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(svc.audit, "append", broken)
    s.handle('{"id": 1, "line": "interval 5"}')
    (reply,) = replies(ws)
    assert reply["error"]["code"] == "unavailable"
    assert svc.sampler.interval == 1.0  # refused, not run


def test_an_unexpected_failure_is_an_internal_error_not_a_crash(svc, monkeypatch):
    from dashboard.console import commands

    def boom(ctx, values):
        raise RuntimeError("bug")

    monkeypatch.setitem(commands.REGISTRY, "status", commands.REGISTRY["status"].__class__(
        "status", "x", "observer", boom))
    s, ws = session(svc)
    s.handle('{"id": 1, "line": "status"}')
    s.handle('{"id": 2, "line": "whoami"}')
    got = replies(ws)
    assert got[0]["error"] == {"code": "internal", "message": "the command failed on the server"}
    assert got[1]["ok"]


def test_close_sends_queued_frames_first(svc):
    s, ws = session(svc)
    s.send('{"type": "notice", "message": "last words"}')
    s.close(1001, "server shutting down")
    s.writer.join(1)
    assert ws.sent[-1]["message"] == "last words" and ws.closed == (1001, "server shutting down")
