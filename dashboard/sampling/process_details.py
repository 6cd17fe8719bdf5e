"""One process looked into, on an operator's request: command line, owner, state, files, sockets.

Read through psutil for that one pid when `proc <pid>` asks (never per viewer,
never per sample). A field the server may not read (another user's files
without the privilege) says "denied" and the others are still shown. The
environment is never read: it is where secrets live.
"""

from __future__ import annotations

from collections import Counter

import psutil

MAX_CMDLINE = 4000
MAX_CHILDREN = 50
DENIED = "denied"


class NoSuchProcess(LookupError):
    """No process has that pid (or it exited while being read)."""


def _read(fn, default=DENIED):
    try:
        return fn()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return default
    except NotImplementedError:  # not on this platform
        return None


def read(pid: int) -> tuple[tuple[int, float], dict]:
    """((pid, create time), details) of pid; NoSuchProcess when there is none."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            created = proc.create_time()
            name = proc.name()
            cmdline = _read(proc.cmdline)
            details = {
                "pid": pid,
                "name": name,
                "cmdline": _cmdline(cmdline),
                "user": _read(proc.username),
                "status": _read(proc.status),
                "started": round(created, 3),
                "ppid": _read(proc.ppid),
                "threads": _read(proc.num_threads),
                "nice": _read(proc.nice),
                "fds": _read(proc.num_fds) if hasattr(proc, "num_fds") else None,
                "open_files": _read(lambda: len(proc.open_files())),
                "connections": _read(lambda: _by_state(proc)),
                "children": _read(lambda: _children(proc)),
            }
    except psutil.NoSuchProcess:
        raise NoSuchProcess(pid) from None
    return (pid, created), details


def _cmdline(words) -> str:
    if not isinstance(words, list):
        return words  # denied
    text = " ".join(words)
    return text if len(text) <= MAX_CMDLINE else text[:MAX_CMDLINE] + " …"


def _by_state(proc: psutil.Process) -> dict[str, int]:
    conns = proc.net_connections(kind="inet") if hasattr(proc, "net_connections") else proc.connections("inet")
    # Listening and connected TCP sockets by state; UDP sockets have none ("NONE").
    return dict(sorted(Counter(c.status if c.status != "NONE" else "UDP" for c in conns).items()))


def _children(proc: psutil.Process) -> dict:
    rows = []
    children = proc.children()
    for child in children[:MAX_CHILDREN]:
        try:
            rows.append([child.pid, child.name()])
        except psutil.Error:
            continue
    return {"columns": ["pid", "name"], "rows": rows, "total": len(children)}
