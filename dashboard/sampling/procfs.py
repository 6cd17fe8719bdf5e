"""Linux only: the process table's per-tick fields read straight from /proc, two small files per process.

psutil's process_iter() with oneshot() costs 55 to 65 µs of CPU per process
per sample on our 2-core test machine: a Process object per pid, each file
through a Python file object, layers of wrappers. The table needs four numbers
per process per tick, so this reads them with os.open/os.read/os.close and
picks them out of the bytes: CPU times and start time from /proc/<pid>/stat,
RSS from /proc/<pid>/statm (not read for kernel threads, which have none).
About 25 µs per process, nearly all of it the kernel opening and writing those
files. psutil stays for everything else (a name the kernel cut, the owner,
`proc <pid>`, kill) and on every other system.

The values are psutil's, to the bit where they are keys: create time is
psutil's formula (starttime / CLK_TCK + boot_time()), RSS is the statm field
psutil's memory_info() reads. Not stat's own RSS field, though it counts the
same pages: kernels with the 2025 change "mm: fix the inaccurate memory
statistics issue for users" (this machine's 6.18 has it) sum the per-CPU
counters for statm and status but not for stat, whose figure then lags (by 26
to 44 pages for an idle `cat` here; on hosts with many CPUs it can read 0)."""

from __future__ import annotations

import os
import sys

import psutil

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# /proc/<pid>/stat is a few hundred bytes (52 numbers and a name of at most 64);
# one read of this size returns all of it, as the kernel writes it in one go.
_READ = 4096

# Errors that mean "this process is gone" (ENOENT when its directory went away
# between the listing and the open, ESRCH when it exited after the open) or
# "not ours to read" (hidepid, a security module): skipped, as the psutil path
# skips NoSuchProcess and AccessDenied.
_SKIP = (FileNotFoundError, ProcessLookupError, PermissionError)

_PF_KTHREAD = 0x00200000  # in stat's flags (field 9): a kernel thread (include/linux/sched.h)

Row = tuple[int, bytes, int, float, int]  # pid, comm, starttime ticks, CPU seconds, RSS bytes


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


class Reader:
    """One pass over /proc per call of scan(); no file is kept open between calls."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = os.fsencode(root)

    def scan(self) -> list[Row]:
        """(pid, comm, starttime ticks, CPU seconds user+system, RSS bytes) of every process.

        Kernel threads (RSS 0) and zombies are in it, as they are in psutil's
        table; a process that exits or is unreadable mid-scan is left out.
        """
        out: list[Row] = []
        append = out.append
        prefix = self.root + b"/"
        flags = os.O_RDONLY | os.O_CLOEXEC
        tck, page = CLK_TCK, PAGE_SIZE
        # Locals: this loop runs once per process per tick, and every global
        # or attribute lookup in it is paid a thousand times a second.
        open_, read, close = os.open, os.read, os.close
        for name in os.listdir(self.root):
            if not name.isdigit():
                continue
            path = prefix + name
            try:
                fd = open_(path + b"/stat", flags)
                try:
                    stat = read(fd, _READ)
                finally:
                    close(fd)
                right = stat.rfind(b")")
                # parse_stat(), inlined and without the fields the table does not use.
                fields = stat[right + 2:].split(b" ", 20)
                if int(fields[6]) & _PF_KTHREAD:
                    rss = 0  # a kernel thread has no memory map: statm would say 0
                else:
                    fd = open_(path + b"/statm", flags)
                    try:
                        rss = int(read(fd, _READ).split(b" ", 2)[1]) * page
                    finally:
                        close(fd)
                append((int(name), stat[stat.find(b"(") + 1:right], int(fields[19]),
                        (int(fields[11]) + int(fields[12])) / tck, rss))
            except _SKIP:
                continue
            except (IndexError, ValueError):
                # An empty read (the process went between open and read) or,
                # never seen, a file of another shape: that process is left out.
                continue
        return out

    def read(self, pid: int, name: str) -> bytes:
        """The bytes of /proc/<pid>/<name>; OSError (FileNotFoundError, ...) when it cannot be read."""
        fd = os.open(self.root + b"/%d/" % pid + os.fsencode(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, _READ)
        finally:
            os.close(fd)


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
