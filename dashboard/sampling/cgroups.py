"""Container limits and usage from cgroups (v1 and v2).

A Heroku dyno, a Docker container or a Kubernetes pod sees the host's CPUs and
RAM through psutil, but what it may really use is its cgroup's quota. This
collector reads the cgroup the process belongs to and reports the CPU limit in
cores, memory limit in bytes, and usage against them.

Memory usage is the working set (usage minus inactive file cache), the figure
`docker stats` and the kubelet use, because page cache is reclaimable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .collectors import Unavailable
from .rates import Rates, percent

# A v1 memory limit this large means "no limit" (the kernel's page-rounded LONG_MAX).
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class Paths:
    version: str  # "v1" or "v2"
    cpu: str | None  # v2: the unified dir; v1: the cpu controller dir
    cpuacct: str | None
    memory: str | None
    nested: bool  # the process is not in the root cgroup


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _controller_dir(mountpoint: str, mount_root: str, group: str) -> str:
    """The directory of `group`, given a mount of the hierarchy at mount_root."""
    rel = os.path.relpath(group, mount_root) if group.startswith(mount_root) else group.lstrip("/")
    candidate = os.path.normpath(os.path.join(mountpoint, rel))
    # Inside a cgroup namespace the mount already is our group: the path from
    # /proc/self/cgroup does not exist below it.
    return candidate if os.path.isdir(candidate) else mountpoint


def discover(proc_root: str = "/proc/self") -> Paths | None:
    """Locate this process's cgroup directories, or None when there are none."""
    try:
        groups = _read(os.path.join(proc_root, "cgroup")).splitlines()
        mounts = _read(os.path.join(proc_root, "mountinfo")).splitlines()
    except OSError:
        return None
    v1: dict[str, str] = {}
    v2_group = None
    for line in groups:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2_group = path
        for c in controllers.split(","):
            if c:
                v1[c] = path
    v1_mounts: dict[str, tuple[str, str]] = {}
    v2_mount = None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        root, mountpoint, fstype, options = fields[3], fields[4], rfields[0], rfields[2]
        if fstype == "cgroup2":
            v2_mount = (mountpoint, root)
        elif fstype == "cgroup":
            for opt in options.split(","):
                if opt in ("cpu", "cpuacct", "memory"):
                    v1_mounts[opt] = (mountpoint, root)

    def v1_dir(controller: str) -> str | None:
        if controller not in v1 or controller not in v1_mounts:
            return None
        mountpoint, root = v1_mounts[controller]
        return _controller_dir(mountpoint, root, v1[controller])

    # Hybrid hosts mount both; the controllers that hold limits are where
    # memory/cpu are attached, so v1 wins when it has them.
    if "memory" in v1_mounts or "cpu" in v1_mounts:
        return Paths(
            "v1",
            v1_dir("cpu"),
            v1_dir("cpuacct"),
            v1_dir("memory"),
            nested=any(v1.get(c, "/") != "/" for c in ("cpu", "cpuacct", "memory")),
        )
    if v2_group is not None and v2_mount is not None:
        d = _controller_dir(v2_mount[0], v2_mount[1], v2_group)
        return Paths("v2", d, d, d, nested=v2_group != "/")
    return None


def _in_container() -> bool:
    return (
        os.path.exists("/.dockerenv")
        or os.path.exists("/run/.containerenv")
        or "DYNO" in os.environ  # Heroku
        or "KUBERNETES_SERVICE_HOST" in os.environ
    )


class Container:
    """Collector for `container`."""

    help = (
        "Where the process runs in a cgroup: CPU limit (cores) and usage (cores, % of "
        "limit), memory limit and working set (bytes, % of limit). Limits are None when "
        "unlimited."
    )

    def __init__(self, paths: Paths | None) -> None:
        self.paths = paths

    def __call__(self, rates: Rates) -> dict:
        p = self.paths
        if p is None:
            raise Unavailable("no cgroup found: not running in a container")
        if p.version == "v2":
            cpu_limit = self._v2_cpu_limit(p.cpu)
            usage_seconds = self._v2_cpu_usage(p.cpu)
            mem_limit = self._v2_int(p.memory, "memory.max")
            mem_usage = self._working_set(p.memory, "memory.current", "inactive_file")
        else:
            cpu_limit = self._v1_cpu_limit(p.cpu)
            usage_seconds = self._v1_cpu_usage(p.cpuacct or p.cpu)
            raw_limit = self._v1_int(p.memory, "memory.limit_in_bytes")
            mem_limit = raw_limit if raw_limit is not None and raw_limit < _V1_UNLIMITED else None
            mem_usage = self._working_set(p.memory, "memory.usage_in_bytes", "total_inactive_file")
        if cpu_limit is None and mem_limit is None and not (p.nested or _in_container()):
            raise Unavailable("the process is in the root cgroup with no limits")
        cores_used = None
        if usage_seconds is not None:
            rate = rates.per_second(("cgroup", "cpu"), usage_seconds)
            cores_used = None if rate is None else round(rate, 3)
        return {
            "cgroup": p.version,
            "cpu_limit": cpu_limit,
            "cpu_cores_used": cores_used,
            "cpu_percent": percent(cores_used, cpu_limit),
            "memory_limit": mem_limit,
            "memory_usage": mem_usage,
            "memory_percent": percent(mem_usage, mem_limit),
        }

    @staticmethod
    def _v2_cpu_limit(d: str | None) -> float | None:
        try:
            quota, _, period = _read(os.path.join(d, "cpu.max")).partition(" ")
        except (OSError, TypeError):
            return None
        if quota == "max" or not period:
            return None
        return round(int(quota) / int(period), 3)

    @staticmethod
    def _v2_cpu_usage(d: str | None) -> float | None:
        try:
            for line in _read(os.path.join(d, "cpu.stat")).splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        except (OSError, TypeError):
            pass
        return None

    @staticmethod
    def _v2_int(d: str | None, name: str) -> int | None:
        try:
            text = _read(os.path.join(d, name))
        except (OSError, TypeError):
            return None
        return None if text == "max" else int(text)

    @staticmethod
    def _v1_cpu_limit(d: str | None) -> float | None:
        try:
            quota = int(_read(os.path.join(d, "cpu.cfs_quota_us")))
            period = int(_read(os.path.join(d, "cpu.cfs_period_us")))
        except (OSError, TypeError, ValueError):
            return None
        if quota <= 0 or period <= 0:
            return None
        return round(quota / period, 3)

    @staticmethod
    def _v1_cpu_usage(d: str | None) -> float | None:
        try:
            return int(_read(os.path.join(d, "cpuacct.usage"))) / 1e9
        except (OSError, TypeError, ValueError):
            return None

    @staticmethod
    def _v1_int(d: str | None, name: str) -> int | None:
        try:
            return int(_read(os.path.join(d, name)))
        except (OSError, TypeError, ValueError):
            return None

    @staticmethod
    def _working_set(d: str | None, usage_file: str, inactive_key: str) -> int | None:
        try:
            usage = int(_read(os.path.join(d, usage_file)))
        except (OSError, TypeError, ValueError):
            return None
        try:
            for line in _read(os.path.join(d, "memory.stat")).splitlines():
                key, _, value = line.partition(" ")
                if key == inactive_key:
                    return max(0, usage - int(value))
        except (OSError, ValueError):
            pass
        return usage
