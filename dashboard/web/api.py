"""JSON API: the latest sample, chart history and health."""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, jsonify, request

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


@bp.get("/healthz")
def healthz():
    ok, body = services().health(details=request.args.get("details") == "1")
    return jsonify(body), 200 if ok else 503
