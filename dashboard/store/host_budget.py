"""What one host may cost in Redis (HOST_BUDGET_BYTES), and trimming its oldest data to stay inside it.

A host's keys are its stream (whole samples for RESUME_SECONDS), the charts'
rows of its hour (packed minutes), its process table and its roll-up blocks
(and the old per-point sorted sets, while they last); what they cost is what
`MEMORY USAGE` says of each. Over the budget, the oldest
roll-up block goes first, whichever tier it is of (the data furthest back
goes, the newest stays), then, with no blocks left, the oldest samples of
the stream, never its newest STREAM_FLOOR_SECONDS (what viewers resume
from). Deleting frees memory even in a Redis that refuses writes
(`noeviction` when full): trimming is how writing resumes by itself.
"""

from __future__ import annotations

import logging
import time

from .tiers import Tier

log = logging.getLogger("dashboard.history")

STREAM_FLOOR_SECONDS = 300
STREAM_CUT = 0.1  # share of the stream's span trimmed per round when blocks are gone


class HostBudget:
    def __init__(self, store, tiers: tuple[Tier, ...], budget: int) -> None:
        self.store = store
        self.tiers = tiers
        self.budget = budget
        self.trimmed: dict[str, int] = {}  # host -> bytes freed so far (health)

    def keys(self, host: str) -> list[str]:
        s = self.store
        return ([s.stream(host), s.key("procs", host), s.minutes_key(host)]
                + [s.blocks_key(t.step, host) for t in self.tiers]
                + [s.tails_key(t.step, host) for t in self.tiers]
                + [s.tier_key(t.step, host) for t in self.tiers])

    def usage(self, host: str) -> int:
        """Bytes the host's keys take in Redis (MEMORY USAGE, every element counted)."""
        pipe = self.store.binary.pipeline(transaction=False)
        for key in self.keys(host):
            pipe.memory_usage(key, samples=0)
        return sum(n or 0 for n in pipe.execute())

    def enforce(self, host: str, now: float | None = None) -> int:
        """Trim host's oldest data until it fits the budget; the bytes freed."""
        now = time.time() if now is None else now
        start = used = self.usage(host)
        while used > self.budget:
            if not (self._drop_oldest_block(host) or self._cut_stream(host, now)):
                break
            used = self.usage(host)
        freed = start - used
        if freed > 0:
            if host not in self.trimmed:
                log.warning("%s is over its Redis budget of %d bytes: its oldest history is trimmed to stay "
                            "inside it (HOST_BUDGET_BYTES)", host, self.budget)
            self.trimmed[host] = self.trimmed.get(host, 0) + freed
        return freed

    def _drop_oldest_block(self, host: str) -> bool:
        binary = self.store.binary
        oldest = None
        for tier in self.tiers:
            key = self.store.blocks_key(tier.step, host)
            starts = [int(f) for f in binary.hkeys(key)]
            if starts and (oldest is None or min(starts) < oldest[1]):
                oldest = (tier.step, min(starts))
            legacy = binary.zrange(self.store.tier_key(tier.step, host), 0, 0, withscores=True)
            if legacy and (oldest is None or legacy[0][1] < oldest[1]):
                oldest = (self.store.tier_key(tier.step, host), int(legacy[0][1]), True)
        if oldest is None:
            return False
        if len(oldest) == 3:  # an old-format point: the sorted set's oldest tenth
            key = oldest[0]
            binary.zremrangebyrank(key, 0, max(0, binary.zcard(key) // 10))
        else:  # the block and its tail (store/redis_tiers.fitted)
            binary.hdel(self.store.blocks_key(oldest[0], host), oldest[1])
            binary.hdel(self.store.tails_key(oldest[0], host), oldest[1])
        return True

    def _cut_stream(self, host: str, now: float) -> bool:
        key = self.store.stream(host)
        first = self.store.binary.xrange(key, count=1)
        if not first:
            return False
        first_ms = int(first[0][0].split(b"-")[0])
        floor_ms = int((now - STREAM_FLOOR_SECONDS) * 1000)
        if first_ms >= floor_ms:
            return False
        cut = min(floor_ms, first_ms + max(1000, int((now * 1000 - first_ms) * STREAM_CUT)))
        self.store.binary.xtrim(key, minid=f"{cut}-0", approximate=False)
        return True

    def health(self) -> dict:
        return {"budget_bytes": self.budget, "trimmed_bytes": dict(self.trimmed)}
