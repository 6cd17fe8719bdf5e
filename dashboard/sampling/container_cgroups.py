"""Every container's counters straight from the cgroup files: where they are, and one read of them.

A container engine (Docker, Podman, containerd under Kubernetes) puts each
container in a cgroup named after its 64-hex id: `/docker/<id>` or
`/system.slice/docker-<id>.scope` (Docker), `/libpod_parent/libpod-<id>` or
`/machine.slice/libpod-<id>.scope` (Podman), deeper under `kubepods`. The
`Layout` says, per figure, which hierarchy holds it: cgroup v1 (a mount per
controller under /sys/fs/cgroup/<controller>), v2 (one unified mount), or a
hybrid host where the v1 controllers hold the numbers and /sys/fs/cgroup/unified
holds none. Reading one container costs six small files (17 µs here, 25-35 µs
between samples, the caches cold) against milliseconds to seconds for the
engine's stats call, so the collector reads them on every sample and asks the
engine only for names.

On the host's own cgroup mounts (layout()) each container's files are kept open
(`Kept`, within procfs's budget of kept files) and read again with os.pread,
which makes the kernel write them anew: about 0.5 µs a file against 2.7 to open,
read and close. A removed cgroup's kept file fails its read (ENODEV): the files
are closed and the path opened again, which finds the new folder of a restart
under the same id or fails (ENOENT: `Gone`). Beyond the budget, and on trees of
ordinary files (layout_of(), the tests'), each read is open, read, close.
"""

from __future__ import annotations

import os
import re
import weakref
from dataclasses import dataclass

from . import procfs

# The id of a container in its cgroup folder's name (the engines' own spellings).
ID = re.compile(r"^(?:docker-|libpod-|crio-|cri-containerd-)?([0-9a-f]{64})(?:\.scope)?$")
# Where engines put containers, scanned on every sample; the whole tree is
# walked now and then (RESCAN_SECONDS, in containers.py) for other parents.
PARENTS = ("docker", "libpod_parent", "system.slice", "machine.slice")
MAX_DEPTH = 6  # kubepods/burstable/pod<uid>/<id> and rootless user slices are 4 to 5 deep

# blkio.throttle.io_service_bytes_recursive's lines counted (one that did no I/O has only "Total 0").
_READ_WRITE = re.compile(rb"^\S+[ \t]+(Read|Write)[ \t]+(\d+)[ \t]*$", re.M)
# A v1 memory limit at least this large means "no limit" (the kernel's page-rounded LONG_MAX).
V1_UNLIMITED = 1 << 62


class Gone(Exception):
    """The container's cgroup went away while it was being read."""


@dataclass(frozen=True)
class Layout:
    """Per figure, (version, mount point) of the hierarchy that holds it."""

    cpu_usage: tuple[str, str] | None
    cpu_limit: tuple[str, str] | None
    memory: tuple[str, str] | None
    io: tuple[str, str] | None
    pids: tuple[str, str] | None
    scan: str  # the mount point containers are listed from
    kind: str  # "v1", "v2" or "hybrid"
    keep: bool = False  # the mounts are cgroup filesystems: files may be kept open (see the module)


def _mounts(mountinfo: str) -> tuple[dict[str, str], str | None]:
    """{v1 controller: mount point}, and the cgroup2 mount point, from mountinfo's text."""
    v1: dict[str, str] = {}
    v2 = None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        if rfields[0] == "cgroup2":
            v2 = fields[4]
        elif rfields[0] == "cgroup":
            for opt in rfields[2].split(","):
                if opt in ("cpu", "cpuacct", "memory", "blkio", "pids"):
                    v1.setdefault(opt, fields[4])
    return v1, v2


def layout(mountinfo_path: str = "/proc/self/mountinfo") -> Layout | None:
    """This host's layout, or None when no cgroup hierarchy is mounted."""
    try:
        with open(mountinfo_path, encoding="utf-8", errors="replace") as f:
            v1, v2 = _mounts(f.read())
    except OSError:
        return None
    return layout_of(v1, v2, keep=True)


