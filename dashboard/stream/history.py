"""Chart history: the numbers the charts plot, kept compactly per sample.

The event buffer holds whole encoded samples for resuming streams; charts need
only a dozen numbers per sample, in columns (the shape uPlot draws from). This
keeps those numbers as tuples and builds columns on request.
"""

from __future__ import annotations

import time
from collections import deque

from ..sampling.series import SERIES, dig

_NAMES = tuple(s.name for s in SERIES)


class History:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # (ts, seq, event id, per-core tuple, *series values)
        self._rows: deque[tuple] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, event_id: str, sample: dict) -> None:
        cores = tuple(dig(sample, "cpu", "per_core") or ())
        row = (sample.get("ts"), sample.get("seq"), event_id, cores) + tuple(
            s.get(sample) for s in SERIES
        )
        self._rows.append(row)
        limit = time.time() - self.seconds
        while self._rows and (self._rows[0][0] or 0) < limit:
            self._rows.popleft()

    def columns(self, seconds: float | None = None) -> dict:
        """The last `seconds` of history as columns, oldest first."""
        rows = list(self._rows)
        if seconds is not None and rows:
            since = time.time() - seconds
            start = len(rows)
            while start > 0 and (rows[start - 1][0] or 0) >= since:
                start -= 1
            rows = rows[start:]
        ncores = max((len(r[3]) for r in rows), default=0)
        out: dict = {
            "ts": [r[0] for r in rows],
            "seq": [r[1] for r in rows],
            "cores": [[r[3][i] if i < len(r[3]) else None for r in rows] for i in range(ncores)],
        }
        for index, name in enumerate(_NAMES, start=4):
            out[name] = [r[index] for r in rows]
        return {
            "last_event_id": rows[-1][2] if rows else None,
            "count": len(rows),
            "series": {s.name: {"unit": s.unit, "help": s.help} for s in SERIES},
            "columns": out,
        }
