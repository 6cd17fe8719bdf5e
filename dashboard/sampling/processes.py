"""The process table: one scan of every process per sample.

This is the most expensive collector (one /proc read per process), so it does
the least it can per process. On Linux it reads each process's stat and statm
files itself (sampling/procfs.py: CPU times, start time and RSS, for under half
of psutil's CPU); elsewhere, or when /proc does not read as expected at start,
CPU times and RSS come from psutil's oneshot(). The name is read once per
process lifetime and the owner only for processes that are shown, through a
psutil.Process built for those rows alone. The latest table stays in memory so
console commands such as `top` and `ps` answer from it instead of scanning
again, and the trails of the processes shown (sampling/trails.py) give
`proc <pid>` their recent past.
"""

from __future__ import annotations

import heapq
import os
import re
import time
from dataclasses import dataclass, field

import psutil

from . import procfs
from .rates import Rates
from .trails import Trails


@dataclass(slots=True)
class Proc:
    pid: int
    name: str
    cpu: float | None  # percent of one core over the last interval; None when new
    rss: int
    # The psutil view of this process: given by the psutil scan, built on first
    # use (see `proc`) by the /proc scan, which never makes one per tick.
    _proc: psutil.Process | None = field(default=None, repr=False, compare=False)
    created: float = 0.0
    start: int | None = field(default=None, repr=False, compare=False)  # starttime ticks (/proc scan)

    @property
    def proc(self) -> psutil.Process:
        """psutil.Process of this very process; NoSuchProcess once it is gone or its pid is reused."""
        if self._proc is None:
            self._proc = same_process(self.pid, self.created, self.start)
        return self._proc

    def row(self, owners: "Owners") -> dict:
        return {
            "pid": self.pid,
            "name": self.name,
            "user": owners.of(self),
            "cpu": self.cpu,
            "rss": self.rss,
        }


def same_process(pid: int, created: float, start: int | None = None) -> psutil.Process:
    """psutil.Process(pid) if it is the process created at `created`, else NoSuchProcess.

    The pid may have been reused since the scan. psutil's create time adds the
    boot time as it reads it now; if the clock was stepped since the scan, the
    start in clock ticks (which never moves) still says whether it is the same.
    """
    proc = psutil.Process(pid)
    when = proc.create_time()
    if when == created:
        return proc
    if start is not None and round((when - psutil.boot_time()) * procfs.CLK_TCK) == start:
        return proc
    raise psutil.NoSuchProcess(pid, msg="pid reused since the scan")


