"""What /healthz says: is the sampler fresh, how the stores are, and (on request) this process's use."""

from __future__ import annotations

import gc
import os
import time

import greenlet
import psutil

from .control.shared import Stats
from .sampling import procfs


def health(stats: Stats, *, uptime: float, lasting: dict, subscribers: int, version: str,
           details: bool = False, history_cache=lambda: {}, draining: bool = False,
           place: dict | None = None) -> tuple[bool, dict]:
    """(ok, body) from one `Stats` snapshot: ok is False when the sampler is stuck, or while the
    process drains after SIGTERM (status "draining": a load balancer sends nothing new here)."""
    now = time.monotonic()
    arrived = stats.latest_at
    age = None if arrived is None else round(now - arrived, 3)
    limit = max(3 * stats.interval, 5.0)
    if stats.paused:
        ok, state = True, "paused"
    elif age is None:
        ok = uptime < limit
        state = "starting" if ok else "stuck"
    else:
        ok = age <= limit
        state = "sampling" if ok else "stuck"
    status = "ok" if ok else "unhealthy"
    if draining:
        ok, status = False, "draining"
    body = {
        "status": status,
        "sampler": {
            "state": state,
            "age": age,
            "interval": stats.interval,
            "here": stats.sampling_here,
            "last_duration": None
            if stats.last_duration is None
            else round(stats.last_duration, 4),
            "seq": stats.seq,
        },
        "subscribers": subscribers,
        "version": version,
        "pid": os.getpid(),
    }
    if stats.redis is not None:
        body["redis"] = dict(stats.redis)
    body["history"] = lasting
    if details:
        body["process"] = process_details()
        caches = history_cache().values()  # host -> (hits, builds)
        body["history_cache"] = {"hits": sum(c[0] for c in caches), "builds": sum(c[1] for c in caches)}
    if place is not None:
        body["state"] = place  # where state lives and whether it outlasts a restart (state_place)
    return ok, body


def process_details() -> dict:
    """Resource use of this process, for leak checks (costs a few ms: on request only)."""
    kept = procfs.kept_files()
    try:
        # The process table's kept /proc files follow the host's processes, not
        # this server's clients: counted apart, so a leak check sees sockets and files.
        open_files = len(os.listdir("/proc/self/fd")) - kept
    except OSError:
        open_files = None
    gc.collect()  # count what is alive, not cycles waiting for the collector
    return {
        "open_files": open_files,
        "proc_files": kept,
        "rss": psutil.Process().memory_info().rss,
        "greenlets": sum(1 for o in gc.get_objects() if isinstance(o, greenlet.greenlet)),
    }
