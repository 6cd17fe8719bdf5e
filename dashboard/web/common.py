"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app, jsonify, request

from ..console.sessions import Consoles, Desk
from ..store.audit import AuditStore, StoreUnavailable
from ..stream.views import HostView, Views


class Instance(Protocol):
    """What the blueprints use of the process they serve (dashboard.wiring.Instance)."""

    host: str
    version: str
    config: dict
    shutting_down: bool
    tokens: Any  # web.credentials.Tokens
    throttle: Any  # web.throttle.Throttle
    history_budget: Any  # web.budgets.LoginBudget: /api/history answers built per login
    audit: AuditStore
    login_epoch: Any  # store.login_epoch: the generation cookies carry, and whether one is still a login
    consoles: Consoles
    desk: Desk
    views: Views
    windows: Any  # stream.windows.Windows: /api/history's tiers
    sampler: Any  # for /metrics and health: interval, running, last_duration
    fleet: Any
    shared: bool
    command_counts: dict
    command_latency: Any
    ops: Any  # console.operations.Operations: alert_history, alert_rules
    notifier: Any  # alerts.delivery.Notifier: counters for /metrics
    refusals: Any  # logs.Refusals: clients turned away, by reason
    body_limits: Any  # web.body_limits.BodyLimits
    audit_summary: Any  # store.audit_summary.AuditSummary

    def view(self, host: str | None = None) -> HostView: ...
    def hosts(self) -> list[dict]: ...
    def health(self, details: bool = False) -> tuple[bool, dict]: ...
    def end_session(self, sid: str, expires: float) -> tuple[int, int]: ...  # consoles, streams closed
    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None: ...


def services() -> Instance:
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
