"""Who is asking, and what they may see: logins, sessions, bearer tokens, the access gate.

- With DASHBOARD_ACCESS=login (the default) nothing about the host answers
  without a login: /events, /api/* (but /api/session) and /metrics give 401
  `unauthorized`, the page shows only the login form, /healthz only its status.
  DASHBOARD_ACCESS=public opens the dashboard (never the console) to anyone.
- Roles: viewer (every dashboard), observer (also read-only console commands),
  operator (everything). Tokens and names: see credentials.py.
- The page trades a token once (POST /login) for a signed, HttpOnly,
  SameSite=Strict session cookie that remembers the token's fingerprint: a
  changed token ends the logins made with the old one. Scripts send
  `Authorization: Bearer <token>` on /events, /api/*, /metrics and /console.
- Wrong tokens are throttled per address (throttle.py): 429 with Retry-After.
- The console's handshake is refused before the upgrade: 403 for a foreign
  browser Origin or a viewer, 401 without a valid login. A client that sends
  no Origin is not a browser and must use a bearer token.
- Every state-changing POST checks Origin the same way and takes JSON only, so
  a form on another site cannot submit it.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
from typing import Protocol

from flask import Blueprint, current_app, g, jsonify, request, session
from flask.sessions import SecureCookieSessionInterface

from ..console.operator import Operator
from ..store.audit import StoreUnavailable
from ..store.login_epoch import RedisLoginEpoch, SqliteLoginEpoch
from .common import error, serving
from .credentials import METRICS, Credential, Tokens, at_least
from .throttle import Throttle

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,32}")

bp = Blueprint("auth", __name__)


class Serves(Protocol):
    """What logins use of the process they serve."""

    tokens: Tokens
    throttle: Throttle
    login_epoch: RedisLoginEpoch | SqliteLoginEpoch  # the generation cookies carry

    def end_session(self, sid: str, expires: float) -> tuple[int, int]: ...  # consoles, streams closed
    def audit_login(self, action: str, name: str, role: str, sid: str, addr: str, outcome: str) -> None: ...


def services() -> Serves:
    return serving(Serves)

UNAUTHORIZED = "log in first (POST /login) or send Authorization: Bearer <token>"
# A cookie whose logout cannot be looked up is refused, never taken on trust.
UNCHECKED = "logins cannot be checked right now (the store of logouts is unreachable); retry shortly"


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked Secure whenever the request came over HTTPS."""

    _signing: tuple | None = None  # (the keys, the serializer made from them)

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def save_outside(self, app, session, response, https: bool) -> None:
        """save_session for a response made outside Flask's request context (stream_front.py):
        the same Vary and refreshed cookie, its Secure flag from `https`."""
        SecureCookieSessionInterface.save_session(_Outside(self, https), app, session, response)

    def get_signing_serializer(self, app):
        # Flask makes a serializer per request (its constructor even serializes a test
        # value to learn its type): 3 % of a stream open. The same keys make the same
        # serializer, so one is made again only when the keys change.
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        signing = self._signing
        if signing is None or signing[0] != keys:
            signing = self._signing = (keys, super().get_signing_serializer(app))
        return signing[1]


class _Outside(SessionInterface):
    """The session interface for one response outside a request context: the scheme is given."""

    def __init__(self, inside: SessionInterface, https: bool) -> None:
        self._signing = inside._signing  # share its serializer (made on opening the session)
        self.https = https

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or self.https


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


def _addr() -> str:
    return request.remote_addr or "?"


def session_operator() -> Operator | None:
    """The cookie's login, if it is still good (see cookie_operator)."""
    op, unchecked = cookie_operator(session, services(), _addr())
    if unchecked:
        g.login_unchecked = True  # refused; require_access and guard_console say why (503)
    return op


def cookie_operator(cookie, svc: Serves, addr: str) -> tuple[Operator | None, bool]:
    """(the login a session cookie holds, unchecked): the login if it is still good (not
    logged out, token unchanged, and of the login generation the store of logouts holds: see
    store.login_epoch); unchecked is True when that store could not be asked (refused)."""
    sid, role = cookie.get("sid"), cookie.get("role")
    if not sid or not role:
        return None, False
    credential = svc.tokens.by_id(cookie.get("cred"))
    if credential is None or credential.role != role:
        return None, False
    try:
        if not svc.login_epoch.valid(cookie.get("gen"), sid):
            return None, False
    except StoreUnavailable:
        return None, True
    return Operator(credential.name or cookie.get("op", role), role, sid, addr, "cookie"), False


def _throttled():
    """429 when this address must wait before presenting another token."""
    throttle = services().throttle
    wait = throttle.retry_after(_addr())
    if wait is None:
        return None
    whose = ("all addresses this minute (LOGIN_FAILURES_PER_MINUTE)" if throttle.everyone_waits()
             else "this address")
    response, status = error(429, "too_many_attempts",
                             f"too many failed logins from {whose}; try again in {wait} s",
                             retry_after=wait)
    response.headers["Retry-After"] = str(wait)
    return response, status


