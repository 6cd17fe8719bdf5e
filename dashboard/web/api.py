"""JSON API: the latest sample, chart history, alert history with its evidence, and health."""

from __future__ import annotations

import math

from flask import Blueprint, Response, jsonify, request

from ..store.audit import StoreUnavailable
from .auth import may_see_host
from ..stream.events import to_json
from ..stream.windows import NoHistory
from .common import error, host_view, services

bp = Blueprint("api", __name__)


@bp.get("/api/snapshot")
def snapshot():
    view, problem = host_view()
    if problem:
        return problem
    body = view.snapshot_json()
    if body is None:
        return error(503, "no_sample", "no sample has been taken yet; retry in a second")
    # The sample's own JSON (not the event's compact form), encoded once per sample.
    return Response(body, mimetype="application/json")


@bp.get("/api/hosts")
def hosts():
    return jsonify({"hosts": services().hosts()})


def _number(name: str, low: float, high: float, what: str):
    """(value or None, None) for ?name=, or (None, an error response)."""
    raw = request.args.get(name)
    if raw is None:
        return None, None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low < value <= high:  # NaN fails too
        return None, error(400, "bad_request", f"{name} must be {what}, not {raw[:32]!r}")
    return value, None


@bp.get("/api/history")
def history():
    svc = services()
    view, problem = host_view()
    if problem:
        return problem
    windows = svc.windows
    limit = windows.longest
    why = "HISTORY_SECONDS" if limit == svc.config["HISTORY_SECONDS"] else "the longest retention"
    seconds, problem = _number("seconds", 0, limit, f"a number above 0 and at most {limit:g} ({why})")
    if problem:
        return problem
    until, problem = _number("until", 0, 1e11, "an epoch time in seconds")
    if problem:
        return problem
    try:
        # Encoded once, compactly (a month is some 27,000 numbers), and once per
        # window and sample whoever asks (see stream.history_cache).
        body = view.history_cache.get((seconds, until), (view.latest_at, len(view.history)),
                                      lambda: to_json(windows.window(view, seconds, until)).encode())
        return Response(body, mimetype="application/json")
    except NoHistory as exc:
        return error(503, "no_history", str(exc))
    except StoreUnavailable as exc:
        return error(503, "unavailable", f"the history store cannot be read: {exc}")


@bp.get("/api/alerts")
def alerts():
    """Past alert transitions, newest first, each with the top processes when it happened."""
    svc = services()
    raw = request.args.get("n", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        return error(400, "bad_request", f"n must be a whole number from 1 to 500, not {raw[:32]!r}")
    try:
        transitions = svc.ops.alert_history(int(raw))
        rules = svc.ops.alert_rules()
    except StoreUnavailable:
        return error(503, "unavailable", "the alert history is kept in Redis, which is unreachable")
    return jsonify({"transitions": transitions, "rules": rules})


@bp.get("/healthz")
def healthz():
    ok, body = services().health(details=request.args.get("details") == "1")
    if not may_see_host():
        # A platform's health check needs only the status; the rest needs a login.
        body = {"status": body["status"]}
    return jsonify(body), 200 if ok else 503
