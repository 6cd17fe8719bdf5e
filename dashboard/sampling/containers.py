"""Collector for `containers`: every running container's figures from its cgroup, named by the engine.

Each sample lists the containers' cgroup folders (container_cgroups.find, in
the parents where containers were seen, the whole tree every RESCAN_SECONDS)
and reads each one's counters; rates go through the shared `Rates`, so a
container seen for the first time, or restarted under the same id (its
counters start again from zero), shows None where a rate would be, never a
guess, and one that went away between the listing and the read is left out of
that sample. Network counters are read from /proc/<pid>/net/dev of the
container's init process, in its own network namespace.

The engine (engine.py) is asked in a greenlet of its own, only when the set of
containers changed (an id came or went, or a container's init process is
gone: a restart), never per sample: names, images, labels, state, restart
count, init pid. Until it answers, and when there is no engine or no right to
its socket, containers are listed by their cgroup id, and `missing` says why.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Callable

import psutil

from . import container_cgroups as cg
from .collectors import Unavailable
from .engine import Engine, EngineError, socket_path
from .rates import Rates, percent

RESCAN_SECONDS = 30.0  # the whole cgroup tree is walked this often, for containers in new places
LIMITS_SECONDS = 10.0  # limits (docker update) are read again this often
# The reclaimable cache (memory.stat: the kernel sums it up on each read, 8-11 µs, a third of a
# container's reads) is read again when the memory charged moves, and at least this often: with
# the charge still, only the kernel's ageing of pages moves it between its lists.
STAT_SECONDS = 10.0
RETRY_SECONDS = 60.0  # an engine that could not be asked is asked again after this, if nothing changed
TRAIL_POINTS = 300
RUNNING = ("running", "paused", "restarting")


class Known:
    """What is kept of one running container between samples."""

    __slots__ = ("rel", "short", "files", "pid", "started", "host_net", "limits", "limits_at", "usage",
                 "stat_at", "meta", "trail")

    def __init__(self, cid: str, rel: str, keep: bool = False) -> None:
        self.rel = rel
        self.short = cid[:12]
        self.files = cg.Kept() if keep else None  # its cgroup files kept open (container_cgroups)
        self.pid: int | None = None
        self.started: float | None = None
        self.host_net = False
        self.limits: tuple[float | None, int | None] = (None, None)
        self.limits_at = float("-inf")
        self.usage: cg.Usage | None = None  # the last read
        self.stat_at = float("-inf")  # when memory.stat was last read for certain
        self.meta: dict = {}  # from the engine's inspect
        self.trail: deque = deque(maxlen=TRAIL_POINTS)


def _epoch(text: str | None) -> float | None:
    """Epoch seconds of the engine's RFC 3339 time (nanoseconds cut to microseconds), or None."""
    if not text or text.startswith("0001-"):
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        when = datetime.fromisoformat(head + ("." + frac[:6] if frac else "") + "+00:00")
    except ValueError:
        return None
    return when.timestamp()


