"""Guessing tokens is throttled per client address.

An address may fail LOGIN_FAILURES_ALLOWED times; after that it must wait
before it tries again: 1 s after the next failure, doubling with each further
one, up to 5 minutes. While it waits, every attempt that presents a token
(POST /login, a bearer header, a console handshake) gets 429 with
Retry-After, correct token or not, so waiting is the only way on; a success
after the wait starts it over. The count is forgotten after QUIET_SECONDS
without a failure. Other addresses are never affected.

Failures are counted (in /metrics) and logged once per address and window,
never written one audit row each. Each process keeps its own counts.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field

log = logging.getLogger("dashboard.auth")

MAX_WAIT = 300.0
QUIET_SECONDS = 600.0
LOG_WINDOW = 60.0
MAX_TRACKED = 10_000  # addresses remembered at once; the oldest is forgotten first


@dataclass
class _Entry:
    failures: int = 0
    last: float = 0.0
    until: float = 0.0  # may not try before this (monotonic)
    logged_at: float = -math.inf
    unlogged: int = 0  # failures since the last log line


@dataclass
class Throttle:
    allowed: int = 5
    clock: object = time.monotonic
    failures_total: int = 0
    refused_total: int = 0
    _clients: OrderedDict = field(default_factory=OrderedDict)

    def wait(self, addr: str) -> float:
        """Seconds addr must still wait before its next attempt (0: it may try now)."""
        entry = self._clients.get(addr)
        if entry is None:
            return 0.0
        left = entry.until - self.clock()
        if left > 0:
            self.refused_total += 1
            return left
        return 0.0

    def retry_after(self, addr: str) -> int | None:
        """Whole seconds for a Retry-After header, or None when addr may try."""
        left = self.wait(addr)
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, addr: str) -> None:
        now = self.clock()
        self.failures_total += 1
        entry = self._clients.pop(addr, None) or _Entry()
        if now - entry.last > QUIET_SECONDS:
            entry = _Entry(logged_at=entry.logged_at)
        entry.failures += 1
        entry.last = now
        entry.unlogged += 1
        over = entry.failures - self.allowed
        if over > 0:
            entry.until = now + min(MAX_WAIT, 2.0 ** (over - 1))
        self._clients[addr] = entry
        while len(self._clients) > MAX_TRACKED:
            self._clients.popitem(last=False)
        if over > 0 and now - entry.logged_at >= LOG_WINDOW:
            log.warning("failed logins from %s: %d in a row; it must wait %.0f s before the next try",
                        addr, entry.failures, entry.until - now,
                        extra={"fields": {"remote": addr, "failures": entry.failures,
                                          "since_last_log": entry.unlogged}})
            entry.logged_at, entry.unlogged = now, 0

    def succeeded(self, addr: str) -> None:
        self._clients.pop(addr, None)
