"""Guessing tokens is throttled per client address.

An address may fail LOGIN_FAILURES_ALLOWED times; after that it must wait
before it tries again: 1 s after the next failure, doubling with each further
one, up to 5 minutes. While it waits, every attempt that presents a token
(POST /login, a bearer header, a console handshake) gets 429 with
Retry-After, correct token or not, so waiting is the only way on; a success
after the wait starts it over. The count is forgotten after QUIET_SECONDS
without a failure. Other addresses are not affected, with one exception:
past `ceiling` failures within a minute (LOGIN_FAILURES_PER_MINUTE, from all
addresses together: many addresses, or one that can choose its address behind
a trusted proxy), every address gets 429 until that minute is over.

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
    ceiling: int = 1_000_000  # failures a minute from every address together
    failures_total: int = 0
    refused_total: int = 0
    ceiling_refused_total: int = 0  # of refused_total, those refused for the ceiling alone
    _clients: OrderedDict = field(default_factory=OrderedDict)
    _minute: list = field(default_factory=lambda: [-math.inf, 0])  # [window start, failures in it]

    def _left(self, addr: str) -> tuple[float, float]:
        """(seconds addr itself must still wait, seconds every address must): either may be <= 0."""
        now = self.clock()
        entry = self._clients.get(addr)
        start, count = self._minute
        everyone = start + LOG_WINDOW - now if count >= self.ceiling else 0.0
        return (0.0 if entry is None else entry.until - now), everyone

    def wait(self, addr: str) -> float:
        """Seconds addr must still wait before its next attempt (0: it may try now)."""
        left, everyone = self._left(addr)
        if everyone > left and everyone > 0:
            self.ceiling_refused_total += 1
        if max(left, everyone) > 0:
            self.refused_total += 1
            return max(left, everyone)
        return 0.0

    def everyone_waits(self) -> bool:
        """True while the minute's failures from all addresses are at the ceiling."""
        start, count = self._minute
        return count >= self.ceiling and self.clock() - start < LOG_WINDOW

    def waiting(self, addr: str) -> bool:
        """True when addr may not try now; unlike wait(), counts no refusal."""
        return max(self._left(addr)) > 0

    def retry_after(self, addr: str) -> int | None:
        """Whole seconds for a Retry-After header, or None when addr may try."""
        left = self.wait(addr)
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, addr: str) -> None:
        now = self.clock()
        self.failures_total += 1
        if now - self._minute[0] >= LOG_WINDOW:
            self._minute = [now, 0]
        self._minute[1] += 1
        if self._minute[1] == self.ceiling:
            log.warning("%d failed logins within a minute from all addresses (LOGIN_FAILURES_PER_MINUTE): "
                        "every address must wait %.0f s", self.ceiling, self._minute[0] + LOG_WINDOW - now,
                        extra={"fields": {"remote": addr, "failures_this_minute": self.ceiling}})
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
