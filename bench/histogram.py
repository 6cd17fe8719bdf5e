"""Latency histograms that several client processes fill and the orchestrator
merges exactly: a histogram is a plain dict {bucket index: count}, so it goes
through JSON as it is, and merging is adding counts.

Buckets are `fine_us` wide below 100 ms, 1 ms wide up to 10 s, then one
overflow bucket. SSE delivery delays use 100 us steps (tens of ms is their
scale), console round trips 10 us steps (they are well under a millisecond).
"""

from __future__ import annotations

import math

FINE_LIMIT_MS = 100.0
COARSE_LIMIT_MS = 10_000.0


class Buckets:
    def __init__(self, fine_us: float):
        self.fine_us = fine_us
        self.per_ms = 1000.0 / fine_us
        self.n_fine = int(FINE_LIMIT_MS * self.per_ms)
        self.overflow = self.n_fine + int(COARSE_LIMIT_MS - FINE_LIMIT_MS)

    def index(self, ms: float) -> int:
        """The bucket a latency in ms falls into (negative clock skew counts as 0)."""
        if ms < FINE_LIMIT_MS:
            return int(ms * self.per_ms) if ms > 0.0 else 0
        if ms < COARSE_LIMIT_MS:
            return self.n_fine + int(ms - FINE_LIMIT_MS)
        return self.overflow

    def value(self, i: int) -> float:
        """The middle of a bucket in ms (the overflow bucket reports its lower edge)."""
        if i < self.n_fine:
            return (i + 0.5) / self.per_ms
        if i < self.overflow:
            return FINE_LIMIT_MS + (i - self.n_fine) + 0.5
        return COARSE_LIMIT_MS

    def percentile(self, hist: dict[int, int], q: float) -> float | None:
        """The q-th percentile (0..100) in ms, rounded to 1 us; None when empty."""
        n = sum(hist.values())
        if not n:
            return None
        rank = max(1, math.ceil(q / 100.0 * n))
        seen = 0
        for i in sorted(hist):
            seen += hist[i]
            if seen >= rank:
                return round(self.value(i), 3)
        return round(self.value(max(hist)), 3)


def merge(hists) -> dict[int, int]:
    """Add histograms; keys may be strings after a trip through JSON."""
    total: dict[int, int] = {}
    for hist in hists:
        for key, count in hist.items():
            total[int(key)] = total.get(int(key), 0) + count
    return total