class Containers:
    help = (
        "Running containers from their cgroups: `list` of rows with CPU (`cpu`: % of the host's cores, "
        "`cpu_pct`: % of its limit, `cpu_limit` in cores), memory (`mem`: bytes without the reclaimable "
        "cache, `cache`, `mem_limit`, `mem_pct`: % of its limit), network and block I/O in bytes per "
        "second, pids, state, restarts and uptime (s); the counts `running` and `stopped`; names from the "
        "engine, and `missing` saying why they are not there."
    )

    def __init__(self, mode: str = "auto", socket: str = "", shown: int = 100, *,
                 lay: cg.Layout | None | str = "discover", proc: str = "/proc",
                 spawn: Callable | None = None, clock: Callable[[], float] = time.time) -> None:
        self.mode = mode
        self.socket_setting = socket
        self.shown = shown
        self.layout = cg.layout() if lay == "discover" else lay
        self.proc = proc
        self.spawn = spawn or _greenlet  # the agent passes a thread's: it never loads gevent
        self.clock = clock
        self.cpus = psutil.cpu_count() or 1
        self.memory = psutil.virtual_memory().total
        self.boot = psutil.boot_time()
        self.known: dict[str, Known] = {}
        self.parents: tuple[str, ...] | None = None
        self.rescan_at = float("-inf")
        self.seen: dict[str, int] | None = None  # folders listed -> their link counts (container_cgroups.unchanged)
        self.engine_name: str | None = None
        self.engine_missing: str | None = "not asked yet"
        self.listed: dict[str, dict] = {}  # id -> the engine's list entry
        self.stopped: int | None = None
        self._asking = None  # the engine round under way (.dead, .join)
        self._again = False
        self._asked_at = float("-inf")
        self.latest: list[dict] = []

    # ---- the sample -----------------------------------------------------------------------

    def __call__(self, rates: Rates) -> dict:
        if self.mode == "off":
            raise Unavailable("not collected (CONTAINERS=off)")
        lay = self.layout
        if lay is None:
            raise Unavailable("no cgroup hierarchy mounted")
        now = self.clock()
        changed, looked = self._list(lay, now)
        rows: list[dict] = []
        went = self._read(rates, lay, list(self.known), now, rows)
        if went and not looked:  # another may have come in its place, the link counts the same
            before = set(self.known)
            changed, _ = self._list(lay, now, force=True)
            self._read(rates, lay, [cid for cid in self.known if cid not in before], now, rows)
        changed = changed or went
        if changed or (self.engine_missing and now - self._asked_at >= RETRY_SECONDS):
            self._ask()
        rows.sort(key=lambda r: (r["cpu"] is None, -(r["cpu"] or 0.0), -(r["mem"] or 0)))
        self.latest = rows
        return {
            "engine": self.engine_name,
            "cgroup": lay.kind,
            "running": len(rows),
            "stopped": self.stopped,
            "missing": self.engine_missing,
            "list": rows[:self.shown],
        }

    def _read(self, rates: Rates, lay: cg.Layout, cids: list[str], now: float, rows: list[dict]) -> bool:
        """Each container's row added to rows; whether one went (or its init did: a restart)."""
        went = False
        at = round(now, 3)
        for cid in cids:
            k = self.known[cid]
            try:
                row, pid_gone = self._row(rates, lay, cid, k, now)
            except cg.Gone:
                self._forget(cid)  # gone between the listing and the read
                went = True
                continue
            went = went or pid_gone
            rows.append(row)
            k.trail.append((at, row["cpu_pct"], row["mem"]))
        return went

    def _list(self, lay: cg.Layout, now: float, force: bool = False) -> tuple[bool, bool]:
        """Bring `known` up to the cgroup folders there now: (whether the set changed, whether the
        folders were listed). On cgroup mounts they are not while none was made or removed in them."""
        if now >= self.rescan_at or self.parents is None:
            self.seen = None  # the parents' folders are looked at from the next sample on, not the whole tree's
            found = cg.find(lay.scan, None)
            self.parents = cg.parents_of(found)
            self.rescan_at = now + RESCAN_SECONDS
        elif lay.keep and not force and self.seen is not None and cg.unchanged(self.seen):
            return False, False
        else:
            self.seen = {}
            found = cg.find(lay.scan, self.parents, seen=self.seen)
        gone = self.known.keys() - found.keys()
        new = found.keys() - self.known.keys()
        for cid in gone:
            self._forget(cid)
        for cid in new:
            self.known[cid] = Known(cid, found[cid], lay.keep)
        return bool(gone or new), True

    def _forget(self, cid: str) -> None:
        k = self.known.pop(cid)
        if k.files is not None:
            k.files.close()

    def _row(self, rates: Rates, lay: cg.Layout, cid: str, k: Known, now: float) -> tuple[dict, bool]:
        """The container's row, and whether its init was found gone (a restart under the same id)."""
        if now - k.limits_at >= LIMITS_SECONDS:
            k.limits, k.limits_at = cg.read_limits(lay, k.rel), now
        last = k.usage
        if now - k.stat_at >= STAT_SECONDS:
            k.stat_at, last = now, None
        u = k.usage = cg.read_usage(lay, k.rel, k.files, last)
        pid_gone = False
        if k.pid is None:
            self._find_pid(lay, cid, k)
        net: tuple = (None, None)
        for _ in range(2):
            if k.pid is None or k.host_net:
                break
            try:
                net = cg.read_net(k.pid, self.proc, k.files if self.proc == "/proc" else None)
                break
            except (OSError, ValueError):
                # Its init is gone: restarted under the same id (a new init, whose counters
                # start here), or stopping. The engine is asked again (restart count).
                k.pid, k.meta = None, {**k.meta, "pid": None}
                pid_gone = True
                self._find_pid(lay, cid, k)
        # One key for the container's counters and its init: a new init (a restart) starts them all again.
        cores, read, write, rx, tx = rates.per_second_each(
            ("ctr", cid, k.pid), (u.cpu_seconds, u.read_bytes, u.write_bytes, *net))
        cpu_limit, mem_limit = k.limits
        cache = u.inactive_file
        memory = u.memory
        mem = None if memory is None else max(0, memory - (cache or 0))
        meta = k.meta or self.listed.get(cid) or {}
        started = k.started
        return {
            "id": k.short,
            "name": meta.get("name") or k.short,
            "image": meta.get("image") or None,
            "state": meta.get("state") or "running",
            "cpu": percent(cores, self.cpus),  # never negative: a counter that went back gives None
            "cpu_pct": percent(cores, cpu_limit or self.cpus),
            "cpu_limit": cpu_limit,
            "mem": mem,
            "mem_pct": percent(mem, mem_limit or self.memory),
            "mem_limit": mem_limit,
            "cache": cache,
            # Rates in whole B/s: their decimals are the jitter of the sampler's interval,
            # not the host's, and each decimal digit costs the roll-ups 3.3 bits a value.
            "rx_bps": None if rx is None else round(rx),
            "tx_bps": None if tx is None else round(tx),
            "read_bps": None if read is None else round(read),
            "write_bps": None if write is None else round(write),
            "pids": u.pids,
            "restarts": k.meta.get("restarts"),
            "uptime": None if started is None else round(max(0.0, now - started), 1),
        }, pid_gone

    def _find_pid(self, lay: cg.Layout, cid: str, k: Known) -> None:
        """The init pid: the engine's when it said, else the lowest pid in the cgroup."""
        pid = k.meta.get("pid") or cg.first_pid(lay, k.rel)
        if pid is None:
            return
        k.pid = pid
        k.host_net = cg.shares_host_network(pid, self.proc)
        k.started = _epoch(k.meta.get("started")) or cg.started_at(pid, self.boot, self.proc)

    # ---- the engine, asked in a greenlet of its own ---------------------------------------------

    def _ask(self) -> None:
        self._asked_at = self.clock()
        if self._asking is not None and not self._asking.dead:
            self._again = True  # asked once more when this round is done
            return
        self._asking = self.spawn(self._ask_engine)

    def wait_engine(self, timeout: float | None = None) -> None:
        """Until the engine round under way (if any) is done: for tests and benchmarks."""
        if self._asking is not None:
            self._asking.join(timeout)

    def _ask_engine(self) -> None:
        while True:
            self._again = False
            try:
                self._engine_round()
            except EngineError as exc:
                self.engine_missing = str(exc)
            if not self._again:
                return

    def _engine_round(self) -> None:
        path, why = socket_path(self.socket_setting)
        if path is None:
            self.engine_name, self.engine_missing = None, why
            return
        engine = Engine(path)
        if self.engine_name is None or self.engine_missing:
            self.engine_name = engine.name()
        listed = {c["id"]: c for c in engine.containers()}
        for cid, k in list(self.known.items()):
            entry = listed.get(cid)
            if entry is None or (k.meta and k.pid is not None and k.meta.get("pid") == k.pid):
                continue  # not the engine's, or known already with its init alive
            try:
                meta = engine.inspect(cid)
            except EngineError:
                continue  # removed while asked
            k.meta = meta
            k.pid = None  # found again (and its start time) from what the engine says
        self.listed = listed
        self.stopped = sum(1 for c in listed.values() if c["state"] not in RUNNING)
        self.engine_missing = None

    # ---- what the console asks -------------------------------------------------------------------

    def find(self, name: str) -> str:
        """The full id of the running container with that name (or id, or id prefix); LookupError."""
        for cid, k in self.known.items():
            if (k.meta or self.listed.get(cid, {})).get("name") == name:
                return cid
        if len(name) >= 4 and all(c in "0123456789abcdef" for c in name):
            ids = [cid for cid in self.known if cid.startswith(name)]
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise LookupError(f"{len(ids)} containers have ids starting with {name!r}; give more of it")
        raise LookupError(f"no running container named {name[:80]!r} on this host; see 'containers'")

    def details(self, cid: str) -> dict:
        """One running container: who it is (engine), its limits, its row now and its trail."""
        k = self.known.get(cid)
        if k is None:
            raise LookupError(f"container {cid[:12]} is not running any more")
        meta = k.meta or self.listed.get(cid) or {}
        labels = meta.get("labels") or {}
        row = next((r for r in self.latest if r["id"] == cid[:12]), None)
        trail = list(k.trail)
        cpus = [c for _, c, _ in trail if c is not None]
        mems = [m for _, _, m in trail if m is not None]
        return {
            "id": cid, "name": meta.get("name") or cid[:12], "image": meta.get("image"),
            "state": meta.get("state") or "running", "engine": self.engine_name,
            "missing": self.engine_missing, "cgroup": k.rel, "pid": k.pid,
            "started": k.started, "restarts": k.meta.get("restarts"),
            "network": "host (rates would be the host's)" if k.host_net else "its own (/proc/<pid>/net/dev)",
            "cpu_limit": k.limits[0], "mem_limit": k.limits[1],
            "labels": dict(list(labels.items())[:50]), "labels_total": len(labels),
            "now": row,
            "watched": None if not trail else {
                "since": trail[0][0], "samples": len(trail),
                "cpu_avg": round(sum(cpus) / len(cpus), 1) if cpus else None,
                "cpu_max": max(cpus) if cpus else None,
                "mem_min": min(mems) if mems else None, "mem_max": max(mems) if mems else None},
            "history": {"columns": ["ts", "cpu_pct", "mem"], "rows": [list(p) for p in trail]},
        }

    def restart(self, cid: str, wait: int = 10) -> None:
        """Restart through the engine (the one thing the dashboard asks of it that changes anything)."""
        path, why = socket_path(self.socket_setting)
        if path is None:
            raise EngineError(why)
        Engine(path).restart(cid, wait)


def _greenlet(fn: Callable):
    import gevent

    return gevent.spawn(fn)
