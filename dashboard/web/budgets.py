"""Per-client connection budget: what one address may hold open at once.

A WSGI middleware inside the trusted-proxy fix, so `REMOTE_ADDR` is the
client's address after the proxies we trust (FORWARDED_ALLOW_IPS). Every
request in progress counts, event streams and console sockets for as long as
they stay open; past MAX_CONNECTIONS_PER_CLIENT the request is answered at
once with 429, `Retry-After` and `Connection: close`, before the app runs, so
one address can never take the worker's WORKER_CONNECTIONS from everyone else.

`LoginBudget` is the other kind: how many costly answers (history windows that
must be built) one login may have a minute, whatever addresses it comes from.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from ..console.sessions import RateLimit

from .body_limits import AfterResponse, force_close

RETRY_AFTER_SECONDS = 5
# environ key: a callable that keeps this request's slot past the response and
# returns the function that frees it.
KEEP_CONNECTION = "dashboard.keep_connection"


class ClientBudget:
    def __init__(self, app, limit: int, on_refused=None, worker_limit: int | None = None) -> None:
        self.app = app
        self.limit = limit
        # Streams leave the server's own connection pool once the hub owns them,
        # so WORKER_CONNECTIONS (requests, streams and sockets together) is kept here.
        self.worker_limit = worker_limit
        self.open: dict[str, int] = {}
        self.total = 0
        # (reason, client address): counted and logged by whoever installs this
        self.on_refused = on_refused or (lambda reason, addr: None)

    def __call__(self, environ, start_response):
        addr = environ.get("REMOTE_ADDR") or "?"
        if self.worker_limit is not None and self.total >= self.worker_limit:
            self.on_refused("worker_full", addr)
            return self._refuse_full(start_response)
        held = self.open.get(addr, 0)
        if held >= self.limit:
            self.on_refused("connections", addr)
            return self._refuse(start_response, held)
        self.open[addr] = held + 1
        self.total += 1
        released = []
        kept = []

        def release() -> None:
            if released:
                return
            released.append(True)
            self.total -= 1
            left = self.open.get(addr, 1) - 1
            if left > 0:
                self.open[addr] = left
            else:
                self.open.pop(addr, None)

        def keep():
            # A stream that takes its connection over from the server holds the
            # slot until it ends, and releases it itself (web/events.py).
            kept.append(True)
            return release

        environ[KEEP_CONNECTION] = keep
        try:
            result = self.app(environ, start_response)
        except BaseException:
            if not kept:
                release()
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(result, wrapper):
            # Keep the server's sendfile path: chain onto the wrapper's close.
            inner_close = result.close

            def close() -> None:
                try:
                    inner_close()
                finally:
                    release()

            result.close = close
            return result
        return AfterResponse(result, release, when_sent=True)

    def _refuse_full(self, start_response):
        return _refusal(start_response, "503 Service Unavailable", "server_full",
                        f"this worker already serves {self.worker_limit} requests, streams and sockets "
                        f"(WORKER_CONNECTIONS); retry in {RETRY_AFTER_SECONDS} s")

    def _refuse(self, start_response, held: int):
        return _refusal(start_response, "429 Too Many Requests", "too_many_connections",
                        f"this address already has {held} connections open "
                        f"(MAX_CONNECTIONS_PER_CLIENT={self.limit}); retry in {RETRY_AFTER_SECONDS} s")


def _refusal(start_response, status: str, code: str, message: str):
    """The answer before the app runs: JSON, Retry-After, and the connection closed."""
    payload = json.dumps({"error": {"code": code, "message": message,
                                    "retry_after": RETRY_AFTER_SECONDS}}).encode()
    force_close(start_response)
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                            ("Retry-After", str(RETRY_AFTER_SECONDS))])
    return [payload]


class LoginBudget:
    """Costly answers per login: `per_minute` a minute, up to a quarter of that at once.
    A bucket refilled to full is forgotten, so memory follows the active logins."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, per_minute // 4)
        self.clock = clock
        self._buckets: dict[str, RateLimit] = {}
        self._swept = clock()

    def take(self, login: str) -> float:
        """0 when login may have one more, else seconds until it may."""
        now = self.clock()
        if now - self._swept > 60.0:
            self._swept = now
            full = self.burst / self.rate
            self._buckets = {k: b for k, b in self._buckets.items() if now - b.stamp <= full}
        bucket = self._buckets.get(login)
        if bucket is None:
            bucket = self._buckets[login] = RateLimit(self.rate, self.burst, self.clock)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)
