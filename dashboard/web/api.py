"""JSON API: the latest sample, chart history, alert history with its evidence, and health."""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, jsonify, request

from ..store.audit import StoreUnavailable
from .auth import may_see_host
from .common import error, host_view, services

bp = Blueprint("api", __name__)


@bp.get("/api/snapshot")
def snapshot():
    view, problem = host_view()
    if problem:
        return problem
    if view.latest_json is None:
        return error(503, "no_sample", "no sample has been taken yet; retry in a second")
    # The sample's JSON was encoded once when it was published; reuse it.
    return Response(view.latest_json, mimetype="application/json")


@bp.get("/api/hosts")
def hosts():
    return jsonify({"hosts": services().hosts()})


@bp.get("/api/history")
def history():
    svc = services()
    view, problem = host_view()
    if problem:
        return problem
    limit = svc.config["HISTORY_SECONDS"]
    raw = request.args.get("seconds")
    seconds = None
    if raw is not None:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if not 0 < seconds <= limit:  # NaN fails too
            return error(
                400,
                "bad_request",
                f"seconds must be a number above 0 and at most {limit} (HISTORY_SECONDS), "
                f"not {raw[:32]!r}",
            )
    # Encoded once per window and sample, whoever asks (see stream.history_cache).
    body = view.history_cache.get(seconds, (view.latest_at, len(view.history)), lambda: json.dumps(
        {**view.history.columns(seconds), "host": view.name}, separators=(",", ":")).encode())
    return Response(body, mimetype="application/json")


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
