"""Behind proxies: trusted forwarding headers, sub-paths, and the Host allowlist.

- X-Forwarded-For/-Proto/-Host/-Port/-Prefix are honoured (werkzeug's
  ProxyFix) only when the connection comes from FORWARDED_ALLOW_IPS, the same
  setting gunicorn uses; anyone else could forge them. X-Forwarded-Prefix (or
  SCRIPT_NAME) mounts the app under a sub-path such as /monitor: every URL the
  page builds, the stream and the socket included, starts with it.
- ALLOWED_HOSTS defeats DNS rebinding: a page on an attacker's name that
  resolves to this server gets 400, not data. By default a server bound to
  loopback answers only to loopback names.
"""

from __future__ import annotations

import json
import re

from werkzeug.middleware.proxy_fix import ProxyFix

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class TrustedProxyFix:
    def __init__(self, app, allow: str) -> None:
        self.plain = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
        self.allow = {a.strip() for a in allow.split(",") if a.strip()}

    def __call__(self, environ, start_response):
        trusted = "*" in self.allow or environ.get("REMOTE_ADDR") in self.allow
        if trusted:
            prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
            if prefix is not None and not PLAIN_PATH.fullmatch(prefix.split(",")[0].strip()):
                return _refuse(start_response, "bad_forwarded_prefix",
                               "X-Forwarded-Prefix must be a plain path such as /monitor")
        return (self.fixed if trusted else self.plain)(environ, start_response)


# /a/b-c/d_e.f (or empty): no scheme, no host, no "//", no dot segments.
PLAIN_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+)*/?")


def _refuse(start_response, code: str, message: str):
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    start_response("400 Bad Request", [("Content-Type", "application/json"),
                                       ("Content-Length", str(len(body)))])
    return [body]


def requested_hosts(environ, effective: str) -> list[str]:
    """The Host header as the client sent it and, behind a trusted proxy, the forwarded one."""
    original = environ.get("werkzeug.proxy_fix.orig", {}).get("HTTP_HOST")
    return [effective] if original is None or original == effective else [original, effective]


def allowed_hosts(configured: tuple[str, ...], bound: str) -> tuple[str, ...]:
    """The effective allowlist: what was configured, else loopback names or anything."""
    if configured:
        return tuple(h.lower() for h in configured)
    return LOOPBACK_NAMES if bound in LOOPBACK_NAMES else ("*",)


def hostname(host_header: str) -> str:
    """The name part of a Host header (no port, no IPv6 brackets), lowercased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str, allowlist: tuple[str, ...]) -> bool:
    name = hostname(host_header)
    for pattern in allowlist:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False