class Owners:
    """User name per process, looked up lazily and kept while the process lives."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, float], str] = {}

    def of(self, row: Proc) -> str:
        # The cache is asked first: a row already known never builds its psutil object.
        key = (row.pid, row.created)
        user = self._cache.get(key)
        if user is None:
            try:
                proc = row.proc
            except psutil.Error:
                user = "?"  # gone since the scan, as username() on the old object would say
            else:
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

    def __init__(self, top_n: int = 10, backend: str = "auto") -> None:
        """backend: "auto" (/proc on Linux when it reads as expected, else psutil), "procfs" or "psutil"."""
        if backend not in ("auto", "procfs", "psutil"):
            raise ValueError(f"backend must be auto, procfs or psutil, not {backend!r}")
        self._reader = procfs.open_reader() if backend != "psutil" else None
        if backend == "procfs" and self._reader is None:
            raise RuntimeError("no /proc to read on this host")
        self.backend = "procfs" if self._reader is not None else "psutil"
        self.top_n = top_n
        self.owners = Owners()
        # Name per process lifetime. psutil scan: (pid, created) -> name; /proc
        # scan: (pid, starttime) -> (created, name), so that a process keeps the
        # create time it was first seen with, as psutil's cached objects do.
        self._names: dict = {}
        self.latest: list[Proc] = []
        self.trails = Trails()

    def __call__(self, rates: Rates) -> dict:
        if self._reader is not None:
            rows, alive = self._scan_procfs(rates)
        else:
            rows, alive = self._scan_psutil(rates)
        self.owners.keep(alive)
        self.latest = rows
        top_cpu, top_mem = top(rows, self.top_n, "cpu"), top(rows, self.top_n, "mem")
        asked = self.trails.asked
        shown = {(p.pid, p.created): (p.cpu, p.rss) for p in rows if (p.pid, p.created) in asked} if asked else {}
        shown.update({(p.pid, p.created): (p.cpu, p.rss) for p in top_cpu + top_mem})
        self.trails.feed(time.time(), shown, alive)
        return {
            "count": len(rows),
            "top_cpu": [p.row(self.owners) for p in top_cpu],
            "top_mem": [p.row(self.owners) for p in top_mem],
        }

    def rows(self, procs: list[Proc]) -> list[dict]:
        return [p.row(self.owners) for p in procs]

    def _scan_psutil(self, rates: Rates) -> tuple[list[Proc], set[tuple[int, float]]]:
        rows: list[Proc] = []
        alive: set[tuple[int, float]] = set()
        names: dict[tuple[int, float], str] = self._names
        for proc in psutil.process_iter():
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
                    created = proc.create_time()
                    key = (proc.pid, created)
                    name = names.get(key)
                    if name is None:
                        name = names[key] = proc.name()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            alive.add(key)
            cpu_rate = rates.per_second(_cpu_key(*key), times.user + times.system)
            cpu = None if cpu_rate is None else round(100.0 * cpu_rate, 1)
            rows.append(Proc(proc.pid, name, cpu, rss, proc, created))
        self._names = {k: v for k, v in names.items() if k in alive}
        return rows, alive

    def _scan_procfs(self, rates: Rates) -> tuple[list[Proc], set[tuple[int, float]]]:
        rows: list[Proc] = []
        alive: set[tuple[int, float]] = set()
        known, fresh = self._names, {}
        boot = None
        per_second, append, add = rates.per_second, rows.append, alive.add
        for pid, comm, start, cpu_seconds, rss in self._reader.scan():
            seen = known.get((pid, start))
            if seen is None:
                if boot is None:  # read once per scan, and only when a process is new
                    boot = psutil.boot_time()
                created = procfs.created(start, boot)
                seen = (created, _full_name(pid, comm, created, start))
            fresh[pid, start] = seen
            created, name = seen
            add((pid, created))
            cpu_rate = per_second(("proc", pid, created), cpu_seconds)
            cpu = None if cpu_rate is None else round(100.0 * cpu_rate, 1)
            append(Proc(pid, name, cpu, rss, None, created, start))
        self._names = fresh
        return rows, alive


def _full_name(pid: int, comm: bytes, created: float, start: int) -> str:
    """psutil's name() of the process the scan read: comm, unless the kernel cut it.

    The kernel keeps 15 characters of a name; psutil's name() then takes the
    command line's first word when it starts with them. Asked of psutil, for
    that one process, once in its lifetime (the table keeps names).
    """
    name = os.fsdecode(comm)  # psutil decodes the same way (filesystem encoding, surrogateescape)
    if len(name) >= 15:
        try:
            name = same_process(pid, created, start).name()
        except psutil.Error:
            pass  # gone or unreadable: the cut name, as psutil gives when the command line is denied
    return name


def _get(row, name: str):
    # Rows are Proc objects in the sampler and plain dicts once they have
    # travelled (through Redis, for another host's table).
    return row[name] if isinstance(row, dict) else getattr(row, name)


# Sort keys: processes with no CPU rate yet sort last. One pair per shape of row,
# because this runs on every process of every sample.
_KEYS = {
    ("cpu", False): lambda p: (p.cpu if p.cpu is not None else -1.0, p.rss),
    ("mem", False): lambda p: (p.rss, p.cpu or 0.0),
    ("cpu", True): lambda p: (p["cpu"] if p["cpu"] is not None else -1.0, p["rss"]),
    ("mem", True): lambda p: (p["rss"], p["cpu"] or 0.0),
}


def top(rows: list, n: int, sort: str = "cpu") -> list:
    """The n heaviest processes by "cpu" or "mem"; processes with no CPU rate yet sort last."""
    if sort not in ("cpu", "mem"):
        raise ValueError(f"sort must be cpu or mem, not {sort!r}")
    if not rows:
        return []
    # nlargest is sorted(reverse=True)[:n], ties in the same order, without sorting everything.
    return heapq.nlargest(n, rows, key=_KEYS[sort, isinstance(rows[0], dict)])


def matching(rows: list, pattern: str) -> list:
    """The process with that pid when pattern is a number, else those whose name contains it
    (case-insensitive): `ps 1` is pid 1, not every name with a 1 in it."""
    if re.fullmatch(r"\d+", pattern):
        return [p for p in rows if _get(p, "pid") == int(pattern)]
    needle = pattern.casefold()
    return [p for p in rows if needle in _get(p, "name").casefold()]
