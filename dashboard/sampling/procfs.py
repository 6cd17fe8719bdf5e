"""Linux only: the process table's per-tick fields read straight from /proc, one kept-open file per process.

psutil's process_iter() with oneshot() costs 55 to 65 µs of CPU per process
per sample on our 2-core test machine (a Process object per pid, a Python
file object per file, wrappers). The table needs three numbers per process
per tick, all in /proc/<pid>/stat: CPU times, start time, RSS. The reader
keeps each stat file open and reads it again with os.pread at offset 0, which
makes the kernel write it anew: about 5 µs of kernel time a process, against
14 to open, read and close it; a stat that reads the same bytes as at the
tick before (an idle process) is not parsed again. psutil stays for the rest
(a name the kernel cut, the owner, `proc <pid>`, kill) and on other systems.

A kept file is that process's, not that number's: once the process is reaped
a read fails with ESRCH, and a new process given the same pid is not seen
through it. The reader then closes it and opens the path again, and the new
process is new to the table: its start time differs, and (pid, create time)
is the key. The file of a process gone from the listing is closed at the end
of that sample; close() closes them all, as a finalizer does when the reader
is collected or the interpreter exits. FD_CACHE bounds the files kept by all
the readers of a process together (one in the app; tests make more) and the
containers' cgroup files (container_cgroups.Kept); beyond it a file is read
with open, read and close each tick, as before.

Listing /proc costs about 1.4 µs a process too. The kernel's /proc/loadavg
ends with the pid it gave last in our pid namespace: every new process (and
thread) moves it. While it stands still, no process can have come, and the
reader goes over the processes of the sample before instead of listing /proc
(those that went fail their read). It lists again after the pid moved, and
once more at the next sample (a process is given its pid a moment before it
shows in /proc), and every LIST_EVERY seconds whatever it says; should such a
listing find a process the standing pid did not announce, loadavg is not to
be trusted here (an emulated /proc) and the reader lists every time from then
on. It reads loadavg only when /proc is this process's own pid namespace's.

The values are psutil's, to the bit where they are keys or shown: create time
is psutil's formula (starttime / CLK_TCK + boot_time()), and the RSS of every
row shown is the statm field psutil's memory_info() reads (rss_of(), for those
rows only). stat's own RSS field counts the same pages, but kernels with the
2025 change "mm: fix the inaccurate memory statistics issue for users" (this
machine's 6.18 has it) sum the per-CPU counters for statm and status and not
for stat, whose figure then lags (by 26 to 44 pages for an idle `cat` here; on
hosts with many CPUs it can read 0). The table only ranks by it, with a margin
of RSS_SLACK pages for that lag (processes.py)."""

from __future__ import annotations

import errno
import os
import resource
import sys
import time
import weakref

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# Stat files kept open at most, one per process read, by every Reader of this
# process together. The server's connection cap (WORKER_CONNECTIONS, see
# setting_kinds.default_worker_connections) leaves this many descriptors below
# the open-files limit for them, on top of its 256 (fd_cap: less if it is low).
FD_CACHE = 4096
_kept = 0  # files kept open now, by all readers
_budget: int | None = None  # fd_cap(), read when the first file is kept

LIST_EVERY = 10.0  # seconds: /proc is listed at least this often, whatever loadavg says

# /proc/<pid>/stat is a few hundred bytes (52 numbers and a name of at most 64);
# one read of this size returns all of it, as the kernel writes it in one go.
_READ = 4096
_FLAGS = os.O_RDONLY | os.O_CLOEXEC

# Errors that mean "this process is gone" (ENOENT when its directory went away
# between the listing and the open, ESRCH when it exited after the open) or
# "not ours to read" (hidepid, a security module): skipped, as the psutil path
# skips NoSuchProcess and AccessDenied.
_SKIP = (FileNotFoundError, ProcessLookupError, PermissionError)

_PF_KTHREAD = 0x00200000  # in stat's flags (field 9): a kernel thread (include/linux/sched.h)

# A tick's score of a process: (CPU ticks used since the previous tick + 1) << SHIFT | stat's RSS
# pages, 0 << SHIFT for a process new this tick. One int, so that ranking by (CPU, RSS) is one
# C-level comparison; RSS pages stay below 2**40 (4 PiB).
SHIFT = 40

