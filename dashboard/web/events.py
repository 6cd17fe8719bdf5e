"""GET /events: the metrics stream (server-sent events), one blueprint, thin.

The view only picks how bytes reach the client; the hub does the rest. Under
gunicorn (HTTP/1.x) the server sends the headers and the first bytes, then the
hub writes pre-framed events straight to the socket. Anywhere else (Flask's
test client, the development server) the stream follows the same buffer
through the WSGI iterator.
"""

from __future__ import annotations

import logging
import re
import socket
import time

from flask import Blueprint, Response, g, request

from ..stream import sse
from .common import host_view, services

bp = Blueprint("stream", __name__)
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
        # A request on a kept-alive connection after SIGTERM: start no stream
        # here. A clean, short answer makes EventSource reconnect in a second,
        # to whichever process serves next.
        return Response(sse.retry(1000) + sse.comment("server restarting"),
                        mimetype="text/event-stream", headers=HEADERS)
    # EventSource sends Last-Event-ID on reconnects; a page opening a fresh
    # stream after loading history passes it as a query parameter instead.
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is None:
        last_event_id = request.args.get("last_event_id")
    view, problem = host_view()
    if problem:
        return problem
    environ = request.environ
    sock = _raw_socket(environ)
    chunked = environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
    hub = view.hub
    addr = request.remote_addr or "?"
    client = request.args.get("client")
    client = client if client and _CLIENT.fullmatch(client) else None

    rid = g.get("request_id")
    who = g.get("login")
    login = who.session if who is not None else None

    def body():
        # Registered on first iteration, so a response that is never sent
        # leaves nothing behind.
        sub, preamble = hub.open(last_event_id, sock=sock, chunked=chunked, addr=addr, host=view.name,
                                client=client, login=login)
        try:
            yield preamble
            if sock is not None:
                hub.serve_socket(sub)
            else:
                yield from hub.iter_frames(sub)
        finally:
            hub.release(sub)
            log.info("stream closed", extra={"request_id": rid, "fields": {
                "host": view.name, "remote": addr, "events": sub.events, "bytes": sub.bytes,
                "seconds": round(time.time() - sub.since, 3), "reason": sub.reason or "client went away"}})
            if sock is not None and svc.shutting_down:
                # The server appends the final chunk, then would wait for a next
                # request on this connection; EOF on read makes it close at once.
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass

    return Response(body(), mimetype="text/event-stream", headers=HEADERS)
