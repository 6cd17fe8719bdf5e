"""One host's summary for the fleet view: a dozen figures and a 10-minute CPU sparkline.

Made where the sample is taken (the web process embedded, or whoever holds the
host's lease), once per sample. `Summarizer.add` answers the whole summary and
the fields that changed since the previous one, so the shared store and the
fleet's viewers carry only what changed. The sparkline is the mean CPU of each
finished SPARK_STEP-second bucket over the last SPARK_SECONDS: it changes once
per bucket, not with every sample.
"""

from __future__ import annotations

from .series import dig

SPARK_SECONDS = 600
SPARK_STEP = 20
SPARK_POINTS = SPARK_SECONDS // SPARK_STEP


def _round(value, digits: int = 1):
    return None if not isinstance(value, (int, float)) else round(float(value), digits)


def _containers_running(sample: dict) -> int | None:
    """Running containers, when the sample lists them (None on a host without any runtime)."""
    found = sample.get("containers")
    if isinstance(found, dict):
        if isinstance(found.get("running"), int):
            return found["running"]
        found = found.get("items") or found.get("containers")
    if isinstance(found, list):
        return sum(1 for c in found if isinstance(c, dict) and c.get("state", "running") == "running")
    return None


def figures(sample: dict) -> dict:
    """The fleet's figures of one sample."""
    disks = [d.get("percent") for d in sample.get("disks") or () if isinstance(d.get("percent"), (int, float))]
    return {
        "cpu": _round(dig(sample, "cpu", "percent")),
        "mem": _round(dig(sample, "memory", "percent")),
        "disk": _round(max(disks)) if disks else None,  # the fullest disk
        "load": _round(dig(sample, "load", "load1"), 2),
        "rx": _round(dig(sample, "net", "rx_bps"), 0),
        "tx": _round(dig(sample, "net", "tx_bps"), 0),
        "containers": _containers_running(sample),
    }


class Summarizer:
    """One host's summaries, sample after sample (keeps the previous one and the sparkline)."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._buckets: dict[int, list[float]] = {}  # bucket -> [sum, count]
        self._spark: list | None = None
        self.last: dict = {}

    def _sparkline(self, ts: float, cpu) -> list:
        bucket = int(ts // SPARK_STEP)
        if isinstance(cpu, (int, float)):
            total = self._buckets.setdefault(bucket, [0.0, 0])
            total[0] += cpu
            total[1] += 1
        for old in [b for b in self._buckets if b <= bucket - SPARK_POINTS - 1]:
            del self._buckets[old]
        # Finished buckets only: the line moves once per bucket.
        first = bucket - SPARK_POINTS
        line = []
        for b in range(first, bucket):
            total = self._buckets.get(b)
            line.append(None if not total else round(total[0] / total[1]))
        return line

    def add(self, sample: dict, *, firing: int = 0, paused: bool = False) -> tuple[dict, dict]:
        """(the whole summary, the fields that changed since the last one; `ts` always)."""
        ts = float(sample.get("ts") or 0)
        summary = {"name": self.host, "ts": round(ts, 3), "interval": sample.get("interval"),
                   **figures(sample), "firing": firing, "paused": paused,
                   "spark": self._sparkline(ts, dig(sample, "cpu", "percent"))}
        changed = {k: v for k, v in summary.items() if self.last.get(k, ...) != v}
        changed["ts"] = summary["ts"]
        self.last = summary
        return summary, changed
