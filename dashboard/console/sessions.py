"""Open console connections: their outboxes, rate limits and the frames they handle.

Each connection has one writer greenlet draining a bounded outbox, so a reply
and any number of concurrent pushes never interleave inside a frame, and a
console that stops reading fills only its own outbox (then it is closed with
1008) instead of blocking whoever pushes. `ConsoleSession.handle` is the whole
life of one request frame: rate limit, envelope, command, audit, reply.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import gevent
from gevent.queue import Full, Queue

from . import commands

from . import protocol
from ..store.audit import AuditStore, Record, StoreUnavailable
from .commands import CommandError, Context
from .operations import Operations
from .operator import Operator

log = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455).
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
NORMAL = 1000

_ids = itertools.count(1)
_CLOSE = object()


class RateLimit:
    """Token bucket: `rate` requests a second, bursts of `burst`. Requests
    refused more than `burst` times within 10 s mark the client as abusive.
    `clock` (monotonic seconds) is the real one unless a test gives its own."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()
        self.refusals: deque[float] = deque(maxlen=burst + 1)

    def take(self, cost: float = 1.0) -> float:
        """0 when allowed (cost taken), else seconds until a request of this cost would be.
        A cost above the burst is taken as the whole burst, so it stays possible."""
        cost = min(cost, self.burst)
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        self.refusals.append(now)
        return (cost - self.tokens) / self.rate

    def give_back(self, cost: float) -> None:
        """Return what take() took (another limit refused the request after all)."""
        self.tokens = min(self.burst, self.tokens + min(cost, self.burst))

    def abusive(self) -> bool:
        r = self.refusals
        return len(r) > self.burst and r[-1] - r[0] <= 10.0


