"""GET /events: the metrics stream (server-sent events), one blueprint, thin.

The view only picks how bytes reach the client; the hub does the rest. Under
gunicorn (HTTP/1.x) the stream writes its own head and first bytes, then the
hub owns the connection and writes pre-framed events straight to it, with no
greenlet per viewer (OwnedStream below). Anywhere else (Flask's test client,
the development server) the stream follows the same buffer through the WSGI
iterator.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Protocol

from flask import Blueprint, Response, g, request
from werkzeug.http import http_date

from ..stream import sse
from .body_limits import force_close
from .budgets import KEEP_CONNECTION
from .common import host_view, serving

bp = Blueprint("stream", __name__)


class Serves(Protocol):
    """What the event stream uses of the process it serves (besides the host's view)."""

    shutting_down: bool


def services() -> Serves:
    return serving(Serves)
log = logging.getLogger("dashboard.stream")

# A name the page may give its stream (?client=...), so an operator can drop it.
_CLIENT = re.compile(r"[A-Za-z0-9_-]{1,40}")

HEADERS = {
    # no-transform: proxies and CDNs must not compress or buffer the stream.
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: pass each write through at once
}


def _raw_socket(environ):
    """The client socket when we may write to it ourselves, else None."""
    if environ.get("SERVER_PROTOCOL") not in ("HTTP/1.0", "HTTP/1.1"):
        return None
    return environ.get("gunicorn.socket")


@bp.route("/events", methods=["GET"])
def events():
    svc = services()
    if request.method == "HEAD":
        return Response(b"", mimetype="text/event-stream", headers=HEADERS)
    if svc.shutting_down:
        # A request on a kept-alive connection after SIGTERM (draining): start
        # no stream here. A clean, short answer (a 200: a 5xx would end
        # EventSource for good) makes it reconnect after a jittered SSE_RETRY_MS,
        # to whichever process serves next.
        return ComeBack(sse.retry(svc.views.local.hub.jittered_retry()) + sse.comment("server restarting"),
                        mimetype="text/event-stream", headers=HEADERS)
    wait_ms = svc.views.admission.admit()
    if wait_ms is not None:
        return deferred(svc, wait_ms, request.remote_addr or "?")
    # EventSource sends Last-Event-ID on reconnects; a page opening a fresh
    # stream after loading history passes it as a query parameter instead.
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is None:
        last_event_id = request.args.get("last_event_id")
    view, problem = host_view()
    if problem:
        return problem
    who = g.get("login")
    return stream(view, request.environ, last_event_id, request.args.get("client"),
                  who.session if who is not None else None, g.get("request_id"), request.remote_addr or "?")


def deferred(svc, wait_ms: int, addr: str) -> Response:
    """The answer to a stream admission put off (also stream_front.py's)."""
    # More new streams than STREAM_OPENS_PER_SECOND (a restart's storm): come back after
    # a random delay. A 200 stream with a retry: and no id (the client keeps its
    # Last-Event-ID): EventSource and the page both reconnect by themselves.
    svc.refusals.note("stream_deferred", addr, "new streams deferred (STREAM_OPENS_PER_SECOND)")
    return ComeBack(sse.retry(wait_ms) + sse.comment("busy, come back later"),
                    mimetype="text/event-stream", headers=HEADERS)


def stream(view, environ, last_event_id: str | None, client: str | None, login: str | None,
           rid: str | None, addr: str) -> Response:
    """The response that opens an admitted stream of view (also stream_front.py's):
    client is the name the page asked for, login the session that opens it."""
    sock = _raw_socket(environ)
    chunked = environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
    hub = view.hub
    client = client if client and _CLIENT.fullmatch(client) else None
    opened = dict(host=view.name, client=client, login=login, addr=addr)

    def ended(sub) -> None:
        log.info("stream closed", extra={"request_id": rid, "fields": {
            "host": view.name, "remote": addr, "events": sub.events, "bytes": sub.bytes,
            "seconds": round(time.time() - sub.since, 3), "reason": sub.reason or "client went away"}})

    if sock is not None:
        keep = environ.get(KEEP_CONNECTION)
        return OwnedStream(hub, last_event_id, sock, chunked, opened, ended, keep() if keep else None,
                           iter(()), mimetype="text/event-stream", headers=HEADERS)

    def body():
        # Registered on first iteration, so a response that is never sent
        # leaves nothing behind.
        sub, preamble = hub.open(last_event_id, chunked=chunked, **opened)
        try:
            yield preamble
            yield from hub.iter_frames(sub)
        finally:
            hub.release(sub)
            ended(sub)

    return Response(body(), mimetype="text/event-stream", headers=HEADERS)


class ComeBack(Response):
    """A short stream telling the client when to come back; the connection closes after it,
    so a client sent away holds no worker connection while it waits (and a test client
    reading chunks sees the end at once)."""

    def __call__(self, environ, start_response):
        force_close(start_response)
        return super().__call__(environ, start_response)


class OwnedStream(Response):
    """A stream whose connection the hub takes over once its head is written.

    Flask has run (login, headers, the request log); calling this writes the
    status line, the headers and the preamble on a duplicate of the socket,
    hands that to the hub and raises StopIteration: gunicorn's way for an app
    to say it took the connection (flask-sock ends its sockets the same way).
    gunicorn then closes its own descriptor and the request's greenlet ends;
    the viewer lives on as a socket in the hub, with no stack of its own."""

    def __init__(self, hub, last_event_id, sock, chunked: bool, opened: dict, ended, release_slot,
                 *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stream = (hub, last_event_id, sock, chunked, opened, ended, release_slot)

    def __call__(self, environ, start_response):
        hub, last_event_id, sock, chunked, opened, ended, release_slot = self._stream
        try:
            own = sock.dup()
        except OSError as exc:  # out of descriptors: say so, and free the slot
            if release_slot is not None:
                release_slot()
            body = json.dumps({"error": {"code": "server_full", "message": f"cannot open a stream now: {exc}",
                                         "retry_after": 5}}).encode()
            start_response("503 Service Unavailable", [("Content-Type", "application/json"),
                                                       ("Content-Length", str(len(body))), ("Retry-After", "5")])
            return [body]
        sub, preamble = hub.open(last_event_id, sock=own, chunked=chunked, **opened)

        def on_end(sub) -> None:
            if release_slot is not None:
                release_slot()  # the client's connection slot, held while the stream was open
            ended(sub)

        sub.on_end = on_end
        head = head_bytes(self.status, self.headers.to_wsgi_list(), chunked)
        try:
            own.settimeout(hub.write_timeout)
            own.sendall(head + (sse.chunk(preamble) if chunked else preamble))
        except OSError as exc:
            hub.abort(sub, f"write failed: {getattr(exc, 'strerror', None) or exc}")
        else:
            hub.attach(sub)
        raise StopIteration  # the connection is the hub's now


_date: tuple[int, str] = (-1, "")  # the last second a Date header was made for, and that header


def _date_now() -> str:
    # Formatting a date is a few per cent of an open; it changes once a second.
    global _date
    second = int(time.time())
    if second != _date[0]:
        _date = (second, http_date(second))
    return _date[1]


def head_bytes(status: str, headers: list[tuple[str, str]], chunked: bool) -> bytes:
    """The response head gunicorn would have written for a stream."""
    lines = [f"{'HTTP/1.1' if chunked else 'HTTP/1.0'} {status}", f"Date: {_date_now()}",
             "Connection: close"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    lines += [f"{name}: {value}" for name, value in headers
              if name.lower() not in ("content-length", "connection", "transfer-encoding")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
