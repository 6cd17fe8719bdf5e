"""Chart windows: which tier answers `/api/history?seconds=N&until=T`, and its columns.

The finest tier that covers the window in at most about MAX_POINTS points
wins. Raw samples (the in-memory history of `HISTORY_SECONDS`) are served
whole, as the stream delivers them, up to RAW_MAX_POINTS; past that the
minute and hour roll-ups take over, and when a tier would give more than
MAX_POINTS points, adjacent points are merged into steps of a whole number of
its own (min of the minima, max of the maxima, mean weighted by samples), as
long as that reads at most MAX_POINTS * MERGE_AT_MOST stored points.

Rolled-up answers are a regular grid (`ts` every `step` seconds): a step with
no stored point is null in every column, so a chart shows the downtime as a
gap. The answer depends only on (host, seconds, until) and the data, so a
cache keyed by those can sit in front of it; `canonical` rounds a window to
the step it is answered at, so that asking 3599.3 s or 3600 s (or an `until`
a second apart inside one hour-step) is one cache entry, not two encodes.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from ..sampling.series import SERIES
from ..store.audit import StoreUnavailable
from ..store.tiers import Point, Tier, TierStore
from .views import HostView

MAX_POINTS = 2000
RAW_MAX_POINTS = 4000  # one hour at 1 Hz, served whole as before
MERGE_AT_MOST = 8

_NAMES = tuple(s.name for s in SERIES)


class NoHistory(LookupError):
    """The window reaches past the in-memory history and no lasting store is available."""


class Windows:
    def __init__(self, history_seconds: float, tiers: tuple[Tier, ...], store: TierStore | None,
                 current: Callable[[str, Tier], Point | None] | None = None) -> None:
        self.history_seconds = history_seconds
        self.tiers = tiers
        self.store = store
        # The open (not yet written) bucket of a host's tier, where this process makes it.
        self.current = current

    @property
    def longest(self) -> float:
        """The longest window that can be asked for."""
        if self.store is None:
            return self.history_seconds
        return max([self.history_seconds] + [t.retention for t in self.tiers])

    def reach(self, host: str, now: float | None = None) -> float:
        """Seconds back to the oldest data kept for host (at least HISTORY_SECONDS)."""
        now = time.time() if now is None else now
        oldest = None
        if self.store is not None:
            try:
                oldest = min((t for t in (self.store.oldest(tier, host) for tier in self.tiers) if t is not None),
                             default=None)
            except StoreUnavailable:
                oldest = None
        return max(self.history_seconds, 0 if oldest is None else now - oldest)

    def choose(self, seconds: float, until: float, now: float, interval: float) -> tuple[Tier | None, int]:
        """(tier, merge factor); tier None means raw samples."""
        start = until - seconds
        if start >= now - self.history_seconds - 1 and seconds / max(interval, 0.25) <= RAW_MAX_POINTS:
            return None, 1
        if self.store is None:
            raise NoHistory("only the last HISTORY_SECONDS are kept: the history store is unavailable")
        for tier in self.tiers:
            if start >= now - tier.retention - tier.step and seconds / tier.step <= MAX_POINTS * MERGE_AT_MOST:
                return tier, max(1, math.ceil(seconds / tier.step / MAX_POINTS))
        tier = self.tiers[-1]
        return tier, max(1, math.ceil(seconds / tier.step / MAX_POINTS))

    def canonical(self, view: HostView, seconds: float | None, until: float | None,
                  now: float | None = None) -> tuple[float, float | None]:
        """(seconds, until) as answered: seconds rounded up to whole steps of the tier
        that answers (at most `longest`), until rounded up to a step and None (the live
        window) when it reaches the newest sample. NoHistory as window() would."""
        now = time.time() if now is None else now
        seconds = self.history_seconds if seconds is None else seconds
        newest = float((view.latest or {}).get("ts") or now)
        if until is not None and until >= min(newest, now):
            until = None
        interval = float((view.latest or {}).get("interval") or 1.0)
        tier, k = self.choose(seconds, now if until is None else until, now, interval)
        step = interval if tier is None else float(tier.step * k)
        seconds = min(_whole_steps(seconds, step), self.longest)
        if until is not None:
            until = _whole_steps(until, step)
            if until >= min(newest, now):
                until = None
        return seconds, until

    def window(self, view: HostView, seconds: float | None, until: float | None = None,
               now: float | None = None) -> dict:
        now = time.time() if now is None else now
        seconds = self.history_seconds if seconds is None else seconds
        end = now if until is None else min(until, now)
        interval = float((view.latest or {}).get("interval") or 1.0)
        tier, k = self.choose(seconds, end, now, interval)
        if tier is None:
            out = view.history.columns(seconds, None if until is None else end)
            return {**out, "host": view.name, "tier": "raw", "step": interval,
                    "since": end - seconds, "until": end}
        head = view.hub.head
        return {**self.rolled(view.name, tier, k, end - seconds, end),
                "last_event_id": head.id if head else None}

    def rolled(self, host: str, tier: Tier, k: int, since: float, until: float) -> dict:
        step = tier.step * k
        first = int(since) // step * step
        slots = max(1, math.ceil((until - first) / step))
        ts, n, values, counts = self.store.block(tier, host, first, until)
        if self.current is not None:
            open_point = self.current(host, tier)
            if open_point is not None and first <= open_point.ts <= until and \
                    (not len(ts) or ts[-1] < open_point.ts):
                ts, n, values, counts = _append(ts, n, values, counts, open_point)
        width = len(_NAMES)
        low = np.full((slots, width), np.nan)
        mean = np.full((slots, width), np.nan)
        high = np.full((slots, width), np.nan)
        slot = (ts - first) // step
        inside = (slot >= 0) & (slot < slots)
        slot, values, counts = slot[inside], values[inside][:, :width, :], counts[inside][:, :width]
        if len(slot):
            # Stored points are in time order: each run of one slot is merged into it.
            starts = np.concatenate(([0], np.flatnonzero(np.diff(slot)) + 1))
            where = slot[starts]
            low[where] = np.fmin.reduceat(values[:, :, 0], starts, axis=0)
            high[where] = np.fmax.reduceat(values[:, :, 2], starts, axis=0)
            has = ~np.isnan(values[:, :, 1])
            # Each step's mean weighs as many samples as it has of that series.
            weight = np.where(has, np.maximum(counts, 1), 0)
            total = np.add.reduceat(np.where(has, values[:, :, 1], 0.0) * weight, starts, axis=0)
            weights = np.add.reduceat(weight, starts, axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[where] = np.where(weights > 0, total / np.maximum(weights, 1), np.nan)
        columns: dict = {"ts": list(range(first, first + slots * step, step)), "cores": []}
        for i, name in enumerate(_NAMES):
            columns[name] = _column(mean[:, i])
            columns[name + "_min"] = _column(low[:, i])
            columns[name + "_max"] = _column(high[:, i])
        return {
            "host": host,
            "tier": tier.name,
            "step": step,
            "since": since,
            "until": until,
            "count": int(len(slot)),
            "series": {s.name: {"unit": s.unit, "help": s.help} for s in SERIES},
            "columns": columns,
        }


def _whole_steps(value: float, step: float) -> float:
    """value rounded up to a whole number of steps (a hair over one is not a step more)."""
    return math.ceil(value / step - 1e-9) * step


def _column(values) -> list:
    """Rounded floats, None for NaN (JSON has no NaN)."""
    rounded = np.round(values, 3).astype(object)
    rounded[np.isnan(values)] = None
    return rounded.tolist()


def _append(ts, n, values, counts, point: Point) -> tuple:
    row = np.array([[np.nan] * 3 if t is None else list(t) for t in point.values], dtype=np.float64)
    per = np.array(point.counts or [point.n] * len(point.values), dtype=np.int64)[:counts.shape[1]]
    per = np.concatenate((per, np.zeros(counts.shape[1] - len(per), np.int64)))
    return (np.append(ts, point.ts), np.append(n, point.n), np.concatenate((values, row[None, :, :])),
            np.concatenate((counts, per[None, :])))
