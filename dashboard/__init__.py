"""Live host metrics over server-sent events, steered from a WebSocket console."""

from __future__ import annotations

import logging
import os

from .version import __version__  # noqa: F401  (the package's version, as before)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None):
    """Build the Flask app: defaults, then the environment, then test_config."""
    from flask import Flask, request
    from werkzeug.exceptions import HTTPException

    from datetime import timedelta

    from . import logs, settings
    from .web import api, auth, body_limits, budgets, console_socket, fleet, metrics, pages, proxy, request_log
    from .web import stream_front
    from .web import events as stream
    from .web.common import error, security_headers
    from .control.services import Step
    from .wiring import Instance

    app = Flask(
        __name__,
        root_path=ROOT,
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.config.from_mapping(settings.load())
    if test_config:
        app.config.update(test_config)
    # Derived once every layer is in, so a DATA_DIR from any layer moves the audit log too.
    app.config["AUDIT_DB"] = settings.audit_db(app.config)
    _ensure_secrets(app.config)
    app.secret_key = app.config["SECRET_KEY"]
    app.config.update(
        SESSION_COOKIE_NAME="dashboard_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SESSION_HOURS"]),
        SOCK_SERVER_OPTIONS={
            "ping_interval": app.config["CONSOLE_PING_SECONDS"],
            "max_message_size": app.config["CONSOLE_MAX_MESSAGE"],
        },
    )
    app.session_interface = auth.SessionInterface()

    logs.configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    # Outermost first: the trusted-proxy fix (so REMOTE_ADDR is the client's),
    # the body guard (size and deadline), the per-address budget, the stream
    # front (GET /events), then Flask.
    refusals = logs.Refusals()
    hosts = proxy.allowed_hosts(app.config["ALLOWED_HOSTS"], app.config["HOST"])
    # Innermost, in front of Flask: a stream open's plain case answered without Flask's machinery.
    app.wsgi_app = stream_front.StreamFront(app, app.wsgi_app, hosts)
    app.wsgi_app = budgets.ClientBudget(app.wsgi_app, app.config["MAX_CONNECTIONS_PER_CLIENT"],
                                        on_refused=lambda reason, addr: refusals.note(reason, addr, (
                                            "this worker is full (WORKER_CONNECTIONS)" if reason == "worker_full"
                                            else "too many connections open at once")),
                                        worker_limit=app.config["WORKER_CONNECTIONS"])
    guard = body_limits.BodyLimits(
        app.wsgi_app, app.config["MAX_BODY_BYTES"], app.config["BODY_TIMEOUT_SECONDS"],
        on_refused=lambda reason, addr: refusals.note(reason, addr, "request body refused"))
    app.wsgi_app = proxy.TrustedProxyFix(guard, app.config["FORWARDED_ALLOW_IPS"])
    svc = Instance(app.config, refusals=refusals, guards=(Step("request bodies", stop=guard.stop),))

    @app.before_request
    def check_host():
        # Both the Host the client sent and the one a trusted proxy forwarded
        # must be allowed: a rebinding page can add X-Forwarded-Host itself.
        for name in proxy.requested_hosts(request.environ, request.host):
            if not proxy.host_allowed(name, hosts):
                return error(400, "host_not_allowed",
                             f"this server does not answer to {proxy.hostname(name)[:100]!r} (ALLOWED_HOSTS)")
        return None

    request_log.install(app)

    app.extensions["dashboard"] = svc
    app.extensions["dashboard.metrics"] = metrics.install(svc)
    # The sampler starts in the process that serves, never at import: gunicorn
    # starts it right after the fork, any other server on the first request.
    app.before_request(svc.ensure_started)
    app.before_request(auth.require_access)
    if app.config["DASHBOARD_ACCESS"] == "public":
        logging.getLogger("dashboard").warning(
            "DASHBOARD_ACCESS=public: anyone who can reach this server sees this host's metrics, "
            "processes, users and mounts without logging in (the console still needs a login)")

    app.register_blueprint(pages.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(fleet.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(console_socket.bp)
    console_socket.sock.init_app(app)

    app.after_request(security_headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = getattr(exc, "error_code", None) or (exc.name or "error").lower().replace(" ", "_")
        return error(exc.code or 500, code, exc.description or exc.name)

    return app


def _ensure_secrets(config) -> None:
    """Generate what was not configured, or take what an earlier start generated
    (DATA_DIR/secrets.json). gunicorn.conf.py does this in the master (so a
    restarted worker keeps them); here it covers any other way of serving."""
    from . import kept_secrets
    from .web.auth import new_token

    missing = [name for name in ("SECRET_KEY", "OPERATOR_TOKEN") if not config.get(name)]
    if config.get("OPERATOR_TOKENS"):
        missing = [name for name in missing if name != "OPERATOR_TOKEN"]
    kept = kept_secrets.keep(config["DATA_DIR"], missing, new_token)
    config.update(kept.values)
    for warning in kept.warnings:
        logging.getLogger("dashboard").warning(warning)
    if "OPERATOR_TOKEN" in kept.made:
        logging.getLogger("dashboard").warning(
            "OPERATOR_TOKEN is not set; log in with this URL (printed once): %s",
            login_url(config, config["OPERATOR_TOKEN"]),
        )


def login_url(config, token: str) -> str:
    """The link printed when the operator token was generated. The token is in the fragment
    (`#token=`), which a browser never sends: no proxy's access log or Referer can hold it.
    The page reads it, logs in and clears it (it still reads `?token=` from older links)."""
    host = config.get("HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{config.get('PORT', 8000)}/#token={token}"
