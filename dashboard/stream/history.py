"""Chart history: the numbers the charts plot, kept compactly per sample.

The event buffer holds whole encoded samples for resuming streams; charts need
only a dozen numbers per sample, in columns (the shape uPlot draws from). This
keeps those numbers as tuples and builds columns on request. Where samples
stop for longer than a few intervals (the server was down, sampling paused) a
row of nulls goes in between, so a chart shows a gap rather than a line.

The stores keep whole samples only for RESUME_SECONDS; the rest of the hour
comes back after a restart as chart rows packed a minute at a time
(`Minutes` gathers them, store/chart_minutes.py packs them, `add_older`
takes them back).
"""

from __future__ import annotations

import bisect
import time
from collections import deque

from ..sampling.series import SERIES, dig

_NAMES = tuple(s.name for s in SERIES)
_FIRST = 4  # index of the first series value in a row
_INTERVAL = _FIRST + len(_NAMES)  # index of the sample's interval


def chart_row(sample: dict) -> tuple:
    """What the charts plot of a sample: (ts, seq, interval, per-core CPU, the series' values)."""
    return (sample.get("ts"), sample.get("seq"), sample.get("interval"),
            tuple(dig(sample, "cpu", "per_core") or ()), tuple(s.get(sample) for s in SERIES))


class Minutes:
    """A host's chart rows gathered by the minute of their time, for the store's compact raw hour.

    `add` hands back each minute once it is over (a sample of a later minute came), with any
    earlier ones a failed write left; `sent` says they were stored. At most `keep` wait."""

    def __init__(self, keep: int = 5) -> None:
        self.keep = keep
        self.start: int | None = None
        self.rows: list[tuple] = []
        self.ready: list[tuple[int, list[tuple]]] = []

    def add(self, sample: dict) -> list[tuple[int, list[tuple]]]:
        row = chart_row(sample)
        if not isinstance(row[0], (int, float)):
            return self.ready
        start = int(row[0]) // 60 * 60
        if self.start is not None and start != self.start and self.rows:
            self.ready = (self.ready + [(self.start, self.rows)])[-self.keep:]
            self.rows = []
        self.start = start
        self.rows.append(row)
        return self.ready

    def sent(self) -> None:
        self.ready = []

    def seed(self, start: int, rows: list[tuple]) -> None:
        """Rows of a minute a previous sampler stored unfinished (it stopped, this one goes on):
        the minute is stored whole when it ends, not from this sampler's first row."""
        if not self.rows and rows and start == int(time.time()) // 60 * 60:
            self.start, self.rows = start, sorted(rows, key=lambda r: r[0] or 0)

    def unfinished(self) -> list[tuple[int, list[tuple]]]:
        """What is waiting and the minute under way (at shutdown)."""
        return self.ready + ([(self.start, self.rows)] if self.rows else [])


def is_gap(prev_ts: float, ts: float, interval: float | None) -> bool:
    """Whether two consecutive samples are further apart than sampling explains."""
    return ts - prev_ts > 3 * (interval or 1.0) + 1.0


class History:
    names = _NAMES

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # (ts, seq, event id, per-core tuple, *series values, interval)
        self._rows: deque[tuple] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, event_id: str, sample: dict) -> None:
        ts, seq, interval, cores, values = chart_row(sample)
        self._rows.append((ts, seq, event_id, cores) + values + (interval,))
        limit = time.time() - self.seconds
        while self._rows and (self._rows[0][0] or 0) < limit:
            self._rows.popleft()

    def add_older(self, rows: list[tuple]) -> int:
        """Chart rows kept apart from whole samples (store/chart_minutes.py), older than any held:
        the part of the hour before the whole samples a restart reloads. Returns how many went in."""
        first = self._rows[0][0] if self._rows else None
        limit = time.time() - self.seconds
        older = [r for r in rows if r[0] is not None and r[0] >= limit and (first is None or r[0] < first)
                 and len(r[4]) == len(_NAMES)]
        older.sort(key=lambda r: r[0])
        self._rows.extendleft((ts, seq, None, cores) + values + (interval,)
                              for ts, seq, interval, cores, values in reversed(older))
        return len(older)

    @property
    def oldest(self) -> float | None:
        return self._rows[0][0] if self._rows else None

    def columns(self, seconds: float | None = None, until: float | None = None) -> dict:
        """The `seconds` before `until` (now) of history as columns, oldest first."""
        rows = list(self._rows)
        if rows and (seconds is not None or until is not None):
            stamps = [r[0] or 0 for r in rows]
            end = len(rows) if until is None else bisect.bisect_right(stamps, until)
            since = (time.time() if until is None else until) - (seconds or self.seconds)
            rows = rows[bisect.bisect_left(stamps, since, 0, end):end]
        with_gaps: list[tuple] = []
        blank = (None, None, None, ()) + (None,) * len(_NAMES) + (None,)
        for row in rows:
            if with_gaps and row[0] is not None and with_gaps[-1][0] is not None \
                    and is_gap(with_gaps[-1][0], row[0], row[_INTERVAL]):
                with_gaps.append((with_gaps[-1][0] + (row[_INTERVAL] or 1.0),) + blank[1:])
            with_gaps.append(row)
        ncores = max((len(r[3]) for r in with_gaps), default=0)
        out: dict = {
            "ts": [r[0] for r in with_gaps],
            "seq": [r[1] for r in with_gaps],
            "cores": [[r[3][i] if i < len(r[3]) else None for r in with_gaps] for i in range(ncores)],
        }
        for index, name in enumerate(_NAMES, start=_FIRST):
            out[name] = [r[index] for r in with_gaps]
        return {
            "last_event_id": rows[-1][2] if rows else None,
            "count": len(rows),
            "series": {s.name: {"unit": s.unit, "help": s.help} for s in SERIES},
            "columns": out,
        }