def bearer():
    """(Operator or None, refusal or None) for the Authorization header.

    No header: (None, None). A wrong token counts as a failed login."""
    header = request.headers.get("Authorization")
    if header is None:
        return None, None
    token = bearer_token(header)
    if token is None:
        return None, error(401, "unauthorized", "Authorization must be: Bearer <token>")
    refused = _throttled()
    if refused is not None:
        return None, refused
    svc = services()
    credential = svc.tokens.match(token)
    if credential is None:
        svc.throttle.failed(_addr())
        return None, error(401, "bad_token", "that token is not valid")
    svc.throttle.succeeded(_addr())
    return bearer_operator(credential, request.headers.get("X-Operator-Name", ""), _addr()), None


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when it is not one."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_operator(credential: Credential, claimed: str, addr: str) -> Operator:
    """Who a matched bearer token is (claimed: the X-Operator-Name header, or "")."""
    if credential.name is not None:
        name = credential.name  # a named token says who it is; no header can change that
    else:
        name = claimed if NAME.fullmatch(claimed) else "cli"
    return Operator(name, credential.role, "b-" + secrets.token_hex(6), addr, "bearer")


def current_login():
    """(who, refusal): the bearer token if one is sent, else the session cookie."""
    if "login" in g:
        return g.login, None
    op, refused = bearer()
    if refused is not None:
        return None, refused
    if op is None:
        op = session_operator()
    g.login = op
    return op, None


def public() -> bool:
    return current_app.config["DASHBOARD_ACCESS"] == "public"


def may_see_host() -> bool:
    """True when this request may see the host's data (the page, health details)."""
    if public():
        return True
    op, _ = current_login()
    return op is not None and op.role != METRICS


# What each endpoint needs: the lowest role, or "metrics" (viewer and up, or the
# metrics token). Endpoints not listed answer anyone (login, logout, session,
# the page, static files, health).
NEEDS = {
    "stream.events": "viewer",
    "fleet.events": "viewer",
    "fleet.summaries": "viewer",
    "api.snapshot": "viewer",
    "api.hosts": "viewer",
    "api.history": "viewer",
    "api.container_history": "viewer",
    "api.alerts": "viewer",
    "metrics.metrics": METRICS,
}


def require_access():
    """before_request: 401 or 429 before any view that shows the host."""
    needed = NEEDS.get(request.endpoint or "")
    if needed is None:
        return None
    if public() and request.headers.get("Authorization") is None:
        return None
    op, refused = current_login()
    if refused is not None:
        return refused
    if op is None:
        if public():
            return None
        if g.get("login_unchecked"):
            return error(503, "unavailable", UNCHECKED)
        response, status = error(401, "unauthorized", UNAUTHORIZED)
        response.headers["WWW-Authenticate"] = 'Bearer realm="dashboard"'
        return response, status
    if needed == METRICS and op.role in (METRICS, "viewer", "observer", "operator"):
        return None
    if op.role == METRICS:
        return error(403, "forbidden", "the metrics token opens /metrics and nothing else")
    return None


def guard_console():
    """before_request of the console's WebSocket route."""
    refused = refuse_foreign_origin()
    if refused is not None:
        return refused
    op, refused = bearer()
    if refused is not None:
        return refused
    if op is None and request.headers.get("Origin") is not None:
        op = session_operator()
    if op is None:
        if g.get("login_unchecked"):
            return error(503, "unavailable", UNCHECKED)
        if request.headers.get("Origin") is None and session.get("sid"):
            message = "a client that sends no Origin must authenticate with Authorization: Bearer"
        else:
            message = UNAUTHORIZED
        return error(401, "unauthorized", message)
    if not at_least(op.role, "observer"):
        return error(403, "forbidden", f"the console needs an observer or operator login; this is a {op.role} login")
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
    refused = _throttled()
    if refused is not None:
        return refused
    token = body.get("token")
    credential = svc.tokens.match(token if isinstance(token, str) else None)
    addr = _addr()
    if credential is None:
        svc.throttle.failed(addr)  # counted and logged per address, not one audit row each
        return error(401, "bad_token", "that token is not valid")
    svc.throttle.succeeded(addr)
    if credential.role == METRICS:
        return error(403, "forbidden", "the metrics token opens /metrics and nothing else; it cannot log in")
    name = credential.name or body.get("name") or credential.role
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return error(400, "bad_request", "name: 1 to 32 letters, digits or . _ @ -")
    try:
        epoch = svc.login_epoch.current()
    except StoreUnavailable:
        return error(503, "unavailable", "logins cannot be made right now (the store of logouts is "
                     "unreachable); retry shortly")
    session.clear()
    session.permanent = True
    session["sid"] = secrets.token_urlsafe(12)
    session["gen"] = epoch
    session["role"] = credential.role
    session["op"] = name
    session["cred"] = credential.id
    session["iat"] = int(time.time())
    svc.audit_login("login", name, credential.role, session["sid"], addr, "ok")
    return jsonify({"authenticated": True, "operator": name, "role": credential.role})


@bp.post("/logout")
@state_changing
def logout(body: dict):
    op = session_operator()
    if g.get("login_unchecked"):  # the logout could not be recorded: say so, keep the cookie
        return error(503, "unavailable", UNCHECKED)
    session.clear()
    if op is None:
        return jsonify({"authenticated": False})
    svc = services()
    expires = time.time() + current_app.permanent_session_lifetime.total_seconds()
    consoles, streams = svc.end_session(op.session, expires)
    svc.audit_login("logout", op.name, op.role, op.session, op.addr, "ok")
    return jsonify({"authenticated": False, "closed_consoles": consoles, "closed_streams": streams})


@bp.get("/api/session")
def whoami():
    op = session_operator()
    access = current_app.config["DASHBOARD_ACCESS"]
    if op is None:
        return jsonify({"authenticated": False, "access": access})
    return jsonify({"authenticated": True, "operator": op.name, "role": op.role, "access": access})
