"""Host collectors: each reads one part of the system with psutil.

A collector is a name (its key in the sample), a help line (what it reports and
in which unit, kept next to the code that computes it) and a function that
takes the shared `Rates` and returns plain JSON-able data. Collectors never
keep rate state of their own; the sampler runs them and isolates failures.

Counters go through `Rates`, so the first sample carries None where a rate
would be, never a guess.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil

from .mounts import Mounts
from .mounts import shared as shared_mounts
from .rates import Rates, percent


class Unavailable(Exception):
    """This host does not report the metric. Not an error: reported as missing."""


@dataclass(frozen=True)
class Collector:
    name: str
    help: str
    collect: Callable[[Rates], Any]


# Fields of psutil's cpu_times that count busy time. guest and guest_nice are
# already inside user and nice on Linux, so they are left out.
_BUSY = ("user", "nice", "system", "irq", "softirq", "steal")
_IDLE = ("idle", "iowait")


def _cpu_deltas(rates: Rates, key: tuple, times) -> dict[str, float] | None:
    """Per-field seconds spent since the last round, or None on the first."""
    deltas = {}
    for name in _BUSY + _IDLE:
        if hasattr(times, name):
            deltas[name] = rates.delta(key + (name,), getattr(times, name), clamp=True)
    if any(d is None for d in deltas.values()):
        return None
    return deltas


def _busy_percent(deltas: dict[str, float] | None) -> float | None:
    if deltas is None:
        return None
    total = sum(deltas.values())
    busy = total - sum(deltas.get(name, 0.0) for name in _IDLE)
    return percent(busy, total) if total > 0 else 0.0


def collect_cpu(rates: Rates) -> dict:
    overall = _cpu_deltas(rates, ("cpu",), psutil.cpu_times())
    total = sum(overall.values()) if overall else None
    breakdown = {
        name: (percent(overall[name], total) if overall and total else None)
        for name in ("user", "system", "iowait", "steal")
        if overall is None or name in overall
    }
    per_core = [
        _busy_percent(_cpu_deltas(rates, ("core", index), core))
        for index, core in enumerate(psutil.cpu_times(percpu=True))
    ]
    return {
        "percent": _busy_percent(overall),
        "per_core": per_core,
        "count": len(per_core),
        **breakdown,
    }


def collect_load(rates: Rates) -> dict:
    try:
        one, five, fifteen = psutil.getloadavg()
    except (AttributeError, OSError) as exc:
        raise Unavailable("load average not reported on this platform") from exc
    return {"load1": round(one, 2), "load5": round(five, 2), "load15": round(fifteen, 2)}


def collect_memory(rates: Rates) -> dict:
    vm = psutil.virtual_memory()
    return {
        "total": vm.total,
        "available": vm.available,
        "used": vm.total - vm.available,
        "percent": round(vm.percent, 1),
    }


def collect_swap(rates: Rates) -> dict:
    sw = psutil.swap_memory()
    return {"total": sw.total, "used": sw.used, "percent": round(sw.percent, 1)}


def _io_name(device: str) -> str:
    # /dev/mapper/vg-root -> /dev/dm-0 -> "dm-0", the key disk_io_counters uses.
    return os.path.basename(os.path.realpath(device))


def collect_disks(rates: Rates, mounts: Mounts | None = None) -> list[dict]:
    io = psutil.disk_io_counters(perdisk=True) or {}
    disks, seen = [], set()
    # One device mounted in several places (bind mounts, a container's volumes) is
    # one disk: listed once, under its shortest mount point ("/" before "/run/netns").
    parts = sorted((mounts or shared_mounts()).list(), key=lambda p: (len(p.mountpoint), p.mountpoint))
    for part in parts:
        if part.mountpoint in seen or (part.device and part.device in seen):
            continue
        seen.update({part.mountpoint, part.device} - {""})
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue  # unreadable mount (permissions, stale network mount): not a disk we can show
        counters = io.get(_io_name(part.device))
        read_bps = write_bps = None
        if counters is not None:
            key = ("disk", part.mountpoint)
            read_bps = rates.per_second(key + ("read",), counters.read_bytes)
            write_bps = rates.per_second(key + ("write",), counters.write_bytes)
        disks.append(
            {
                "mount": part.mountpoint,
                "device": part.device,
                "fstype": part.fstype,
                "total": usage.total,
                "used": usage.used,
                "free": usage.free,
                "percent": round(usage.percent, 1),
                "read_bps": _round(read_bps),
                "write_bps": _round(write_bps),
            }
        )
    return disks


# Interfaces with a device behind them (a NIC, virtio's too), by name: looked up once.
_physical: dict[str, bool] = {}


def _is_physical(name: str) -> bool:
    known = _physical.get(name)
    if known is None:
        if len(_physical) > 4096:  # interfaces come and go with containers: start afresh rather than grow
            _physical.clear()
        known = _physical[name] = os.path.exists(f"/sys/class/net/{name}/device")
    return known


@functools.lru_cache(maxsize=16)
def _excluder(patterns: tuple[str, ...]) -> Callable[[str], Any]:
    """One compiled test for all the patterns (fifty containers are fifty veth names a sample)."""
    if not patterns:
        return lambda name: None
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)).match


NET_DEV = "/proc/net/dev"


def _net_counters(excluded: Callable[[str], Any]) -> dict[str, tuple[int, int]]:
    """{interface: (bytes received, bytes sent)}, those excluded left out. On Linux straight from
    /proc/net/dev, an excluded line skipped before its numbers are parsed: with fifty containers'
    veth ends psutil's parse of every line cost 0.4 ms a sample. psutil elsewhere."""
    try:
        with open(NET_DEV, "rb") as f:
            lines = f.read().splitlines()[2:]  # two header lines
    except FileNotFoundError:
        return {name: (c.bytes_recv, c.bytes_sent)
                for name, c in (psutil.net_io_counters(pernic=True) or {}).items() if not excluded(name)}
    out = {}
    for line in lines:
        raw, _, numbers = line.rpartition(b":")
        name = raw.strip().decode("utf-8", "replace")
        if not name or excluded(name):
            continue
        fields = numbers.split()
        if len(fields) >= 9:
            out[name] = (int(fields[0]), int(fields[8]))
    return out


