"""The process table: one scan of every process per sample.

This is the most expensive collector (one /proc read per process), so it does
the least it can per process: CPU times and RSS inside psutil's oneshot(). The
name is read once per process lifetime and the owner only for processes that
are shown. The latest table stays in memory so console commands such as `top`
and `ps` answer from it instead of scanning again, and the trails of the
processes shown (sampling/trails.py) give `proc <pid>` their recent past.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import psutil

from .rates import Rates
from .trails import Trails


@dataclass(slots=True)
class Proc:
    pid: int
    name: str
    cpu: float | None  # percent of one core over the last interval; None when new
    rss: int
    proc: psutil.Process = field(repr=False)
    created: float = 0.0

    def row(self, owners: "Owners") -> dict:
        return {
            "pid": self.pid,
            "name": self.name,
            "user": owners.of(self.proc),
            "cpu": self.cpu,
            "rss": self.rss,
        }


class Owners:
    """User name per process, looked up lazily and kept while the process lives."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, float], str] = {}

    def of(self, proc: psutil.Process) -> str:
        key = (proc.pid, proc.create_time())
        user = self._cache.get(key)
        if user is None:
            try:
                user = proc.username()
            except (psutil.Error, KeyError):
                # KeyError: a uid with no passwd entry (common in containers).
                try:
                    user = str(proc.uids().real)
                except psutil.Error:
                    user = "?"
            self._cache[key] = user
        return user

    def keep(self, alive: set[tuple[int, float]]) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k in alive}


def _cpu_key(pid: int, created: float) -> tuple:
    return ("proc", pid, created)


class ProcessTable:
    """Collector for `processes`, and the store console commands read from."""

    help = (
        "Process count and the top processes by CPU (% of one core over the last "
        "interval, like top) and by resident memory (bytes), with pid, name and user."
    )

    def __init__(self, top_n: int = 10) -> None:
        self.top_n = top_n
        self.owners = Owners()
        self._names: dict[tuple[int, float], str] = {}
        self.latest: list[Proc] = []
        self.trails = Trails()

    def __call__(self, rates: Rates) -> dict:
        rows: list[Proc] = []
        alive: set[tuple[int, float]] = set()
        for proc in psutil.process_iter():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
                    created = proc.create_time()
                    key = (proc.pid, created)
                    name = self._names.get(key)
                    if name is None:
                        name = self._names[key] = proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive.add(key)
            cpu_rate = rates.per_second(_cpu_key(*key), times.user + times.system)
            cpu = None if cpu_rate is None else round(100.0 * cpu_rate, 1)
            rows.append(Proc(proc.pid, name, cpu, rss, proc, created))
        self._names = {k: v for k, v in self._names.items() if k in alive}
        self.owners.keep(alive)
        self.latest = rows
        top_cpu, top_mem = top(rows, self.top_n, "cpu"), top(rows, self.top_n, "mem")
        asked = self.trails.asked
        shown = {(p.pid, p.created): (p.cpu, p.rss) for p in rows if (p.pid, p.created) in asked}
        shown.update({(p.pid, p.created): (p.cpu, p.rss) for p in top_cpu + top_mem})
        self.trails.feed(time.time(), shown, alive)
        return {
            "count": len(rows),
            "top_cpu": [p.row(self.owners) for p in top_cpu],
            "top_mem": [p.row(self.owners) for p in top_mem],
        }

    def rows(self, procs: list[Proc]) -> list[dict]:
        return [p.row(self.owners) for p in procs]


def _get(row, name: str):
    # Rows are Proc objects in the sampler and plain dicts once they have
    # travelled (through Redis, for another host's table).
    return row[name] if isinstance(row, dict) else getattr(row, name)


def top(rows: list, n: int, sort: str = "cpu") -> list:
    """The n heaviest processes by "cpu" or "mem"; processes with no CPU rate yet sort last."""
    if sort == "cpu":
        key = lambda p: (_get(p, "cpu") if _get(p, "cpu") is not None else -1.0, _get(p, "rss"))  # noqa: E731
    elif sort == "mem":
        key = lambda p: (_get(p, "rss"), _get(p, "cpu") or 0.0)  # noqa: E731
    else:
        raise ValueError(f"sort must be cpu or mem, not {sort!r}")
    return sorted(rows, key=key, reverse=True)[:n]


def matching(rows: list, pattern: str) -> list:
    """The process with that pid when pattern is a number, else those whose name contains it
    (case-insensitive): `ps 1` is pid 1, not every name with a 1 in it."""
    if re.fullmatch(r"\d+", pattern):
        return [p for p in rows if _get(p, "pid") == int(pattern)]
    needle = pattern.casefold()
    return [p for p in rows if needle in _get(p, "name").casefold()]
