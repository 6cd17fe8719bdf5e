"""Operator authentication: tokens, sessions, and who may open the console.

- Tokens come from OPERATOR_TOKEN (role operator) and OBSERVER_TOKEN (role
  observer, read-only commands). When OPERATOR_TOKEN is unset a token is made
  at start and a login URL printed, as Jupyter does.
- The page trades a token once (POST /login) for a signed, HttpOnly,
  SameSite=Strict session cookie; command-line clients send
  `Authorization: Bearer <token>` instead. Tokens are compared in constant
  time (as SHA-256 digests, so not even their length leaks) and never logged.
- The console's WebSocket handshake is refused before the upgrade: 403 when a
  browser's Origin is not allowed (the app's own origin plus ALLOWED_ORIGINS,
  compared exactly), 401 without a valid session or bearer token. A client
  that sends no Origin is not a browser and must use a bearer token.
- Every state-changing POST checks Origin the same way and takes JSON only, so
  a form on another site cannot submit it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import time

from flask import Blueprint, current_app, g, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface

from ..console.operator import Operator
from .common import error, services

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,32}")

bp = Blueprint("auth", __name__)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class Tokens:
    def __init__(self, operator_token: str, observer_token: str = "") -> None:
        if not operator_token:
            raise ValueError("an operator token is required")
        self._operator = _digest(operator_token)
        self._observer = _digest(observer_token) if observer_token else None

    def role_for(self, presented: str | None) -> str | None:
        """The role a presented token grants, or None. Constant time."""
        given = _digest(presented or "")
        is_operator = hmac.compare_digest(given, self._operator)
        is_observer = self._observer is not None and hmac.compare_digest(given, self._observer)
        if not presented:
            return None
        return "operator" if is_operator else "observer" if is_observer else None


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def new_token() -> str:
    return secrets.token_urlsafe(24)


# ---- origins -------------------------------------------------------------------


def own_origin() -> str:
    return f"{request.scheme}://{request.host}".lower()


def origin_allowed(origin: str) -> bool:
    allowed = {own_origin()} | {o.rstrip("/").lower() for o in current_app.config["ALLOWED_ORIGINS"]}
    return origin.lower() in allowed


def refuse_foreign_origin():
    """403 for a browser request from another origin; None when it may go on."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin):
        return error(403, "forbidden_origin", f"origin {origin[:100]!r} is not allowed")
    return None


# ---- who is asking -------------------------------------------------------------


def session_operator() -> Operator | None:
    sid = session.get("sid")
    role = session.get("role")
    if not sid or role not in ("operator", "observer"):
        return None
    if services().audit.is_revoked(sid):
        return None
    return Operator(session.get("op", role), role, sid, request.remote_addr or "?", "cookie")


def bearer_operator() -> Operator | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    role = services().tokens.role_for(token.strip())
    if role is None:
        return None
    name = request.headers.get("X-Operator-Name", "")
    name = name if NAME.fullmatch(name) else "cli"
    return Operator(name, role, "b-" + secrets.token_hex(6), request.remote_addr or "?", "bearer")


def guard_console():
    """before_request of the console's WebSocket route."""
    refused = refuse_foreign_origin()
    if refused is not None:
        return refused
    op = bearer_operator()
    if op is None and request.headers.get("Origin") is not None:
        op = session_operator()
    if op is None:
        if request.headers.get("Origin") is None and session.get("sid"):
            message = "a client that sends no Origin must authenticate with Authorization: Bearer"
        else:
            message = "log in first (POST /login) or send Authorization: Bearer <token>"
        return error(401, "unauthorized", message)
    g.operator = op
    # permessage-deflate stays off (compression and secrets do not mix, and it
    # costs memory per socket): the server only agrees to what is offered.
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)
    return None


# ---- login and logout ------------------------------------------------------------


def state_changing(view):
    """For POSTs that change state: same-origin browsers only, JSON bodies only.

    A form on another site can post neither (forms cannot send JSON, and a
    script that could would be stopped by the Origin check), so this is the
    CSRF defence, cookie or no cookie."""

    @functools.wraps(view)
    def checked():
        refused = refuse_foreign_origin()
        if refused is not None:
            return refused
        if not request.is_json:
            return error(415, "unsupported_media_type", "send a JSON body (Content-Type: application/json)")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error(400, "bad_request", "the body must be a JSON object")
        return view(body)

    return checked


@bp.post("/login")
@state_changing
def login(body: dict):
    svc = services()
    token = body.get("token")
    role = svc.tokens.role_for(token if isinstance(token, str) else None)
    addr = request.remote_addr or "?"
    if role is None:
        svc.audit_login("login", "-", "-", "-", addr, "bad_token")
        return error(401, "bad_token", "that token is not valid")
    name = body.get("name") or role
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return error(400, "bad_request", "name: 1 to 32 letters, digits or . _ @ -")
    session.clear()
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(12)
    session["role"] = role
    session["op"] = name
    session["iat"] = int(time.time())
    svc.audit_login("login", name, role, session["sid"], addr, "ok")
    return jsonify({"authenticated": True, "operator": name, "role": role})


@bp.post("/logout")
@state_changing
def logout(body: dict):
    op = session_operator()
    session.clear()
    if op is None:
        return jsonify({"authenticated": False})
    svc = services()
    expires = time.time() + current_app.permanent_session_lifetime.total_seconds()
    closed = svc.end_session(op.session, expires)
    svc.audit_login("logout", op.name, op.role, op.session, op.addr, "ok")
    return jsonify({"authenticated": False, "closed_consoles": closed})


@bp.get("/api/session")
def whoami():
    op = session_operator()
    if op is None:
        return jsonify({"authenticated": False})
    return jsonify({"authenticated": True, "operator": op.name, "role": op.role})