def layout_of(v1: dict[str, str], v2: str | None, keep: bool = False) -> Layout | None:
    """The layout given the v1 controllers' mount points and the cgroup2 mount (tests pass their own)."""
    v2_controllers: set[str] = set()
    if v2 is not None:
        try:
            v2_controllers = set(_bytes(os.path.join(v2, "cgroup.controllers")).decode("ascii", "replace").split())
        except OSError:
            pass

    def pick(v1_name: str, v2_name: str) -> tuple[str, str] | None:
        if v1_name in v1:
            return ("v1", v1[v1_name])
        if v2 is not None and (v2_name in v2_controllers or v2_name == "cpu.stat"):
            return ("v2", v2)  # cpu.stat's usage is there with or without the cpu controller
        return None

    found = Layout(
        cpu_usage=pick("cpuacct", "cpu.stat"),
        cpu_limit=pick("cpu", "cpu"),
        memory=pick("memory", "memory"),
        io=pick("blkio", "io"),
        pids=pick("pids", "pids"),
        scan="",
        kind="",
    )
    scan = (found.memory or found.cpu_usage or ("", ""))[1]
    if not scan:
        return None
    kind = "v2" if not v1 else ("hybrid" if v2 is not None else "v1")
    return Layout(found.cpu_usage, found.cpu_limit, found.memory, found.io, found.pids, scan, kind, keep)


def _bytes(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def find(scan: str, parents: tuple[str, ...] | None = PARENTS, depth: int = MAX_DEPTH,
         seen: dict[str, int] | None = None) -> dict[str, str]:
    """{container id: its cgroup path relative to the mount}, below `parents` (None: the whole tree).
    seen: filled with each folder listed and its link count (see unchanged())."""
    found: dict[str, str] = {}
    starts = [scan] if parents is None else [os.path.join(scan, p) for p in parents]
    stack = [(s, 0) for s in starts]
    while stack:
        folder, level = stack.pop()
        if seen is not None:
            seen[folder] = _links(folder)  # before the listing: a folder made in between shows as a change
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # not there on this host, or removed while listed
        for entry in entries:
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
            except OSError:
                continue
            m = ID.match(entry.name)
            if m:
                found.setdefault(m.group(1), entry.path[len(scan):].lstrip("/"))
            elif level + 1 < depth:
                stack.append((entry.path, level + 1))
    return found


def _links(folder: str) -> int:
    try:
        return os.stat(folder).st_nlink
    except OSError:
        return -1


def unchanged(seen: dict[str, int]) -> bool:
    """Whether no folder was made or removed in those find() listed: a cgroup folder's link count is 2
    plus its subfolders (its mtime does not move). One went and one came: the same; containers.py lists then."""
    return all(_links(folder) == links for folder, links in seen.items())


def parents_of(found: dict[str, str]) -> tuple[str, ...]:
    """The parent folders of containers found, to scan every sample from now on."""
    return tuple(sorted({os.path.dirname(rel) for rel in found.values()} | set(PARENTS)))


@dataclass(slots=True)
class Usage:
    """One read of a container's counters; cumulative ones are for `Rates`."""

    cpu_seconds: float | None
    memory: int | None  # bytes charged to it (page cache included)
    inactive_file: int | None  # the reclaimable part of it (what docker stats leaves out)
    read_bytes: int | None
    write_bytes: int | None
    pids: int | None


def _number(data: bytes) -> int:
    return int(data.split(None, 1)[0]) if data.strip() != b"max" else -1


def _stat_field(data: bytes, key: bytes) -> int | None:
    """The value of `key` in a `key value` per line file (memory.stat, cpu.stat)."""
    prefix = key + b" "
    at = 0 if data.startswith(prefix) else data.find(b"\n" + prefix) + 1
    if not at and not data.startswith(prefix):
        return None
    end = data.find(b"\n", at)
    return int(data[at + len(prefix):end if end >= 0 else None])


_paths: dict[tuple[str, str, str], str] = {}  # (mount, container, file) -> path, made once
_READ = 65536
_NET = "net/dev"  # the init process's, in Kept.fds with the cgroup files
_FLAGS = os.O_RDONLY | os.O_CLOEXEC


class Kept:
    """One container's cgroup files kept open between samples (file name -> descriptor), counted in
    procfs's budget through its own functions: one budget for every file the sampler keeps."""

    __slots__ = ("fds", "net_pid", "_finalizer", "__weakref__")

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}
        self.net_pid: int | None = None  # whose net/dev fds[_NET] is
        self._finalizer = weakref.finalize(self, procfs.close_files, self.fds, {})

    def close(self) -> None:
        procfs.close_files(self.fds, {})


