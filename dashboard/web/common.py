"""Small helpers shared by the blueprints."""

from __future__ import annotations

from typing import Protocol

from flask import current_app, jsonify, request

from ..console.operations import Operations
from ..console.sessions import Consoles, Desk
from ..control.tally import Counters
from ..store.audit import AuditStore, StoreUnavailable
from ..stream.fleet_board import FleetBoard
from ..stream.views import HostView, Views
from ..stream.windows import Windows
from ..store.login_epoch import RedisLoginEpoch, SqliteLoginEpoch
from .budgets import LoginBudget
from .credentials import Tokens
from .throttle import Throttle


class Instance(Protocol):
    """What the blueprints use of the process they serve (dashboard.wiring.Instance)."""

    host: str
    version: str
    config: dict
    shutting_down: bool
    tokens: Tokens
    throttle: Throttle
    history_budget: LoginBudget  # /api/history answers built per login
    audit: AuditStore
    login_epoch: RedisLoginEpoch | SqliteLoginEpoch  # the generation cookies carry, and whether one is still a login
    consoles: Consoles
    desk: Desk
    views: Views
    board: FleetBoard  # the fleet at a glance (/api/fleet, /fleet/events)
    windows: Windows  # /api/history's tiers
    ops: Operations  # alert_history, alert_rules

    def view(self, host: str | None = None) -> HostView: ...
    def hosts(self) -> list[dict]: ...
    def health(self, details: bool = False) -> tuple[bool, dict]: ...
    def stats(self) -> Counters: ...  # what /metrics exports besides samples and hubs
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
