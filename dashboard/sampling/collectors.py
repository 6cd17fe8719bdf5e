"""Host collectors: each reads one part of the system with psutil.

A collector is a name (its key in the sample), a help line (what it reports and
in which unit, kept next to the code that computes it) and a function that
takes the shared `Rates` and returns plain JSON-able data. Collectors never
keep rate state of their own; the sampler runs them and isolates failures.

Counters go through `Rates`, so the first sample carries None where a rate
would be, never a guess.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil

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


def collect_disks(rates: Rates) -> list[dict]:
    io = psutil.disk_io_counters(perdisk=True) or {}
    disks, seen = [], set()
    # One device mounted in several places (bind mounts, a container's volumes) is
    # one disk: listed once, under its shortest mount point ("/" before "/run/netns").
    parts = sorted(psutil.disk_partitions(all=False), key=lambda p: (len(p.mountpoint), p.mountpoint))
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


def collect_net(rates: Rates) -> dict:
    interfaces = []
    rx_sum = tx_sum = 0.0
    rated = False  # at least one interface with a rate: the first sample has none
    for name, c in sorted((psutil.net_io_counters(pernic=True) or {}).items()):
        rx = rates.per_second(("net", name, "rx"), c.bytes_recv)
        tx = rates.per_second(("net", name, "tx"), c.bytes_sent)
        interfaces.append(
            {
                "name": name,
                "rx_bps": _round(rx),
                "tx_bps": _round(tx),
                "rx_bytes": c.bytes_recv,
                "tx_bytes": c.bytes_sent,
            }
        )
        if name == "lo" or name.startswith("lo"):
            continue  # loopback traffic is local and would count twice
        if rx is not None and tx is not None:
            # An interface seen for the first time (a container's veth, a VPN coming up) has no
            # rate yet and adds nothing this once; it must not blank the host's total.
            rated = True
            rx_sum += rx
            tx_sum += tx
    return {
        "rx_bps": _round(rx_sum) if rated else None,
        "tx_bps": _round(tx_sum) if rated else None,
        "interfaces": interfaces,
    }


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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


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
    Collector(
        "net",
        "Each network interface: receive/transmit bytes per second and totals; the "
        "top-level rates sum every non-loopback interface.",
        collect_net,
    ),
    Collector("uptime", "Seconds since the host booted.", collect_uptime),
    Collector(
        "sensors",
        "Temperatures (degrees Celsius) and fan speeds (RPM) where the host reports them.",
        collect_sensors,
    ),
)
