"""JSON API: the latest sample, chart history, alert history with its evidence, and health."""

from __future__ import annotations

import math
from typing import Protocol

from flask import Blueprint, Response, jsonify, request

from ..store.audit import StoreUnavailable
from .auth import current_login, may_see_host
from ..stream.events import to_json
from ..stream.container_history import SORTS
from ..stream.windows import NoHistory
from ..console.operations import Operations
from ..logs import Refusals
from ..stream.windows import Windows
from .budgets import LoginBudget
from .common import error, host_view, serving

bp = Blueprint("api", __name__)


class Serves(Protocol):
    """What the JSON API uses of the process it serves."""

    config: dict
    windows: Windows  # /api/history's tiers
    history_budget: LoginBudget  # /api/history answers built per login
    refusals: Refusals
    ops: Operations  # alert_history, alert_rules

    def hosts(self) -> list[dict]: ...
    def health(self, details: bool = False) -> tuple[bool, dict]: ...


def services() -> Serves:
    return serving(Serves)


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
        # Rounded to the step it is answered at, so near-equal windows share one
        # answer; encoded once, compactly (a month is some 27,000 numbers), and
        # once per window and sample whoever asks (see stream.history_cache).
        key = windows.canonical(view, seconds, until)
        return _cached(svc, view, key, (view.latest_at, len(view.history)), lambda: windows.window(view, *key))
    except NoHistory as exc:
        return error(503, "no_history", str(exc))
    except StoreUnavailable as exc:
        return error(503, "unavailable", f"the history store cannot be read: {exc}")


@bp.get("/api/containers/history")
def container_history():
    """The busiest containers' CPU and memory (% of their limits) over the last `seconds`."""
    svc = services()
    view, problem = host_view()
    if problem:
        return problem
    limit = svc.config["HISTORY_SECONDS"]
    seconds, problem = _number("seconds", 0, limit, f"a number above 0 and at most {limit:g} (HISTORY_SECONDS)")
    if problem:
        return problem
    top, problem = _number("top", 0, 20, "a whole number from 1 to 20")
    if problem:
        return problem
    if top is not None and top != int(top):
        return error(400, "bad_request", f"top must be a whole number from 1 to 20, not {request.args['top'][:32]!r}")
    by = request.args.get("by", "cpu")
    if by not in SORTS:
        return error(400, "bad_request", f"by must be cpu or mem, not {by[:32]!r}")
    key = ("containers", int(seconds or limit), int(top or 5), by)
    return _cached(svc, view, key, (view.latest_at, len(view.containers)), lambda: view.containers.columns(*key[1:]))


def _cached(svc, view, key, version, build):
    """An answer from the view's cache while `version` (its latest sample) is the same; else
    built, if this login's budget allows, encoded once and kept (see stream.history_cache)."""
    if not view.history_cache.fresh(key, version):
        refused = _over_budget(svc)
        if refused is not None:
            return refused
    body = view.history_cache.get(key, version, lambda: to_json(build()).encode())
    return Response(body, mimetype="application/json")


def _over_budget(svc):
    """429 when this login has had HISTORY_BUILDS_PER_MINUTE answers built for it; None otherwise.

    Only answers that must be built count: one the cache holds costs next to nothing."""
    op, _ = current_login()
    addr = request.remote_addr or "?"
    wait = svc.history_budget.take(op.login if op is not None else f"anonymous:{addr}")
    if not wait:
        return None
    seconds = max(1, math.ceil(wait))
    per_minute = svc.config["HISTORY_BUILDS_PER_MINUTE"]
    svc.refusals.note("history_budget", addr, f"history windows over {per_minute} a minute for one login")
    response, status = error(
        429, "too_many_requests",
        f"this login asked for more than {per_minute} history windows a minute that had to be built "
        f"(HISTORY_BUILDS_PER_MINUTE); retry in {seconds} s", retry_after=seconds)
    response.headers["Retry-After"] = str(seconds)
    return response, status


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