def _read(place: tuple[str, str] | None, rel: str, name: str, kept: Kept | None = None) -> bytes | None:
    """The file's bytes; None when the hierarchy does not exist or the file is not there for it
    (a controller not enabled); Gone when the container's folder itself went away."""
    if place is None:
        return None
    if kept is not None:
        fd = kept.fds.get(name)
        if fd is not None:
            try:
                return os.pread(fd, _READ, 0)
            except OSError:  # ENODEV: its cgroup was removed (stopped, or restarted under the same id)
                kept.close()
    key = (place[1], rel, name)
    path = _paths.get(key)
    if path is None:
        if len(_paths) > 20_000:  # containers come and go: start afresh rather than grow
            _paths.clear()
        path = _paths[key] = f"{place[1]}/{rel}/{name}"
    try:
        fd = os.open(path, _FLAGS)
        if kept is not None and procfs.has_room():
            procfs.keep_file(kept.fds, name, fd)
            return os.pread(fd, _READ, 0)
        try:
            return os.read(fd, _READ)
        finally:
            os.close(fd)
    except PermissionError:
        raise
    except OSError:
        if not os.path.isdir(os.path.join(place[1], rel)):
            raise Gone(rel) from None
        return None


def read_usage(lay: Layout, rel: str, kept: Kept | None = None, last: Usage | None = None) -> Usage:
    """The container's counters now; Gone if its cgroup went away meanwhile. kept: its files kept open.
    last: an earlier read whose reclaimable cache stands if the memory charged has not moved since."""
    cpu = None
    data = _read(lay.cpu_usage, rel, "cpuacct.usage" if lay.cpu_usage and lay.cpu_usage[0] == "v1" else "cpu.stat",
                 kept)
    if data is not None:
        if lay.cpu_usage[0] == "v1":
            cpu = int(data) / 1e9
        else:
            usec = _stat_field(data, b"usage_usec")
            cpu = None if usec is None else usec / 1e6
    memory = inactive = None
    if lay.memory is not None:
        v1 = lay.memory[0] == "v1"
        data = _read(lay.memory, rel, "memory.usage_in_bytes" if v1 else "memory.current", kept)
        memory = None if data is None else int(data)
        if last is not None and memory is not None and memory == last.memory:
            inactive = last.inactive_file
        else:
            stat = _read(lay.memory, rel, "memory.stat", kept)
            if stat is not None:
                inactive = _stat_field(stat, b"total_inactive_file" if v1 else b"inactive_file")
    read = write = None
    if lay.io is not None:
        if lay.io[0] == "v1":
            data = _read(lay.io, rel, "blkio.throttle.io_service_bytes_recursive", kept)
            if data is not None:  # "<major:minor> Read <bytes>" lines, and Write, Sync, ... and a Total
                read = write = 0
                for kind, count in _READ_WRITE.findall(data):  # one C-level pass: no line of a quiet one
                    read, write = (read + int(count), write) if kind == b"Read" else (read, write + int(count))
        else:
            data = _read(lay.io, rel, "io.stat", kept)
            if data is not None:
                read = write = 0
                for field in data.split():
                    if field.startswith(b"rbytes="):
                        read += int(field[7:])
                    elif field.startswith(b"wbytes="):
                        write += int(field[7:])
    data = _read(lay.pids, rel, "pids.current", kept)
    pids = None if data is None else int(data)
    return Usage(cpu, memory, inactive, read, write, pids)


