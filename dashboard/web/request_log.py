"""One log line per request (page, API, stream, console socket), with its id.

Streams and sockets are logged when they end, with how long they lasted: a
WebSocket route returns only when the socket closes, and /events logs its own
end (events and bytes sent, why it ended). Paths are logged without their
query string, which may hold a login token.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request

from ..logs import current_request_id, request_id

log = logging.getLogger("dashboard.request")


def install(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID"))
        g.started = time.perf_counter()
        current_request_id.set(g.request_id)

    @app.after_request
    def finish(response):
        rid = g.get("request_id") or request_id(None)
        response.headers["X-Request-ID"] = rid
        line(response, rid, request.method, request.path, request.remote_addr, g.get("started"),
             request.environ.get("HTTP_UPGRADE", "").lower() == "websocket")
        return response


def line(response, rid: str, method: str, path: str, remote: str | None, started: float | None,
         websocket: bool = False) -> None:
    """The request's log line (also written by stream_front.py, which answers outside Flask)."""
    streaming = response.mimetype == "text/event-stream" and response.is_streamed
    log.info(
        "request",
        extra={
            "request_id": rid,
            "fields": {
                "method": method,
                "path": path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - (started or time.perf_counter())) * 1000, 2),
                "remote": remote,
                "bytes": response.content_length,  # the header only: never consume a stream
                **({"stream": "opened"} if streaming else {}),
                **({"websocket": True} if websocket else {}),
            },
        },
    )
