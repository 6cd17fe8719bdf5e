"""Rates and deltas from cumulative counters, computed in one place.

psutil reports totals since boot (bytes, CPU seconds). A dashboard wants "per
second" and "percent busy", which need the previous value. Every collector
hands its counters to one `Rates` object so the rules are the same everywhere:

- the first observation of a key gives None (there is nothing to diff against,
  and a rate over "since boot" would be a bogus spike or average);
- a counter that goes backwards (device re-added, counter reset, PID reused)
  gives None for that round instead of a negative or huge number (CPU times,
  which jitter back by a tick, are clamped to 0 instead);
- keys not seen in a round are forgotten, so vanished processes and devices
  do not accumulate.
"""

from __future__ import annotations

from typing import Hashable


class Rates:
    def __init__(self) -> None:
        self._prev: dict[Hashable, tuple[float, float]] = {}
        self._seen: dict[Hashable, tuple[float, float]] = {}
        self._now: float | None = None

    def begin(self, now: float) -> None:
        """Start a round at monotonic time `now`."""
        self._now = now
        self._seen = {}

    def end(self) -> None:
        """Finish the round: keep exactly the keys observed in it."""
        self._prev = self._seen
        self._seen = {}

    def delta(self, key: Hashable, value: float, clamp: bool = False) -> float | None:
        """value minus the previous round's value for key, or None.

        clamp: a small step back counts as 0 rather than as a reset (the
        kernel's per-CPU times, iowait in particular, can go back a tick)."""
        now = self._now
        if now is None:
            raise RuntimeError("Rates.begin() must be called before delta()")
        self._seen[key] = (now, value)
        prev = self._prev.get(key)
        if prev is None:
            return None
        if value < prev[1]:
            return 0.0 if clamp else None
        return value - prev[1]

    def per_second(self, key: Hashable, value: float) -> float | None:
        """Change of value per second since the previous round, or None."""
        prev = self._prev.get(key)
        change = self.delta(key, value)
        if change is None or prev is None:
            return None
        elapsed = self._now - prev[0]
        if elapsed <= 0:
            return None
        return change / elapsed

    def per_second_each(self, key: Hashable, values: tuple) -> tuple:
        """per_second() of several counters read together under one key (a container's), in one
        lookup: each None where per_second would give None (first round, a counter that went back
        or was not read). The tuple must keep its length and order from round to round."""
        now = self._now
        if now is None:
            raise RuntimeError("Rates.begin() must be called before per_second_each()")
        self._seen[key] = (now, values)
        prev = self._prev.get(key)
        if prev is None or now <= prev[0]:
            return (None,) * len(values)
        elapsed = now - prev[0]
        # A list made then a tuple: a generator's resume per value costs more than the copy.
        return tuple([None if v is None or p is None or v < p else (v - p) / elapsed
                      for v, p in zip(values, prev[1])])

    def elapsed(self, key: Hashable) -> float | None:
        """Seconds since key was last observed (None if it was not)."""
        prev = self._prev.get(key)
        if prev is None or self._now is None:
            return None
        return self._now - prev[0]


def percent(part: float | None, whole: float | None) -> float | None:
    """part/whole as a percentage rounded to 0.1, None when undefined."""
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)
