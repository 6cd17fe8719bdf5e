"""The chart series: a dozen numbers read from each sample, with unit and help.

Declared once, next to the collectors whose output they read: chart history,
alert rules and roll-ups all use this list, so a series added here shows on
every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


def dig(sample: dict, *path):
    value = sample
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _disk_sum(sample: dict, field: str) -> float | None:
    disks = sample.get("disks") or []
    values = [d.get(field) for d in disks]
    if not values or any(v is None for v in values):
        return None
    return round(sum(values))


@dataclass(frozen=True)
class Series:
    name: str
    unit: str
    help: str
    get: Callable[[dict], float | None]


SERIES: tuple[Series, ...] = (
    Series("cpu", "%", "CPU busy, all cores", lambda s: dig(s, "cpu", "percent")),
    Series("memory", "%", "RAM used", lambda s: dig(s, "memory", "percent")),
    Series("swap", "%", "swap used", lambda s: dig(s, "swap", "percent")),
    Series("load1", "", "1-minute load average", lambda s: dig(s, "load", "load1")),
    Series("load5", "", "5-minute load average", lambda s: dig(s, "load", "load5")),
    Series("load15", "", "15-minute load average", lambda s: dig(s, "load", "load15")),
    Series("disk_read", "B/s", "bytes read per second, all disks", lambda s: _disk_sum(s, "read_bps")),
    Series("disk_write", "B/s", "bytes written per second, all disks", lambda s: _disk_sum(s, "write_bps")),
    Series("net_rx", "B/s", "bytes received per second, all interfaces", lambda s: dig(s, "net", "rx_bps")),
    Series("net_tx", "B/s", "bytes sent per second, all interfaces", lambda s: dig(s, "net", "tx_bps")),
    Series(
        "container_cpu",
        "%",
        "container CPU used, % of its limit",
        lambda s: dig(s, "container", "cpu_percent"),
    ),
    Series(
        "container_memory",
        "%",
        "container memory used, % of its limit",
        lambda s: dig(s, "container", "memory_percent"),
    ),
)
