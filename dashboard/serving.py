"""gunicorn integration: start work after the fork, leave cleanly on a signal, answer in JSON.

Leaving. gunicorn's gevent worker, once its `alive` flag is cleared, stops
accepting, waits for the requests its pool still runs and returns, and the
process exits. Event streams are not in that pool (the hub owns their
sockets), so without help the worker could exit mid-shutdown: streams cut
without their final chunk, a sample shown to viewers but not yet written to
the store. `Worker` therefore:

- on SIGTERM (a platform's restart or deploy) starts the app's slow drain
  (`Instance.leave` with DRAIN_SECONDS): streams and consoles end at random
  moments over the window, while the sampler and stores keep serving the rest;
- on SIGINT or SIGQUIT (Ctrl-C at a terminal, gunicorn's quick stop) leaves at
  once: every stream ends with its final chunk, every console gets 1001, and
  the worker returns normally (gunicorn's own quit handler calls sys.exit in a
  greenlet, which gevent prints as a `SystemExit: 0` traceback);
- returns from `run` only once the app has stopped everything (`left`);
- then ends the kept-alive connections that wait for a next request
  (keepalive is 100 s, above Heroku's router's 90 s): gunicorn would wait
  for them up to graceful_timeout. One that is mid-request finishes it and
  is closed after its answer (gunicorn adds `Connection: close` once the
  worker is not alive).

gunicorn refuses some requests itself, before the app sees them: a request
line over `limit_request_line` (414), too many or too long header fields
(431), a request that is not HTTP (400). Its answer is an HTML page; `Worker`
(gunicorn.conf.py's worker_class) answers the app's way instead, a JSON
`{"error": {"code", "message"}}` with `Connection: close`, counts and logs the
refusal like the app's own (once per client, reason and minute; never the
request's text, whose query may hold a login token), then closes lingering so
the answer is not lost to a reset.
"""

from __future__ import annotations

import _socket
import json
import time

import gevent
from gunicorn.http import errors as http
from gunicorn.util import write_nonblock
from gunicorn.workers.ggevent import GeventWorker

from .web.body_limits import linger


def post_worker_init(worker) -> None:
    worker.wsgi.extensions["dashboard"].ensure_started()


def refusal(exc: BaseException, cfg) -> tuple[int, str, str, str] | None:
    """(status, reason phrase, code, message) for a request gunicorn refused, or None for a fault of ours."""
    if isinstance(exc, (http.InvalidResponseHeader, http.InvalidResponseHeaderName, http.ConfigurationProblem)):
        return None  # the app's response or the server's settings, not the client
    if isinstance(exc, http.LimitRequestLine):
        return 414, "URI Too Long", "uri_too_long", \
            f"the request line (method, path and query) is longer than {cfg.limit_request_line} bytes"
    if isinstance(exc, http.LimitRequestHeaders):
        too_long = "size" in str(getattr(exc, "msg", ""))  # gunicorn says "... fields size" or "... fields"
        what = (f"a header field longer than {cfg.limit_request_field_size} bytes" if too_long
                else f"more than {cfg.limit_request_fields} header fields")
        return 431, "Request Header Fields Too Large", "headers_too_large", f"the request has {what}"
    if isinstance(exc, http.ExpectationFailed):
        return 417, "Expectation Failed", "expectation_failed", "the only Expect understood is 100-continue"
    if isinstance(exc, http.UnsupportedTransferCoding):
        return 501, "Not Implemented", "not_implemented", "the only transfer coding understood is chunked"
    if isinstance(exc, (http.InvalidRequestLine, http.InvalidRequestMethod, http.InvalidHTTPVersion)):
        return 400, "Bad Request", "bad_request", "the request line is not METHOD /path HTTP/1.1"
    if isinstance(exc, (http.InvalidHeader, http.InvalidHeaderName, http.ObsoleteFolding)):
        return 400, "Bad Request", "bad_request", "a header field is malformed"
    if isinstance(exc, (http.InvalidChunkSize, http.ChunkMissingTerminator, http.InvalidChunkExtension)):
        return 400, "Bad Request", "bad_request", "the chunked body is malformed"
    if isinstance(exc, http.ParseException):
        return 400, "Bad Request", "bad_request", "not a valid HTTP/1.1 request"
    return None


