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

from werkzeug.middleware.proxy_fix import ProxyFix

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


class TrustedProxyFix:
    def __init__(self, app, allow: str) -> None:
        self.plain = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
        self.allow = {a.strip() for a in allow.split(",") if a.strip()}

    def __call__(self, environ, start_response):
        trusted = "*" in self.allow or environ.get("REMOTE_ADDR") in self.allow
        return (self.fixed if trusted else self.plain)(environ, start_response)


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