# The most by which stat's RSS may differ from statm's, in pages: stat reads three per-CPU
# counters (file, anon and shmem pages) without summing the CPUs' parts, and each CPU holds
# less than the kernel's batch, max(32, 2 x CPUs), of each (lib/percpu_counter.c).
_CPUS = max(os.cpu_count() or 1, os.sysconf("SC_NPROCESSORS_CONF") if hasattr(os, "sysconf") else 1)
RSS_SLACK = 3 * max(32, 2 * _CPUS) * _CPUS

Row = tuple[int, bytes, int, float, int]  # pid, comm, starttime ticks, CPU seconds, RSS bytes


def fd_cap(limit: int | None = None) -> int:
    """Stat files this process keeps open: FD_CACHE, or a quarter of the open-files limit when that is less."""
    if limit is None:
        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return FD_CACHE
    return max(0, min(FD_CACHE, limit // 4))


def parse_stat(data: bytes) -> tuple[bytes, bytes, int, int, int, int, int]:
    """(comm, state, ppid, flags, utime, stime, starttime) from one stat file's bytes, times in clock ticks.

    The name sits between the first "(" and the LAST ")": it may itself hold
    spaces and parentheses, and nothing after it can hold a ")". Fields after
    it are counted from state (field 3 in proc(5)), so field n is fields[n - 3].
    ValueError or IndexError when the bytes are not a stat line.
    """
    right = data.rindex(b")")
    comm = data[data.index(b"(") + 1:right]
    fields = data[right + 2:].split(b" ", 20)  # the 30-odd fields after starttime stay uncut
    return comm, fields[0], int(fields[1]), int(fields[6]), int(fields[11]), int(fields[12]), int(fields[19])


def comm(data: bytes) -> bytes:
    """The name in one stat file's bytes."""
    return data[data.find(b"(") + 1:data.rfind(b")")]


class Tick:
    """One sample() of every process, as parallel lists: index i is one process.

    pids: the pid as /proc lists it (bytes); scores: see SHIFT; pages: stat's
    RSS field; state: pid -> (stat bytes, starttime bytes, CPU ticks, RSS
    pages, idle score), what the next tick compares with. elapsed: seconds
    since the previous sample (None on the first)."""

    __slots__ = ("now", "elapsed", "pids", "scores", "pages", "state")

    def __init__(self, now: float, elapsed: float | None, pids: list, scores: list, pages: list,
                 state: dict) -> None:
        self.now, self.elapsed, self.pids, self.scores, self.pages, self.state = (
            now, elapsed, pids, scores, pages, state)

    def used(self, i: int) -> int:
        """CPU clock ticks process i used since the previous tick; -1 when it is new this tick."""
        return (self.scores[i] >> SHIFT) - 1


class Reader:
    """Reads every process's stat each sample() through files kept open between calls (see the module)."""

    def __init__(self, root: str = "/proc", cap: int | None = None) -> None:
        """cap: the most files this reader keeps (None: as many as the process's budget, fd_cap(), has left)."""
        self.root = os.fsencode(root)
        self.cap = FD_CACHE if cap is None else cap
        self._fds: dict[bytes, int] = {}  # pid as listed -> its open stat file
        self._state: dict[bytes, tuple] = {}
        self._last: float | None = None
        # The pid given last (loadavg's), once known to be trusted (_trust: None until checked); settled:
        # listed with that pid standing since the sample before (see the module).
        self._aux: dict[str, int] = {}  # "loadavg" -> its open file
        self._trust, self._newest, self._settled, self._listed = None, None, False, 0.0
        self._finalizer = weakref.finalize(self, close_files, self._fds, self._aux)

    def sample(self) -> Tick:
        """Every process's stat, one pread each (a process that exits or is unreadable meanwhile is left out).

        Kernel threads and zombies are in it, as they are in psutil's table.
        """
        now = time.monotonic()
        fds, old, new = self._fds, self._state, {}
        pids: list[bytes] = []
        scores: list[int] = []
        pages_of: list[int] = []
        # Locals: this loop runs once per process per tick, and every global
        # or attribute lookup in it is paid a thousand times a second.
        fd_of, prev_of, pread = fds.get, old.get, os.pread
        add_pid, add_score, add_pages = pids.append, scores.append, pages_of.append
        size, shift, idle = _READ, SHIFT, 1 << SHIFT
        names, settled = self._names(now, old)
        for name in names:
            fd = fd_of(name)
            if fd is not None:
                try:
                    data = pread(fd, size, 0)
                except OSError:  # ESRCH: the process is gone, and the number may be another's now
                    drop_file(fds, name)
                    data = self._first(name)
            elif name.isdigit():
                data = self._first(name)
            else:
                continue
            prev = prev_of(name)
            if prev is not None and prev[0] == data:  # the same bytes, start time included: nothing moved
                new[name] = prev
                add_pid(name)
                add_score(prev[4])
                add_pages(prev[3])
                continue
            try:
                # parse_stat(), inlined and without the fields the table does not use.
                fields = data[data.rindex(b")") + 2:].split(b" ", 22)
                start, ticks, pages = fields[19], int(fields[11]) + int(fields[12]), int(fields[21])
            except (IndexError, ValueError):
                # An empty read (the process went between listing and read) or,
                # never seen, a file of another shape: that process is left out.
                continue
            if prev is not None and prev[1] == start and ticks >= prev[2]:
                score = (ticks - prev[2] + 1) << shift | pages
            else:
                score = pages  # new (or its pid is another process's now): no CPU rate this tick
            new[name] = (data, start, ticks, pages, idle | pages)
            add_pid(name)
            add_score(score)
            add_pages(pages)
        self._state, self._settled = new, settled  # not settled when this raised half-way
        for name in fds.keys() - new.keys():  # gone from the listing (or unreadable): its file goes
            drop_file(fds, name)
        elapsed = None if self._last is None else now - self._last
        self._last = now
        return Tick(now, elapsed, pids, scores, pages_of, new)

    def _names(self, now: float, old: dict) -> tuple:
        """(what to read, settled): the processes of the sample before when no pid was given since, else /proc's listing."""
        newest = self._given()
        standing, settled = newest is not None and newest == self._newest, self._settled
        self._newest, self._settled = newest, False
        if standing and settled and old and now - self._listed < LIST_EVERY:
            return old, True
        listing = os.listdir(self.root)
        if standing and settled and old and any(n not in old for n in listing if n.isdigit()):
            self._distrust()  # a process came, and the pid did not move
        self._listed = now
        return listing, standing

    def _given(self) -> bytes | None:
        """loadavg's last field: the pid this namespace gave last; None when it is not to be trusted."""
        if self._trust is None:
            try:
                self._trust = os.readlink(self.root + b"/self") == b"%d" % os.getpid()
                if self._trust:
                    self._aux["loadavg"] = os.open(self.root + b"/loadavg", _FLAGS)
            except OSError:
                self._trust = False
        if not self._trust:
            return None
        try:
            return os.pread(self._aux["loadavg"], 128, 0).split()[4]
        except (OSError, IndexError, KeyError):
            self._distrust()
            return None

    def _distrust(self) -> None:
        self._trust = False
        close_files({}, self._aux)

    def _first(self, name: bytes) -> bytes:
        """The stat of a process without a kept file; the file is kept while there is room. b"" when gone."""
        try:
            fd = os.open(self.root + b"/" + name + b"/stat", _FLAGS)
        except _SKIP:
            return b""
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self._fds:
                raise
            # Out of descriptors: the kept files are given back (the server's
            # connections need them more) and none is kept from now on.
            self.close()
            self.cap = 0
            return self._first(name)
        if len(self._fds) < self.cap and has_room():
            keep_file(self._fds, name, fd)
            try:
                return os.pread(fd, _READ, 0)
            except _SKIP:
                drop_file(self._fds, name)
                return b""
        try:
            return os.read(fd, _READ)
        except _SKIP:
            return b""
        finally:
            os.close(fd)

    def rss_of(self, name: bytes, data: bytes) -> int | None:
        """RSS in bytes of the process whose stat is data, from its statm as psutil reads it; 0 for a
        kernel thread (no memory map: statm would say 0), None when it cannot be read (gone).

        Read after the tick: the pid is that process's unless it exited and the kernel went round
        the whole pid space (pid_max) since, as between any two reads of /proc."""
        try:
            if int(data[data.rindex(b")") + 2:].split(b" ", 7)[6]) & _PF_KTHREAD:
                return 0
            fd = os.open(self.root + b"/" + name + b"/statm", _FLAGS)
            try:
                return int(os.read(fd, _READ).split(b" ", 2)[1]) * PAGE_SIZE
            finally:
                os.close(fd)
        except (*_SKIP, IndexError, ValueError):
            return None

    @property
    def kept(self) -> int:
        """Stat files open now."""
        return len(self._fds)

    def close(self) -> None:
        """Close every kept file (a later sample() opens them again, and lists /proc)."""
        close_files(self._fds, self._aux)
        self._trust, self._newest, self._settled = None, None, False

    def scan(self) -> list[Row]:
        """(pid, comm, starttime ticks, CPU seconds user+system, RSS bytes) of every process, RSS from statm.

        One pass that keeps no file open: the check open_reader() makes, and
        the reference the tests hold sample() to. Kernel threads (RSS 0) and
        zombies are in it; a process that exits or is unreadable mid-scan is left out.
        """
        out: list[Row] = []
        for name in os.listdir(self.root):
            if not name.isdigit():
                continue
            try:
                stat = self.read(int(name), "stat")
                fields = stat[stat.rindex(b")") + 2:].split(b" ", 20)
                rss = self.rss_of(name, stat)
                if rss is not None:
                    out.append((int(name), comm(stat), int(fields[19]), (int(fields[11]) + int(fields[12])) / CLK_TCK,
                                rss))
            except (*_SKIP, IndexError, ValueError):
                continue  # gone (or, never seen, not a stat line)
        return out

    def read(self, pid: int, name: str) -> bytes:
        """The bytes of /proc/<pid>/<name>; OSError (FileNotFoundError, ...) when it cannot be read."""
        fd = os.open(self.root + b"/%d/" % pid + os.fsencode(name), _FLAGS)
        try:
            return os.read(fd, _READ)
        finally:
            os.close(fd)


def kept_files() -> int:  # files kept open by every reader and container now: a bounded cache, not a leak
    return _kept


def has_room() -> bool:
    """Whether this process may keep one more file open (a stat file, a container's cgroup file)."""
    global _budget
    if _budget is None:
        _budget = fd_cap()
    return _kept < _budget


def keep_file(fds: dict, name, fd: int) -> None:
    global _kept
    fds[name] = fd
    _kept += 1


def drop_file(fds: dict, name) -> None:
    global _kept
    fd = fds.pop(name)
    _kept -= 1
    os.close(fd)


def close_files(fds: dict, aux: dict[str, int]) -> None:
    """Close a reader's stat files (fds, counted in the budget) and its other files (aux)."""
    global _kept
    for files, counted in ((fds, 1), (aux, 0)):
        while files:
            _name, fd = files.popitem()
            _kept -= counted
            try:
                os.close(fd)
            except OSError:
                pass


def created(starttime: int, boot: float) -> float:
    """psutil's create_time() for that starttime: the same float operations, so keys match exactly."""
    return float(starttime) / CLK_TCK + boot


def open_reader() -> Reader | None:
    """A Reader when this is Linux and /proc reads as this module expects, else None (use psutil).

    The check reads this very process both ways: a /proc that is missing, hidden
    or shaped differently (another kernel, a procfs emulation) falls back to psutil
    instead of showing wrong numbers.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        r = Reader()
        me = psutil.Process()
        rows = [row for row in r.scan() if row[0] == me.pid]
        if len(rows) != 1 or created(rows[0][2], psutil.boot_time()) != me.create_time():
            return None
        if not me.name().startswith(os.fsdecode(rows[0][1])):  # psutil extends a name the kernel cut
            return None
    except (OSError, psutil.Error, IndexError, ValueError):
        return None
    return r
