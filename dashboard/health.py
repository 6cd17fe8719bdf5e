"""What /healthz says: is the sampler fresh, how the stores are, and (on request) this process's use."""

from __future__ import annotations

import gc
import os
import time

import greenlet
import psutil

from .sampling import procfs


def health(node, details: bool = False) -> tuple[bool, dict]:
    """(ok, body) for the wiring.Instance `node`: ok is False when the sampler is stuck."""
    now = time.monotonic()
    sampler = node.sampler
    arrived = node.local.latest_at
    age = None if arrived is None else round(now - arrived, 3)
    limit = max(3 * sampler.interval, 5.0)
    if sampler.paused:
        ok, state = True, "paused"
    elif age is None:
        ok = time.time() - node.started_at < limit
        state = "starting" if ok else "stuck"
    else:
        ok = age <= limit
        state = "sampling" if ok else "stuck"
    body = {
        "status": "ok" if ok else "unhealthy",
        "sampler": {
            "state": state,
            "age": age,
            "interval": sampler.interval,
            "here": sampler.running,
            "last_duration": None
            if sampler.last_duration is None
            else round(sampler.last_duration, 4),
            "seq": (node.local.latest or {}).get("seq", sampler.seq),
        },
        "subscribers": len(node.views.streams()),
        "version": node.version,
        "pid": os.getpid(),
    }
    if node.fleet is not None:
        body["redis"] = {"shared": node.fleet.shared, "error": node.fleet.error}
    body["history"] = node.lasting_health()
    if details:
        body["process"] = process_details()
        caches = [view.history_cache for view in node.views]
        body["history_cache"] = {"hits": sum(c.hits for c in caches), "builds": sum(c.builds for c in caches)}
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
