"""The busiest containers' CPU and memory over the hour, for the page's container charts.

Fed with each metrics sample a view takes in, beside its chart history (once
per sample, never per viewer). Per sample it keeps the ids of the containers
listed (one tuple, shared while the set stays the same) and each one's CPU and
memory as a share of its own limit, packed as float32: 50 containers for an
hour at 1 Hz take about 1.5 MB. An answer picks the `top` containers with the
highest mean of the asked figure over the window and gives their columns
aligned on the samples' times, None where one was not running. After a
restart it holds what the stored whole events hold (RESUME_SECONDS).
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import deque

FIGURES = ("cpu_pct", "mem_pct")  # % of the container's own limit (or of the host's, without one)
SORTS = {"cpu": 0, "mem": 1}


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _shown(value: float):
    return None if math.isnan(value) else round(value, 2)


class ContainerHistory:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rows: deque[tuple[float, tuple, array]] = deque()  # (ts, ids, cpu... then mem...)
        self._names: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, sample: dict) -> None:
        ts = sample.get("ts")
        section = sample.get("containers")
        if not isinstance(ts, (int, float)) or not isinstance(section, dict):
            return
        listed = [r for r in section.get("list") or () if isinstance(r, dict) and isinstance(r.get("id"), str)]
        ids = tuple(r["id"] for r in listed)
        if self._rows and self._rows[-1][1] == ids:
            ids = self._rows[-1][1]  # one tuple for every sample of the same set
        self._rows.append((float(ts), ids, array("f", [_number(r.get(f)) for f in FIGURES for r in listed])))
        for r in listed:
            self._names[r["id"]] = str(r.get("name") or r["id"])
        while self._rows and self._rows[0][0] < ts - self.seconds:
            self._rows.popleft()
        if len(self._names) > 4 * len(ids) + 256:  # containers gone from the whole window
            alive = {cid for _ts, row_ids, _v in self._rows for cid in row_ids}
            self._names = {cid: name for cid, name in self._names.items() if cid in alive}

    def trail(self, cid: str) -> list[tuple]:
        """(ts, cpu_pct, mem_pct) of one container over the samples that listed it."""
        out = []
        for ts, ids, values in self._rows:
            if cid in ids:
                i = ids.index(cid)
                out.append((ts, _shown(values[i]), _shown(values[len(ids) + i])))
        return out

    def columns(self, seconds: float, top: int = 5, by: str = "cpu", until: float | None = None) -> dict:
        """The window's times and, for its `top` busiest containers by `by` (cpu or mem), their
        CPU and memory columns; busiest first."""
        rows = list(self._rows)
        stamps = [r[0] for r in rows]
        end = len(rows) if until is None else bisect.bisect_right(stamps, until)
        since = (stamps[end - 1] if end else 0) - seconds
        rows = rows[bisect.bisect_left(stamps, since, 0, end):end]
        pick = SORTS[by]
        totals: dict[str, list] = {}
        for _ts, ids, values in rows:
            width = len(ids)
            for i, cid in enumerate(ids):
                v = values[pick * width + i]
                if not math.isnan(v):
                    total = totals.setdefault(cid, [0.0, 0])
                    total[0] += v
                    total[1] += 1
        chosen = sorted(totals, key=lambda cid: (-totals[cid][0] / totals[cid][1], cid))[:top]
        positions: dict[int, dict] = {}  # per ids tuple (shared by runs of samples): id -> index
        out = []
        for cid in chosen:
            cpu, mem = [], []
            for _ts, ids, values in rows:
                where = positions.get(id(ids))
                if where is None:
                    where = positions[id(ids)] = {c: i for i, c in enumerate(ids)}
                i = where.get(cid)
                cpu.append(None if i is None else _shown(values[i]))
                mem.append(None if i is None else _shown(values[len(ids) + i]))
            out.append({"id": cid, "name": self._names.get(cid, cid), "cpu_pct": cpu, "mem_pct": mem,
                        "mean": round(totals[cid][0] / totals[cid][1], 2)})
        return {"ts": [r[0] for r in rows], "by": by, "containers": out}
