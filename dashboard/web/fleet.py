"""The fleet at a glance: GET /fleet (the page), /api/fleet (every host's summary) and
/fleet/events (what changed, at most once a second, as server-sent events).

The stream is the same machinery as /events (a hub, its ring and the sockets it
owns), over the process's `FleetBoard`. A page loads /api/fleet, then follows
/fleet/events?last_event_id=<its last_event_id>; EventSource resumes with
Last-Event-ID, on any web process. Same access rules as /events.
"""

from __future__ import annotations

from typing import Protocol

from flask import Blueprint, Response, g, render_template, request

from ..stream import sse
from ..stream.events import to_json
from .auth import may_see_host
from .budgets import KEEP_CONNECTION
from ..stream.fleet_board import FleetBoard
from .common import serving
from .events import HEADERS, OwnedStream, _raw_socket

bp = Blueprint("fleet", __name__)


class Serves(Protocol):
    """What the fleet view uses of the process it serves."""

    host: str
    shutting_down: bool
    board: FleetBoard  # the fleet at a glance: summaries and their stream


def services() -> Serves:
    return serving(Serves)


@bp.get("/fleet")
def page():
    svc = services()
    locked = not may_see_host()
    return render_template("fleet.html", locked=locked, host="" if locked else svc.host)


@bp.get("/api/fleet")
def summaries():
    return Response(to_json(services().board.snapshot()), mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


@bp.route("/fleet/events", methods=["GET"])
def events():
    svc = services()
    if request.method == "HEAD":
        return Response(b"", mimetype="text/event-stream", headers=HEADERS)
    if svc.shutting_down:
        return Response(sse.retry(1000) + sse.comment("server restarting"),
                        mimetype="text/event-stream", headers=HEADERS)
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id is None:
        last_event_id = request.args.get("last_event_id")
    hub = svc.board.hub
    environ = request.environ
    sock = _raw_socket(environ)
    chunked = environ.get("SERVER_PROTOCOL") == "HTTP/1.1"
    who = g.get("login")
    opened = dict(host="(fleet)", client=None, login=who.session if who is not None else None,
                  addr=request.remote_addr or "?")
    if sock is not None:
        keep = environ.get(KEEP_CONNECTION)
        return OwnedStream(hub, last_event_id, sock, chunked, opened, lambda sub: None,
                           keep() if keep else None, iter(()), mimetype="text/event-stream", headers=HEADERS)

    def body():
        sub, preamble = hub.open(last_event_id, chunked=chunked, **opened)
        try:
            yield preamble
            yield from hub.iter_frames(sub)
        finally:
            hub.release(sub)

    return Response(body(), mimetype="text/event-stream", headers=HEADERS)
