"""Every request body has a size and a deadline: a WSGI guard around `wsgi.input`.

gunicorn cuts slow request headers but waits for a body for ever, and reads
as much of it as the client sends. This middleware, the outermost layer of
the app, answers before the app runs when a declared `Content-Length` is over
MAX_BODY_BYTES (413), and otherwise hands the app a reader that

- raises 413 once more than MAX_BODY_BYTES arrived (chunked bodies),
- raises 408 when the whole body has not arrived BODY_TIMEOUT_SECONDS after
  the headers (one deadline for the whole body, not per read),
- raises 503 at once when the server starts shutting down, so a slow body
  never holds a stopping worker.

Any response to a request whose body was refused or not read to its end
closes the connection (gunicorn would otherwise read the rest before the
next request); after the last byte of the answer the socket is half-closed
and what the client still sends is read and dropped for a moment, so the
answer is not destroyed by a reset before the client reads it.
"""

from __future__ import annotations

import json
import logging
import socket
import time

import gevent
from werkzeug.exceptions import HTTPException

log = logging.getLogger("dashboard.web")

LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 20
LINGER_IDLE = 0.1


class BodyRefused(HTTPException):
    """A body the guard will not take; Flask's error handler answers it."""

    error_code = "bad_body"


class BodyTooLarge(BodyRefused):
    code = 413
    error_code = "body_too_large"


class BodyTimeout(BodyRefused):
    code = 408
    error_code = "body_timeout"


class BodyInterrupted(BodyRefused):
    code = 503
    error_code = "shutting_down"


def force_close(start_response) -> None:
    """Make gunicorn answer with `Connection: close` and end the connection
    afterwards (its Response object is the one start_response is bound to)."""
    close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if close is not None:
        close()


def linger(environ, budget: float = LINGER_SECONDS) -> None:
    """FIN after the answer, then drop what the client still sends, briefly: at
    most `budget` seconds and LINGER_BYTES, and only while bytes keep coming (a
    client silent for LINGER_IDLE is let go at once, so lingering cannot be
    used to hold the worker's connections)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + budget
        drained = 0
        while drained < LINGER_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(min(left, LINGER_IDLE))
            data = sock.recv(65536)
            if not data:
                break
            drained += len(data)
    except OSError:  # timed out (silent), reset, gone
        pass


class GuardedInput:
    """wsgi.input with a byte cap and one deadline; see the module docstring."""

    def __init__(self, raw, guard: "BodyLimits", declared: int | None, deadline: float, addr: str,
                 sock=None) -> None:
        self._raw = raw
        self._sock = sock  # the client socket, to end a read at once on shutdown
        self._reader = None  # the greenlet waiting in a read, if any
        self.addr = addr
        self._guard = guard
        self.declared = declared
        self.deadline = deadline
        self.received = 0
        self.ended = declared == 0
        self.failed: BodyRefused | None = None

    @property
    def finished(self) -> bool:
        return self.ended or (self.declared is not None and self.received >= self.declared)

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._raw.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._raw.readline, size)

    def readlines(self, hint=None) -> list[bytes]:
        lines = []
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def _fail(self, exc: BodyRefused) -> BodyRefused:
        self.failed = exc
        self._guard.on_refused(exc.error_code, self.addr)
        return exc

    def _guarded(self, read, size) -> bytes:
        if self.failed is not None:
            raise self.failed
        if self.finished or size == 0:
            return b""
        if self._guard.stopping:
            raise self._fail(_interrupted())
        room = self._guard.max_bytes - self.received
        want = room + 1 if size is None or size < 0 else min(size, room + 1)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._fail(self._late())
        self._reader = gevent.getcurrent()
        self._guard.reading.add(self)
        data = None
        try:
            with gevent.Timeout(left, False):
                data = read(want)
        except Exception:
            if self._guard.stopping:  # the read was ended by interrupt(): EOF or an error
                raise self._fail(_interrupted()) from None
            raise
        finally:
            self._guard.reading.discard(self)
            self._reader = None
        if self._guard.stopping:
            raise self._fail(_interrupted())
        if data is None:
            raise self._fail(self._late())
        self.received += len(data)
        if self.received > self._guard.max_bytes:
            raise self._fail(BodyTooLarge(
                f"request bodies are limited to {self._guard.max_bytes} bytes (MAX_BODY_BYTES)"))
        if not data or (read == self._raw.read and len(data) < want):
            self.ended = True  # a short read is the end of the body
        return data

    def interrupt(self) -> None:
        """Shutdown: end the read under way now. Shutting the socket's read side
        makes the pending recv return at once; without a socket (another server),
        the waiting greenlet gets the exception thrown in."""
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RD)
                return
            except OSError:
                pass
        if self._reader is not None:
            gevent.kill(self._reader, _interrupted())

    def _late(self) -> BodyTimeout:
        return BodyTimeout(
            f"the request body did not arrive within {self._guard.timeout:g} s (BODY_TIMEOUT_SECONDS)")


def _interrupted() -> BodyInterrupted:
    return BodyInterrupted("the server is shutting down; send it again in a moment")


class AfterResponse:
    """The app's response iterable, with `after` run once when it is done: at
    close(), or already when the last byte went out if `when_sent` (some
    servers never call close on an iterable they consumed)."""

    def __init__(self, inner, after, when_sent: bool = False) -> None:
        self._inner = inner
        self._after = after
        self._when_sent = when_sent
        self._done = False

    def __iter__(self):
        yield from self._inner
        if self._when_sent:
            self._finish()

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._after()


class BodyLimits:
    def __init__(self, app, max_bytes: int, timeout: float, on_refused=None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.stopping = False
        self.reading: set = set()
        # (reason, client address): counted and logged by whoever installs this
        self.on_refused = on_refused or (lambda reason, addr: None)

    def stop(self) -> int:
        """Shutdown: every body still being waited for is given up now."""
        self.stopping = True
        waiting = list(self.reading)
        for body in waiting:
            body.interrupt()
        return len(waiting)

    def __call__(self, environ, start_response):
        started = time.monotonic()
        raw_length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            declared = int(raw_length) if raw_length.strip() else None
        except ValueError:
            declared = None
        if not chunked and not declared:
            return self.app(environ, start_response)  # no body: nothing to guard
        if declared is not None and declared > self.max_bytes:
            self.on_refused("body_too_large", environ.get("REMOTE_ADDR") or "?")
            return self._answer(environ, start_response, 413, "body_too_large",
                                f"request bodies are limited to {self.max_bytes} bytes (MAX_BODY_BYTES); "
                                f"this one declares {declared}")
        body = GuardedInput(environ["wsgi.input"], self, None if chunked else declared,
                            started + self.timeout, environ.get("REMOTE_ADDR") or "?",
                            sock=environ.get("gunicorn.socket"))
        environ["wsgi.input"] = body
        closing = []

        def guarded_start_response(status, headers, exc_info=None):
            if body.failed is not None or not body.finished:
                force_close(start_response)
                closing.append(True)
            return start_response(status, headers, exc_info)

        result = self.app(environ, guarded_start_response)
        return AfterResponse(result, lambda: closing and not self.stopping and linger(environ))

    def _answer(self, environ, start_response, status: int, code: str, message: str):
        reasons = {408: "Request Timeout", 413: "Content Too Large", 503: "Service Unavailable"}
        payload = json.dumps({"error": {"code": code, "message": message}}).encode()
        force_close(start_response)
        start_response(f"{status} {reasons[status]}", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return AfterResponse([payload], lambda: self.stopping or linger(environ))
