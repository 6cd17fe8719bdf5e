"""Chart history: the numbers the charts plot, kept compactly per sample.

The event buffer holds whole encoded samples for resuming streams; charts need
only a dozen numbers per sample, in columns (the shape uPlot draws from). This
keeps those numbers as tuples and builds columns on request. Where samples
stop for longer than a few intervals (the server was down, sampling paused) a
row of nulls goes in between, so a chart shows a gap rather than a line.
"""

from __future__ import annotations

import bisect
import time
from collections import deque

from ..sampling.series import SERIES, dig

_NAMES = tuple(s.name for s in SERIES)
_FIRST = 4  # index of the first series value in a row
_INTERVAL = _FIRST + len(_NAMES)  # index of the sample's interval


def is_gap(prev_ts: float, ts: float, interval: float | None) -> bool:
    """Whether two consecutive samples are further apart than sampling explains."""
    return ts - prev_ts > 3 * (interval or 1.0) + 1.0


class History:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # (ts, seq, event id, per-core tuple, *series values, interval)
        self._rows: deque[tuple] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, event_id: str, sample: dict) -> None:
        cores = tuple(dig(sample, "cpu", "per_core") or ())
        row = (sample.get("ts"), sample.get("seq"), event_id, cores) + tuple(
            s.get(sample) for s in SERIES
        ) + (sample.get("interval"),)
        self._rows.append(row)
        limit = time.time() - self.seconds
        while self._rows and (self._rows[0][0] or 0) < limit:
            self._rows.popleft()

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
