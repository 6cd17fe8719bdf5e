"""What this process counts for /metrics: console commands with their latency, and
`Counters`, the one snapshot /metrics reads of everything else it exports."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .shared import Stats

# Upper bounds of the command latency histogram (seconds); +Inf is implied.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Commands:
    """Console commands run, by (command, outcome), and their latency by command."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.seconds: dict[str, tuple[list[int], float]] = {}  # command -> (per bucket and +Inf, sum)

    def done(self, name: str, outcome: str, seconds: float) -> None:
        key = (name, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        per_bucket, total = self.seconds.get(name) or ([0] * (len(BUCKETS) + 1), 0.0)
        per_bucket[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.seconds[name] = (per_bucket, total + seconds)

    def histogram(self) -> dict[str, tuple[list[int], float]]:
        """command -> (cumulative counts for each bound and +Inf, sum of seconds)."""
        out = {}
        for name, (per_bucket, total) in list(self.seconds.items()):
            running, cumulative = 0, []
            for n in per_bucket:
                running += n
                cumulative.append(running)
            out[name] = (cumulative, total)
        return out


@dataclass(frozen=True)
class Counters:
    sharing: Stats
    consoles: int
    login_failures: int
    login_throttled: int
    refusals: dict[str, int]
    audit_folded: int
    history_cache: dict[str, tuple[int, int]]  # host -> (/api/history answers from the cache, built)
    commands: dict[tuple[str, str], int]
    command_seconds: dict[str, tuple[list[int], float]]
    notifications: dict[str, int]
    notifications_pending: int
    notifications_delivering: bool
