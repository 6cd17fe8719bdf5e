"""The process table: one scan of every process per sample.

This is the most expensive collector (one /proc read per process), so it does
the least it can per process. On Linux it reads each process's stat file
itself, through a file kept open (sampling/procfs.py: CPU times, start time and
RSS, for about a fifth of psutil's CPU), and makes a row (Proc) only for the
processes that may be shown; elsewhere, or when /proc does not read as
expected at start, CPU times and RSS come from psutil's oneshot() for every
process. The name is read once per process lifetime and the owner only for
processes that are shown, through a psutil.Process built for those rows
alone. The latest sample stays in memory so console commands such as `top`
and `ps` answer from it instead of scanning again (`latest`: the /proc rows
are made when first asked), and the trails of the processes shown
(sampling/trails.py) give `proc <pid>` their recent past.
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
        # scan: (pid, starttime) as bytes -> (created, name), for every process
        # a row was made for, so that a process keeps the create time it was
        # first seen with, as psutil's cached objects do.
        self._names: dict = {}
        self._latest: list[Proc] | None = []
        self._tick: procfs.Tick | None = None
        self._made: dict[bytes, Proc] = {}  # this tick's rows, by pid as listed
        self._boot: float | None = None
        self.trails = Trails()

    @property
    def latest(self) -> list[Proc]:
        """Every process of the latest sample, for console commands (`ps`, `top`, `proc`).

        The /proc scan makes these rows only when asked, once per sample: a
        sample itself makes rows for the few processes it shows. Their RSS is
        statm's, psutil's figure, read when the list is made (the rows shown
        keep the one read at the sample), so that `ps` and `top` give what
        psutil would; CPU is the sample's."""
        if self._latest is None:
            tick = self._tick
            self._latest = [self._row(i) for i in range(len(tick.pids))]
        return self._latest

    def close(self) -> None:
        """Close the files the /proc reader keeps open (a finalizer does it too, at the latest at exit)."""
        if self._reader is not None:
            self._reader.close()

    def __call__(self, rates: Rates) -> dict:
        if self._reader is not None:
            count, top_cpu, top_mem, asked, alive = self._sample_procfs()
        else:
            rows, alive = self._scan_psutil(rates)
            self._latest, count = rows, len(rows)
            top_cpu, top_mem = top(rows, self.top_n, "cpu"), top(rows, self.top_n, "mem")
            asked = [p for p in rows if (p.pid, p.created) in self.trails.asked] if self.trails.asked else []
        self.owners.keep(alive)
        shown = {(p.pid, p.created): (p.cpu, p.rss) for p in asked}
        shown.update({(p.pid, p.created): (p.cpu, p.rss) for p in top_cpu + top_mem})
        self.trails.feed(time.time(), shown, alive)
        return {
            "count": count,
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

    def _sample_procfs(self) -> tuple[int, list[Proc], list[Proc], list[Proc], set[tuple[int, float]]]:
        """One /proc sample: the count, the top tables, the rows asked about, and which rows made are alive.

        Every process costs one pread and, when its stat changed, one parse;
        rows (Proc) are made only for the processes that may be shown: the
        top by (CPU, stat's RSS) and by stat's RSS, with those near the cut
        (_near_top), then ranked again on statm's RSS, in the listing's order
        so that ties fall as in the full table. Nothing else is made
        per process per tick: the full table waits until asked (`latest`)."""
        tick = self._reader.sample()
        self._tick, self._latest, self._made, self._boot = tick, None, {}, None
        state, alive, names = tick.state, set(), {}
        for key, seen in self._names.items():  # rows made before: forgotten once their process is gone
            now = state.get(key[0])
            if now is not None and now[1] == key[1]:
                names[key] = seen
                alive.add((int(key[0]), seen[0]))
        self._names = names
        n, k = len(tick.pids), self.top_n
        top_cpu = top_mem = []
        if k and n:
            spare = 3 * k + 8
            by_cpu = heapq.nlargest(spare, range(n), key=tick.scores.__getitem__)
            top_cpu = top([self._row(i) for i in sorted(_near_top(by_cpu, k, tick.pages, self._cpu_rank))], k, "cpu")
            by_mem = heapq.nlargest(spare, range(n), key=tick.pages.__getitem__)
            top_mem = top([self._row(i) for i in sorted(_near_top(by_mem, k, tick.pages))], k, "mem")
        asked = []
        for pid, created in self.trails.asked:
            try:
                row = self._row(tick.pids.index(b"%d" % pid))
            except ValueError:
                continue  # gone
            if row.created == created:
                asked.append(row)
        alive.update((p.pid, p.created) for p in self._made.values())
        return n, top_cpu, top_mem, asked, alive

    def _cpu(self, i: int) -> float | None:
        used, elapsed = self._tick.used(i), self._tick.elapsed
        return None if used < 0 or not elapsed else round(100.0 * used / (procfs.CLK_TCK * elapsed), 1)

    def _cpu_rank(self, i: int) -> float:
        cpu = self._cpu(i)
        return -1.0 if cpu is None else cpu  # as top() ranks: no rate yet sorts last

    def _row(self, i: int) -> Proc:
        """The row of process i of the latest tick, made once per tick."""
        tick = self._tick
        name = tick.pids[i]
        row = self._made.get(name)
        if row is None:
            data, start, _ticks, pages, _idle = tick.state[name]
            rss = self._reader.rss_of(name, data)
            if rss is None:  # gone since the tick: its RSS then, from stat
                rss = pages * procfs.PAGE_SIZE
            seen = self._names.get((name, start))
            pid, ticks = int(name), int(start)
            if seen is None:
                if self._boot is None:  # read once per tick, and only when a row is new
                    self._boot = psutil.boot_time()
                created = procfs.created(ticks, self._boot)
                seen = self._names[name, start] = (created, _full_name(pid, procfs.comm(data), created, ticks))
            row = self._made[name] = Proc(pid, seen[1], self._cpu(i), rss, None, seen[0], ticks)
        return row


def _near_top(ranked: list[int], k: int, pages: list[int], major=None) -> list[int]:
    """Of the processes in ranked, those that may be in the top k by (major, statm's RSS).

    stat's RSS is off by at most procfs.RSS_SLACK pages either way: once
    ranked is in (major, stat's RSS) order, each of its first k has a statm
    RSS above that of any process with the same major and a stat RSS more than
    twice that below the k-th's, which therefore cannot be among the top k.
    major: the shown CPU of a process (ranked comes in order of CPU ticks,
    which is the same order at intervals under 10 s, where a tick is more than
    0.1 %); None for memory. When more than ranked holds are that near, the
    cut among them is stat's."""
    if len(ranked) <= k:
        return ranked
    if major is None:
        floor = pages[ranked[k - 1]] - 2 * procfs.RSS_SLACK
        return [i for i in ranked if pages[i] >= floor]
    keyed = sorted(((major(i), pages[i], i) for i in ranked), reverse=True)
    bar, floor = keyed[k - 1][0], keyed[k - 1][1] - 2 * procfs.RSS_SLACK
    return [i for m, p, i in keyed if m > bar or (m == bar and p >= floor)]


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
