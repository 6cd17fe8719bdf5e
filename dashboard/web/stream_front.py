"""GET /events opened in front of Flask: the same checks and answer, without its request machinery.

Opening a stream is the request a restart's storm repeats for every viewer, and
Flask's machinery around it (request context, routing, the session's proxies,
the hooks' chain, the response passed through each after_request) was about a
fifth of an open's CPU (`python -m bench.open_cost`). This WSGI layer, just inside the
connection budget (so budgets, body limits and the trusted-proxy fix still run
first), opens a stream itself when the request is the plain case, with the
same pieces Flask's route uses:

- the Host check (proxy.py), the login (auth.py: bearer token or session cookie,
  the same constant-time match and throttle), the admission (deferred answers
  included), Last-Event-ID (header, else `?last_event_id=`) and `?client=`;
- the same response objects (events.py), the same security headers, request
  id and log line (common.py, request_log.py), and the session cookie saved as
  Flask saves it (refreshed, `Vary: Cookie`).

Anything else goes to Flask untouched, before any state has changed: a method
other than GET, no raw socket (test client, development server), a Host not
allowed, a shutting-down worker, another host's stream (`?host=`), and every
login that is not good (missing, wrong, throttled, the metrics token, a cookie
whose logouts cannot be checked). Flask then gives the answer it always gave
(400, 401, 403, 429, 503, ...), counting the failed login itself: nothing
here counts or logs a refusal. A good login is committed here (the throttle
forgets the address's failures, as after any good login).
"""

from __future__ import annotations

import time

from werkzeug.wrappers import Request
from werkzeug.wsgi import get_host

from ..logs import current_request_id, request_id
from . import events, request_log
from .auth import bearer_operator, bearer_token, cookie_operator
from .common import security_headers
from .credentials import METRICS
from .proxy import host_allowed, requested_hosts

PATH = "/events"


class StreamFront:
    def __init__(self, app, flask_wsgi, hosts: tuple[str, ...]) -> None:
        self.app = app  # the Flask app: its config, session interface and served process
        self.flask = flask_wsgi  # where every other request goes
        self.hosts = hosts  # the effective ALLOWED_HOSTS
        # Flask checks TRUSTED_HOSTS and may route by SERVER_NAME; the app sets neither,
        # and with either set every request goes through Flask.
        self.enabled = app.config.get("TRUSTED_HOSTS") is None and app.config.get("SERVER_NAME") is None

    def __call__(self, environ, start_response):
        if self.enabled and environ.get("PATH_INFO") == PATH and environ.get("REQUEST_METHOD") == "GET" \
                and events._raw_socket(environ) is not None:
            response = self.open(environ)
            if response is not None:
                return response(environ, start_response)
        return self.flask(environ, start_response)

    def open(self, environ):
        """The response that opens (or defers) the stream; None: Flask answers this request."""
        started = time.perf_counter()
        if not all(host_allowed(name, self.hosts) for name in requested_hosts(environ, get_host(environ))):
            return None
        svc = self.app.extensions["dashboard"]  # dashboard.wiring.Instance
        if svc.shutting_down:
            return None
        request = Request(environ)
        args = request.args
        host = args.get("host") or None
        if host is not None and host != svc.views.local.name:
            return None  # another host's view may have to be made (Redis): Flask's way
        addr = request.remote_addr or "?"
        interface = self.app.session_interface
        cookie = interface.open_session(self.app, request)
        if cookie is None:
            return None
        svc.ensure_started()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        who = self._login(svc, environ, cookie, addr)
        if who is False:
            return None
        current_request_id.set(rid)  # this greenlet's later log lines carry it too
        wait_ms = svc.views.admission.admit()
        if wait_ms is not None:
            response = events.deferred(svc, wait_ms, addr)
        else:
            last_event_id = environ.get("HTTP_LAST_EVENT_ID")
            if last_event_id is None:
                last_event_id = args.get("last_event_id")
            response = events.stream(svc.view(host), environ, last_event_id, args.get("client"),
                                     who.session if who is not None else None, rid, addr)
        # As Flask's after_request hooks (last registered first), then its session save.
        security_headers(response)
        response.headers["X-Request-ID"] = rid
        request_log.line(response, rid, "GET", PATH, request.remote_addr, started)
        interface.save_outside(self.app, cookie, response, request.is_secure)
        return response

    def _login(self, svc, environ, cookie, addr: str):
        """The login that may open a stream (None: a public dashboard's anonymous viewer);
        False when it is anything but a good viewer-or-better login, so Flask answers."""
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            if self.app.config["DASHBOARD_ACCESS"] == "public":
                return None
            cookie.accessed = True  # as reading flask.session marks it (the answer then varies by Cookie)
            op, _unchecked = cookie_operator(cookie, svc, addr)
            return op if op is not None and op.role != METRICS else False
        token = bearer_token(header)
        throttle = svc.throttle
        if token is None or throttle.waiting(addr):
            return False
        credential = svc.tokens.match(token)
        if credential is None or credential.role == METRICS:
            return False
        throttle.succeeded(addr)
        return bearer_operator(credential, environ.get("HTTP_X_OPERATOR_NAME", ""), addr)