class Logins:
    """Budgets kept per login, so they survive reconnects: a token bucket of
    requests across all the login's sockets, and how many sockets it may hold.
    Sessions look their bucket up on every request; a bucket untouched long
    enough to be full again, with no refusal that still counts, is the same as
    a new one, so it is forgotten (memory stays bounded by the active logins)."""

    def __init__(self, rate: float, burst: int, max_consoles: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.max_consoles = max_consoles
        self.clock = clock
        self._limits: dict[str, RateLimit] = {}

    def limit(self, login: str) -> RateLimit:
        bucket = self._limits.get(login)
        if bucket is None:
            bucket = self._limits[login] = RateLimit(self.rate, self.burst, self.clock)
        return bucket

    def forget_idle(self) -> None:
        now = self.clock()
        idle = max(self.burst / self.rate, 10.0)  # refilled, and its refusals too old to count
        for login, bucket in list(self._limits.items()):
            if now - bucket.stamp > idle:
                del self._limits[login]

    def __len__(self) -> int:
        return len(self._limits)


@dataclass
class Desk:
    """What every console session of a process shares: the server's operations,
    the audit log, the open consoles, the limits, and where command timings and
    refusals go."""

    ops: Operations
    audit: AuditStore
    consoles: "Consoles"
    rate: float = 20.0
    burst: int = 40
    outbox: int = 256
    on_done: Callable[[str, str, float], None] = lambda name, outcome, seconds: None
    logins: Logins = field(default_factory=lambda: Logins(50.0, 100, 10))
    # (reason, client address, message): counted for /metrics, logged once per window
    on_refused: Callable[[str, str, str], None] = lambda reason, addr, message: None
    # Failed and repeated read-only requests are counted (store.audit_summary);
    # without one, each is its own record.
    summary: Any = None
    clock: Callable[[], float] = time.monotonic  # the per-connection rate limits' clock

    def note(self, record: Record) -> None:
        """Record a request that changed nothing (StoreUnavailable when it cannot be)."""
        if self.summary is not None:
            self.summary.record(record)
        else:
            self.audit.append(record)

    def admit(self, operator: Operator) -> float:
        """0 when this login may open one more console, else seconds to wait."""
        self.logins.forget_idle()
        held = sum(1 for s in self.consoles.sessions() if s.operator.login == operator.login)
        if held < self.logins.max_consoles:
            return 0.0
        self.on_refused("consoles", operator.addr, f"login already holds {held} consoles")
        return 5.0


class ConsoleSession:
    def __init__(self, ws, operator: Operator, desk: Desk) -> None:
        self.id = f"c{next(_ids)}"
        self.ws = ws
        self.operator = operator
        self.desk = desk
        self.addr = operator.addr
        self.since = time.time()
        self.commands = 0
        self.closed = False
        self.close_code: int | None = None
        self.limit = RateLimit(desk.rate, desk.burst, desk.clock)
        self.context = Context(operator, desk.ops, connection=self.id)
        self.outbox: Queue = Queue(maxsize=desk.outbox)
        self.writer = gevent.spawn(self._write_loop)

    # ---- sending ----------------------------------------------------------------

    def send(self, text: str) -> None:
        """Queue a frame; never blocks the caller."""
        if self.closed:
            return
        try:
            self.outbox.put_nowait(text)
        except Full:
            log.warning("console %s (%s) is not reading; closing it", self.id, self.operator.name)
            self._abort(POLICY_VIOLATION, "not reading its messages")

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send what is queued, then a close frame."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        try:
            self.outbox.put_nowait((_CLOSE, code, reason))
        except Full:
            self._abort(code, reason)

    def _abort(self, code: int, reason: str) -> None:
        # The outbox is full, so the peer is not reading. Drop what is queued
        # and queue the close frame in its place: the writer sends it after the
        # frame it may be writing now (never cutting one in half), and whoever
        # called us (a push to every console) does not wait for any of it. A
        # peer that does not read again soon is cut off by the socket route,
        # which stops waiting for it (woken here) and gives the writer a moment.
        self.closed = True
        self.close_code = code
        while not self.outbox.empty():
            self.outbox.get_nowait()
        self.outbox.put_nowait((_CLOSE, code, reason))
        self._wake_reader()

    def _cut(self) -> None:
        # A write timed out, maybe in the middle of a frame: no close frame can
        # follow it, so end the connection without one.
        self.closed = True
        self.close_code = POLICY_VIOLATION
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
            pass
        self._wake_reader()

    def _wake_reader(self) -> None:
        # The socket loop waits in ws.receive(), which only wakes for the peer;
        # after our close frame it must stop waiting for a reply that may not come.
        event = getattr(self.ws, "event", None)
        if event is not None:
            event.set()

    def _write_loop(self) -> None:
        # Writes are bounded by the socket's write timeout (see
        # web.console_socket.SerializedSocket), not by a timer per message.
        while True:
            item = self.outbox.get()
            try:
                if isinstance(item, tuple) and item[0] is _CLOSE:
                    self.ws.close(item[1], item[2])
                    self._wake_reader()
                    return
                self.ws.send(item)
            except socket.timeout:
                log.warning("console %s (%s): a write timed out; cutting it off", self.id, self.operator.name)
                self._cut()
                return
            except Exception:  # the connection is gone; the reader side notices too
                self.closed = True
                return

    # ---- receiving ---------------------------------------------------------------

    def handle(self, raw: Any) -> None:
        """One incoming frame: exactly one reply (or a close for abuse)."""
        # Parsed before the rate limit (the envelope is small and cheap to read)
        # so that a request is charged what its command costs: `proc` far more than `ping`.
        try:
            rid, line = protocol.parse_request(raw)
            problem = None
        except protocol.ProtocolError as exc:
            rid, line, problem = exc.id, "", exc
        cost = commands.cost_of(line) if problem is None else 1
        limit = self.limit
        wait = limit.take(cost)
        if not wait:
            limit = self.desk.logins.limit(self.operator.login)  # shared, kept across reconnects
            wait = limit.take(cost)
            if wait:
                self.limit.give_back(cost)  # not served: the connection's own bucket keeps it
        if wait:
            whose = "this connection" if limit is self.limit else "this login"
            if limit.abusive():
                self.desk.on_refused("console_rate", self.addr, f"console closed: {whose} flooded")
                self.close(POLICY_VIOLATION, "rate limit exceeded repeatedly")
                return
            self.desk.on_refused("console_rate", self.addr, f"console requests over the rate of {whose}")
            weight = f" (this command counts as {cost})" if cost > 1 else ""
            self.send(protocol.reply_error(
                rid, "rate_limited",
                f"more than {limit.rate:g} requests a second on {whose}{weight}; retry in {wait:.2f} s",
                retry_after=round(wait, 3)))
            return
        if problem is not None:
            self.send(protocol.reply_error(problem.id, problem.code, problem.message))
            return
        self.commands += 1
        self.send(self.execute(rid, line))
        then = self.context.after_reply
        self.context.after_reply = []
        for action in then:
            action()

    def execute(self, rid, line: str) -> str:
        desk, op = self.desk, self.operator
        started = time.perf_counter()
        record = Record(op.name, op.role, op.session[:12], op.addr, "?", commands.masked(line), "pending")
        try:
            cmd, values = commands.resolve(line, op)
            record.action = cmd.name
            if cmd.changes:
                # Written before it runs: if the log cannot take it, it does not run.
                desk.audit.append(record)
            result = commands.run(self.context, cmd, values)
        except CommandError as exc:
            record.action = exc.command or record.action
            return self._finish(rid, record, started, error=exc)
        except StoreUnavailable:
            # The audit log could not take the pending record (nothing ran), or
            # the shared store refused the change itself (nothing changed).
            if record.id is not None:
                try:
                    desk.audit.settle(record, "unavailable")
                except StoreUnavailable:
                    pass
            return protocol.reply_error(
                rid, "unavailable", "the audit log or the shared store is unreachable, so nothing was run")
        except Exception:
            log.exception("command %r failed", record.action)
            return self._finish(rid, record, started, error=CommandError("internal", "the command failed on the server"))
        return self._finish(rid, record, started, result=result, changed=cmd.changes, audited=cmd.audited)

    def _finish(self, rid, record: Record, started: float, *, result=None, error=None, changed=False,
                audited=True) -> str:
        desk = self.desk
        outcome = "ok" if error is None else error.code
        try:
            if not audited:
                pass
            elif record.id is None:  # changed nothing: counted, maybe folded into a summary
                record.outcome = outcome
                desk.note(record)
            else:
                desk.audit.settle(record, outcome)
        except StoreUnavailable:
            if record.id is None:
                return protocol.reply_error(
                    rid, "unavailable", "the audit log cannot record commands right now; try again")
        desk.on_done(record.action, outcome, time.perf_counter() - started)
        if changed and error is None:
            desk.consoles.broadcast(protocol.push("audit", record=record.public()), exclude=self)
        if error is not None:
            return protocol.reply_error(rid, error.code, error.message, **error.extra)
        return protocol.reply_ok(rid, result)


class Consoles:
    """Every open console connection of this process."""

    def __init__(self) -> None:
        self._sessions: dict[str, ConsoleSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[ConsoleSession]:
        return list(self._sessions.values())

    def add(self, session: ConsoleSession) -> None:
        self._sessions[session.id] = session

    def remove(self, session: ConsoleSession) -> None:
        self._sessions.pop(session.id, None)
        session.closed = True
        session.writer.kill(block=False)

    def broadcast(self, text: str, exclude: ConsoleSession | None = None) -> None:
        for session in list(self._sessions.values()):
            if session is not exclude:
                session.send(text)

    def close_login(self, sid: str, code: int, reason: str) -> int:
        """Close every connection of one login session (logout)."""
        hit = [s for s in self._sessions.values() if s.operator.session == sid]
        for session in hit:
            session.close(code, reason)
        return len(hit)

    def close_all(self, code: int, reason: str) -> int:
        sessions = list(self._sessions.values())
        for session in sessions:
            session.close(code, reason)
        return len(sessions)
