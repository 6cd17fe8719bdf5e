"""Admission of new event streams under a storm: so many a second, the rest told when to come back.

After a restart every viewer comes back within seconds, and opening a stream
costs far more CPU than keeping one (its request, login check, head and
catch-up). Admitting them all at once delays what the viewers already
connected are sent. So new streams pass a token bucket (`rate` a second,
`burst`, a quarter of that by default, at once); one that finds it empty is deferred: the web layer answers
it with a short 200 stream that holds only a `retry:` and ends. That is the
one refusal a plain EventSource survives (a 5xx ends it for good) and the
page's own code needs nothing more: it comes back after the delay, with its
Last-Event-ID, and misses nothing the buffer still holds.

The delay grows with the crowd: the streams deferred in the last second need
about deferred/rate seconds to get in, so each is told a random moment
within twice that (at least one second), never the same one: retried
together they would be a storm again.
"""

from __future__ import annotations

import random
import time
from typing import Callable

MAX_RETRY_MS = 60_000


class Admission:
    def __init__(self, rate: float, burst: int | None = None, *, clock: Callable[[], float] = time.monotonic,
                 rng: Callable[[], float] = random.random) -> None:
        self.rate = rate  # 0: every stream is admitted
        # A quarter second's worth at once: no second then admits more than 1.25
        # times the rate, yet a page that opens a stream right after its login
        # never waits.
        self.burst = max(1, burst if burst is not None else int(rate / 4))
        self.clock = clock
        self.rng = rng
        self._tokens = float(self.burst)
        self._at = clock()
        self._recent = 0.0  # deferrals in about the last second (decaying)
        self.admitted = 0
        self.deferred = 0

    def admit(self) -> int | None:
        """None when a new stream may open now; else the retry (ms) to tell it."""
        if not self.rate:
            self.admitted += 1
            return None
        now = self.clock()
        elapsed, self._at = max(0.0, now - self._at), now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._recent *= max(0.0, 1.0 - elapsed)  # forget at about one second's pace
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.admitted += 1
            return None
        self._recent += 1.0
        self.deferred += 1
        spread = max(1.0, 2.0 * self._recent / self.rate)
        return min(MAX_RETRY_MS, int(1000 * (0.5 + self.rng() * spread)))
