"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app, jsonify, request

from .audit import StoreUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from .services import Services


def services() -> "Services":
    return current_app.extensions["dashboard"]


def error(status: int, code: str, message: str, **extra):
    """The JSON error body every endpoint uses: {"error": {"code", "message"}}."""
    return jsonify({"error": {"code": code, "message": message, **extra}}), status


def host_view():
    """(view, None) for ?host= (this host by default), or (None, an error response)."""
    host = request.args.get("host") or None
    try:
        return services().view(host), None
    except KeyError:
        return None, error(404, "unknown_host", f"no host named {host[:100]!r}; see /api/hosts")
    except StoreUnavailable:
        return None, error(503, "unavailable", "other hosts are shown through Redis, which is unreachable")
