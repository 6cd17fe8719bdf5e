"""Each watched process's CPU and memory over the last minutes, from the samples themselves.

A process is watched while it appears in a sample's top tables (by CPU or by
memory) and, once an operator asked about it (`proc <pid>`), for as long as it
lives. Every sample already measures every process, so keeping a point costs
no extra /proc read. Memory is bounded: at most `points` per process and
`processes` processes; a process that exits is forgotten with its trail.
"""

from __future__ import annotations

from collections import OrderedDict, deque

Key = tuple[int, float]  # (pid, create time): a reused pid is another process


class Trails:
    def __init__(self, points: int = 600, processes: int = 256) -> None:
        self.points = points
        self.processes = processes
        self._trails: OrderedDict[Key, deque] = OrderedDict()  # least recently fed first
        self._asked: set[Key] = set()

    def ask(self, key: Key) -> None:
        """Keep this process's trail from now on, in or out of the top tables."""
        self._asked.add(key)
        if len(self._asked) > self.processes:  # an operator asking about pid after pid
            self._asked.discard(next(iter(self._asked)))

    @property
    def asked(self) -> set[Key]:
        return self._asked

    def feed(self, ts: float, shown: dict[Key, tuple[float | None, int]], alive: set[Key]) -> None:
        """One sample: (cpu, rss) of every process to keep a point for; `alive` is every process."""
        for key in [k for k in self._trails if k not in alive]:
            del self._trails[key]
        self._asked &= alive
        for key, (cpu, rss) in shown.items():
            trail = self._trails.get(key)
            if trail is None:
                trail = self._trails[key] = deque(maxlen=self.points)
            else:
                self._trails.move_to_end(key)
            trail.append((round(ts, 3), cpu, rss))
        while len(self._trails) > self.processes:
            self._trails.popitem(last=False)

    def of(self, key: Key) -> list[tuple[float, float | None, int]]:
        return list(self._trails.get(key, ()))

    def __len__(self) -> int:
        return len(self._trails)


def summary(points: list[tuple[float, float | None, int]]) -> dict | None:
    """What a trail says in a few numbers: since when, how many samples, CPU and memory range."""
    if not points:
        return None
    cpus = [c for _, c, _ in points if c is not None]
    rss = [r for _, _, r in points]
    return {
        "since": points[0][0],
        "samples": len(points),
        "cpu_avg": round(sum(cpus) / len(cpus), 1) if cpus else None,
        "cpu_max": max(cpus) if cpus else None,
        "rss_min": min(rss),
        "rss_max": max(rss),
    }