def collect_net(rates: Rates, exclude: tuple[str, ...] = ("veth*",)) -> dict:
    interfaces = []
    physical: list[tuple[float | None, float | None]] = []
    virtual: list[tuple[float | None, float | None]] = []
    # A container's end of its veth pair is left out: its traffic is in that container's row.
    counters = _net_counters(_excluder(tuple(exclude)))
    for name in sorted(counters):
        rx_bytes, tx_bytes = counters[name]
        rx = rates.per_second(("net", name, "rx"), rx_bytes)
        tx = rates.per_second(("net", name, "tx"), tx_bytes)
        interfaces.append(
            {
                "name": name,
                "rx_bps": _round(rx),
                "tx_bps": _round(tx),
                "rx_bytes": rx_bytes,
                "tx_bytes": tx_bytes,
            }
        )
        if name == "lo" or name.startswith("lo"):
            continue  # loopback traffic is local and would count twice
        (physical if _is_physical(name) else virtual).append((rx, tx))
    # The host's traffic is what crosses its NICs. A bridge, a tunnel or a veth
    # carries the same bytes again on their way to a NIC, so the totals sum the
    # physical interfaces (as Netdata's system.net does); a host with none (a
    # container, some VMs) sums every other one.
    counted = [(rx, tx) for rx, tx in (physical or virtual) if rx is not None and tx is not None]
    # An interface seen for the first time (a VPN coming up) has no rate yet and adds
    # nothing this once; it must not blank the host's total.
    return {
        "rx_bps": _round(sum(rx for rx, _ in counted)) if counted else None,
        "tx_bps": _round(sum(tx for _, tx in counted)) if counted else None,
        "interfaces": interfaces,
    }


def net_collector(exclude: tuple[str, ...]) -> Collector:
    """The net collector, leaving out the interfaces whose names match exclude (shell patterns)."""
    return Collector(
        "net",
        "Each network interface but those left out (NET_EXCLUDE): receive/transmit bytes per second "
        "and totals; the top-level rates sum the physical interfaces (every non-loopback one on a "
        "host without any).",
        lambda rates: collect_net(rates, exclude),
    )


def collect_uptime(rates: Rates) -> float:
    return round(time.time() - psutil.boot_time(), 1)


def collect_sensors(rates: Rates) -> dict:
    temps = getattr(psutil, "sensors_temperatures", None)
    fans = getattr(psutil, "sensors_fans", None)
    out: dict[str, list] = {"temperatures": [], "fans": []}
    for chip, entries in ((temps() if temps else None) or {}).items():
        for e in entries:
            out["temperatures"].append(
                {
                    "chip": chip,
                    "label": e.label or chip,
                    "current": e.current,
                    "high": e.high,
                    "critical": e.critical,
                }
            )
    for chip, entries in ((fans() if fans else None) or {}).items():
        for e in entries:
            out["fans"].append({"chip": chip, "label": e.label or chip, "rpm": e.current})
    if not out["temperatures"] and not out["fans"]:
        raise Unavailable("no temperature or fan sensors reported on this host")
    return out


def _round(value: float | None) -> int | None:
    """A rate to whole bytes a second: its decimals are the jitter of the sampler's
    interval, not the host's, and each decimal digit costs the roll-ups 3.3 bits a value."""
    return None if value is None else round(value)


SYSTEM_COLLECTORS: tuple[Collector, ...] = (
    Collector(
        "cpu",
        "Busy CPU in % over the last interval: `percent` (all cores), `per_core`, and the "
        "user/system/iowait/steal shares. None on the first sample.",
        collect_cpu,
    ),
    Collector("load", "Load average over 1, 5 and 15 minutes (runnable tasks).", collect_load),
    Collector(
        "memory",
        "RAM in bytes: total, available, used (total minus available) and percent used.",
        collect_memory,
    ),
    Collector("swap", "Swap in bytes: total, used and percent used.", collect_swap),
    Collector(
        "disks",
        "Each mounted disk: usage in bytes and percent, read/write bytes per second.",
        collect_disks,
    ),
    net_collector(("veth*",)),
    Collector("uptime", "Seconds since the host booted.", collect_uptime),
    Collector(
        "sensors",
        "Temperatures (degrees Celsius) and fan speeds (RPM) where the host reports them.",
        collect_sensors,
    ),
)