def read_limits(lay: Layout, rel: str) -> tuple[float | None, int | None]:
    """(CPU limit in cores, memory limit in bytes), None for no limit; Gone if it went away."""
    cores = None
    if lay.cpu_limit is not None:
        if lay.cpu_limit[0] == "v1":
            quota = _read(lay.cpu_limit, rel, "cpu.cfs_quota_us")
            period = _read(lay.cpu_limit, rel, "cpu.cfs_period_us")
            if quota is not None and period is not None and int(quota) > 0 and int(period) > 0:
                cores = round(int(quota) / int(period), 3)
        else:
            data = _read(lay.cpu_limit, rel, "cpu.max")
            if data is not None:
                quota, _, period = data.strip().partition(b" ")
                if quota != b"max" and period:
                    cores = round(int(quota) / int(period), 3)
    memory = None
    if lay.memory is not None:
        v1 = lay.memory[0] == "v1"
        data = _read(lay.memory, rel, "memory.limit_in_bytes" if v1 else "memory.max")
        if data is not None:
            value = _number(data)
            memory = value if 0 < value < V1_UNLIMITED else None
    return cores, memory


def first_pid(lay: Layout, rel: str) -> int | None:
    """The lowest pid in the container's cgroup (its init when no engine says which), or None."""
    place = lay.pids or lay.memory or lay.cpu_usage
    try:
        pids = [int(p) for p in _bytes(os.path.join(place[1], rel, "cgroup.procs")).split()]
    except (OSError, ValueError, TypeError):
        return None
    return min(pids) if pids else None


def read_net(pid: int, proc: str = "/proc", kept: Kept | None = None) -> tuple[int, int]:
    """(bytes received, bytes sent) over every interface but loopback in pid's network namespace.
    OSError (FileNotFoundError, ProcessLookupError) once the process is gone. kept: the container's
    kept files, where pid's net/dev is kept too (proc must be this process's own /proc then)."""
    data = _net(pid, proc, kept) if kept is not None else _bytes(f"{proc}/{pid}/net/dev")
    rx = tx = 0
    for line in data.splitlines()[2:]:
        name, _, counters = line.partition(b":")
        if name.strip() == b"lo":
            continue
        fields = counters.split()
        if len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def _net(pid: int, proc: str, kept: Kept) -> bytes:
    """pid's net/dev through a kept file, which holds the network namespace, not the process: it reads
    on after the process is gone. So the process is looked for each time (kill 0), its file closed then."""
    fds = kept.fds
    if kept.net_pid == pid and _NET in fds:
        try:
            os.kill(pid, 0)
        except PermissionError:
            pass  # there, another user's
        except OSError:
            procfs.drop_file(fds, _NET)
            raise
        return os.pread(fds[_NET], _READ, 0)
    if _NET in fds:
        procfs.drop_file(fds, _NET)
    fd = os.open(f"{proc}/{pid}/net/dev", _FLAGS)
    if not procfs.has_room():
        try:
            return os.read(fd, _READ)
        finally:
            os.close(fd)
    procfs.keep_file(fds, _NET, fd)
    kept.net_pid = pid
    return os.pread(fd, _READ, 0)


def shares_host_network(pid: int, proc: str = "/proc") -> bool:
    """Whether pid is in this process's network namespace (`--network host`): its rates would be the host's."""
    try:
        return os.stat(f"{proc}/{pid}/ns/net").st_ino == os.stat(f"{proc}/self/ns/net").st_ino
    except OSError:
        return False


def started_at(pid: int, boot: float, proc: str = "/proc", ticks: int = os.sysconf("SC_CLK_TCK")) -> float | None:
    """When pid started (epoch seconds), from its stat file's start time; None when it is gone."""
    try:
        data = _bytes(f"{proc}/{pid}/stat")
        return boot + int(data[data.rindex(b")") + 2:].split()[19]) / ticks
    except (OSError, ValueError, IndexError):
        return None
