"""Behind proxies: trusted forwarding headers, sub-paths, and the Host allowlist.

- X-Forwarded-For/-Proto/-Host/-Port/-Prefix are honoured (werkzeug's
  ProxyFix) only when the connection comes from FORWARDED_ALLOW_IPS, the same
  setting gunicorn uses; anyone else could forge them. X-Forwarded-Prefix (or
  SCRIPT_NAME) mounts the app under a sub-path such as /monitor: every URL the
  page builds, the stream and the socket included, starts with it.
- Trusting a loopback address (the default, 127.0.0.1) is right for a proxy on
  the same machine that sets X-Forwarded-For, and wrong for a tunnel or port
  forward that delivers remote clients to loopback: each could send the header
  and choose the address that throttling and budgets count. So when the first
  LOOPBACK_WARN_AFTER requests from a trusted loopback peer all came without
  X-Forwarded-For, one warning says so (once per process; never once a request
  from it carried the header, which is what a real proxy does).
- ALLOWED_HOSTS defeats DNS rebinding: a page on an attacker's name that
  resolves to this server gets 400, not data. By default a server bound to
  loopback answers only to loopback names.
"""

from __future__ import annotations

import json
import logging
import re

from werkzeug.middleware.proxy_fix import ProxyFix

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
LOOPBACK_WARN_AFTER = 20

log = logging.getLogger("dashboard.proxy")


class TrustedProxyFix:
    def __init__(self, app, allow: str) -> None:
        self.plain = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1)
        self.allow = {a.strip() for a in allow.split(",") if a.strip()}
        # Requests from a trusted loopback peer without X-Forwarded-For; None once decided.
        self.plain_loopback: int | None = 0 if any(_loopback(a) for a in self.allow) else None

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR")
        trusted = "*" in self.allow or peer in self.allow
        if self.plain_loopback is not None and peer in self.allow and _loopback(peer):
            self._watch(peer, "HTTP_X_FORWARDED_FOR" in environ)
        if trusted:
            prefix = environ.get("HTTP_X_FORWARDED_PREFIX")
            if prefix is not None and not PLAIN_PATH.fullmatch(prefix.split(",")[0].strip()):
                return _refuse(start_response, "bad_forwarded_prefix",
                               "X-Forwarded-Prefix must be a plain path such as /monitor")
        return (self.fixed if trusted else self.plain)(environ, start_response)


    def _watch(self, peer: str, forwarded: bool) -> None:
        if forwarded:
            self.plain_loopback = None  # a proxy that says who its clients are: nothing to warn of
            return
        self.plain_loopback += 1
        if self.plain_loopback >= LOOPBACK_WARN_AFTER:
            self.plain_loopback = None
            log.warning(
                "FORWARDED_ALLOW_IPS trusts %s, but the first %d requests from it carried no "
                "X-Forwarded-For, so no proxy that sets it seems to be in front. If a tunnel or port "
                "forward delivers remote clients to loopback, each can send X-Forwarded-For and choose "
                "the address that login throttling and budgets count: set FORWARDED_ALLOW_IPS to the "
                "proxy's own address, or empty when there is none", peer, LOOPBACK_WARN_AFTER,
                extra={"fields": {"peer": peer}})


def _loopback(addr: str) -> bool:
    return addr == "::1" or addr.startswith("127.")


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
