"""The mounted disks, listed again only when the mount table changes.

psutil.disk_partitions parses every line of /proc/self/mounts, and a host
running containers has hundreds (each container's overlay, shm, netns): about
a quarter of a millisecond a sample, for a list that changes only when
something is mounted or unmounted. The kernel says when: a descriptor of
/proc/self/mounts polls with POLLPRI after every mount or unmount in the
process's namespace (proc(5); `findmnt --poll` waits on the same). So the list
is kept and read again only then. Where that cannot be set up, it is read at
every call, as before.
"""

from __future__ import annotations

import os
import select
import sys
from typing import Callable

import psutil


def _unpatched_poll() -> Callable | None:
    # A zero-timeout poll never blocks, so the standard one is right even under
    # gevent (whose patched poll would yield to the hub for nothing). Only
    # gevent.monkey patches select, so only once it is loaded is there an
    # original to ask for (the agent never loads gevent).
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original("select", "poll")
    return getattr(select, "poll", None)


class Mounts:
    def __init__(self, path: str = "/proc/self/mounts",
                 partitions: Callable[[], list] = lambda: psutil.disk_partitions(all=False)) -> None:
        self.partitions = partitions
        self.reads = 0  # how often the table was parsed (for tests and benchmarks)
        self._cached: list | None = None
        self._poller = None
        self._fd = -1
        poll = _unpatched_poll()
        if poll is None:
            return
        try:
            self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self._poller = poll()
            self._poller.register(self._fd, select.POLLPRI | select.POLLERR)
        except OSError:
            self.close()

    def list(self) -> list:
        """The partitions psutil lists (physical devices only), read again after a change."""
        # Asked before reading: a change between the two is reported by the next poll, so
        # the list may be read once more than needed, never kept stale.
        if self._poller is None or self._cached is None or self._poller.poll(0):
            self._cached = self.partitions()
            self.reads += 1
        return self._cached

    def close(self) -> None:
        self._poller = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_shared: Mounts | None = None


def shared() -> Mounts:
    """The process's one watcher, made at its first use (in the worker, after any fork)."""
    global _shared
    if _shared is None:
        _shared = Mounts()
    return _shared
