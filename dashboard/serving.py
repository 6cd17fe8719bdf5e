"""gunicorn integration: start work after the fork, end streams on SIGTERM, answer in JSON.

gunicorn's gevent worker waits up to `graceful_timeout` for open connections
after SIGTERM, and event streams never finish by themselves. So a greenlet
watches the worker's `alive` flag (cleared by the signal handler) and ends
every stream itself: the process exits in about a second, and EventSource
reconnects with Last-Event-ID to whatever serves next.

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

import json

import gevent
from gunicorn.http import errors as http
from gunicorn.util import write_nonblock
from gunicorn.workers.ggevent import GeventWorker

from .web.body_limits import linger


def post_worker_init(worker) -> None:
    svc = worker.wsgi.extensions["dashboard"]
    svc.ensure_started()
    gevent.spawn(_end_streams_on_exit, worker, svc)


def _end_streams_on_exit(worker, svc) -> None:
    while worker.alive:
        gevent.sleep(0.2)
    svc.shutdown("server shutting down")


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


class Worker(GeventWorker):
    """gunicorn's gevent worker, answering its own refusals and faults in JSON."""

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
