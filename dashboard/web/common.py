"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import Protocol, TypeVar

from flask import current_app, jsonify, request

from ..store.audit import StoreUnavailable
from ..stream.views import HostView


class Viewed(Protocol):
    """What `host_view` uses of the process served."""

    def view(self, host: str | None = None) -> HostView: ...


T = TypeVar("T")


def serving(uses: type[T]) -> T:
    """The process this app serves (dashboard.wiring.Instance), typed as the Protocol of what
    the calling module uses: each blueprint declares its own few needs next to its code."""
    return current_app.extensions["dashboard"]



# Scripts, styles and connections from this origin only, no frames, no inline
# code: an injected tag can load nothing from elsewhere. img-src allows data:
# for the favicon the page draws (the alert count).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response):
    """after_request for every answer (and stream_front.py's, made outside Flask)."""
    # A login URL carries its token in the query: never pass it on as a referrer.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


def error(status: int, code: str, message: str, **extra):
    """The JSON error body every endpoint uses: {"error": {"code", "message"}}."""
    return jsonify({"error": {"code": code, "message": message, **extra}}), status


def host_view():
    """(view, None) for ?host= (this host by default), or (None, an error response)."""
    host = request.args.get("host") or None
    try:
        return serving(Viewed).view(host), None
    except KeyError:
        return None, error(404, "unknown_host", f"no host named {host[:100]!r}; see /api/hosts")
    except StoreUnavailable:
        return None, error(503, "unavailable", "other hosts are shown through Redis, which is unreachable")