def json_error(status: int, phrase: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + body


# Seconds a new connection has to send its first request's headers (see Worker.timeout_ctx).
FIRST_REQUEST_SECONDS = 10


def _app_services(worker):
    """The app's Instance, once the worker has loaded the app (None before)."""
    return getattr(getattr(worker, "wsgi", None), "extensions", {}).get("dashboard")


class Worker(GeventWorker):
    """gunicorn's gevent worker, leaving cleanly and answering its own refusals and faults in JSON."""

    left_at: float | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.connections: dict = {}  # client socket -> True while it runs a request, False while idle
        self._served: set = set()  # the greenlets of connections that have had a request answered

    def timeout_ctx(self):
        # gunicorn waits `keepalive` for a request's first byte and for its headers alike.
        # A connection that has had an answer may wait that long for its next request (a
        # router's pooled connection); a new one gets FIRST_REQUEST_SECONDS, as before the
        # keep-alive grew, so opening sockets and sending nothing (or headers byte by
        # byte) cannot hold worker connections for the whole keep-alive time.
        served = gevent.getcurrent() in self._served
        return gevent.Timeout(self.cfg.keepalive if served else min(self.cfg.keepalive, FIRST_REQUEST_SECONDS),
                              False)

    def handle(self, listener, client, addr) -> None:
        self.connections[client] = False
        try:
            super().handle(listener, client, addr)
        finally:
            self.connections.pop(client, None)
            self._served.discard(gevent.getcurrent())

    def handle_request(self, listener_name, req, sock, addr) -> None:
        self.connections[sock] = True
        self._served.add(gevent.getcurrent())
        try:
            super().handle_request(listener_name, req, sock, addr)
        finally:
            if sock in self.connections:
                self.connections[sock] = False

    def end_idle_connections(self) -> int:
        """End every kept-alive connection that waits for its next request (at leaving)."""
        idle = [sock for sock, busy in self.connections.items() if not busy]
        for sock in idle:
            self._end_if_idle(sock)
        return len(idle)

    @staticmethod
    def _end_if_idle(sock) -> None:
        # Its reader then sees the end of input and the connection closes as if the
        # client had left. Through the kernel, not gevent's socket: gevent's shutdown
        # cancels the waiting read with an error gunicorn logs as a traceback.
        try:
            raw = _socket.socket(fileno=sock.fileno())
        except OSError:
            return  # closed meanwhile
        try:
            raw.shutdown(_socket.SHUT_RD)
        except OSError:
            pass
        finally:
            raw.detach()

    # The handlers run as plain signal handlers, between any two bytecodes of whatever
    # runs (a log line's write, say): they only note the signal and leave the work to
    # a greenlet, as gunicorn's own gevent worker does.

    def handle_exit(self, sig, frame) -> None:
        """SIGTERM: drain slowly (DRAIN_SECONDS), then stop."""
        self.alive = False
        gevent.spawn(self._leave, True)

    def handle_quit(self, sig, frame) -> None:
        """SIGINT, SIGQUIT: stop now, cleanly (also cuts a drain under way short)."""
        self.alive = False
        gevent.spawn(self._quit)

    def _quit(self) -> None:
        try:
            self.cfg.worker_int(self)
        except Exception:
            self.log.exception("worker_int hook failed")
        self._leave(False)

    def _leave(self, drain: bool) -> None:
        self.alive = False
        if self.left_at is None:
            self.left_at = time.monotonic()
        svc = _app_services(self)
        if svc is None:
            return
        svc.leave(svc.config["DRAIN_SECONDS"] if drain else 0.0)
        if getattr(self, "_ending_idle", None) is None:
            self._ending_idle = gevent.spawn(self._end_idle_when_left, svc)

    def _end_idle_when_left(self, svc) -> None:
        svc.left.wait()
        self.end_idle_connections()

    def run(self) -> None:
        super().run()  # returns once alive is cleared and the pool's requests are done
        svc = _app_services(self)
        if svc is None:
            return
        if not svc.shutting_down:  # gunicorn ended the loop itself (no signal): leave now
            svc.leave(0.0)
        spent = time.monotonic() - (self.left_at or time.monotonic())
        if not svc.left.wait(max(1.0, self.cfg.graceful_timeout - spent)):
            self.log.warning("worker leaving before its streams and stores were closed (graceful_timeout)")

    def handle_error(self, req, client, addr, exc) -> None:
        addr = addr or ("", -1)
        answer = refusal(exc, self.cfg)
        if answer is None:
            # As gunicorn logs it, but with the path alone: a query string may hold a login token.
            where = f"{req.method} {req.path}" if hasattr(req, "path") else "(no request line read)"
            self.log.exception("Error handling request %s", where)
            answer = (500, "Internal Server Error", "internal", "the server failed to answer; it is logged")
        else:
            svc = getattr(self.wsgi, "extensions", {}).get("dashboard")
            if svc is not None:
                svc.refusals.note(answer[2], str(addr[0]), answer[3])
            else:
                self.log.warning("refused %s: %s", addr[0], answer[3])
        try:
            write_nonblock(client, json_error(*answer))
        except OSError:
            return  # gone already
        linger({"gunicorn.socket": client})
