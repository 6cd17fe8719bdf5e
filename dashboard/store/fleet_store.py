"""The fleet's keys in Redis: one summary per host, the changes, and global events once.

    {p}:fleet            hash     host -> JSON summary (sampling/summary.py), the whole of it
    {p}:fleet:changes    stream   one entry per sample: h = host, d = JSON of the fields that
                                  changed; trimmed to about CHANGES_KEPT entries
    {p}:events           stream   global events (config, notice, alert): t = type, d = JSON;
                                  written once for every host, trimmed to RESUME_SECONDS

A web process reads all of them with its one reader (`fleet.sharing`), next to
the host streams it serves. Methods raise redis.RedisError when Redis is away.
"""

from __future__ import annotations

import json

from .redis_store import RedisStore

# Enough for a reader that missed ten seconds of a thousand hosts sampled every second.
CHANGES_KEPT = 10_000


class FleetStore:
    def __init__(self, store: RedisStore) -> None:
        self.store = store

    @property
    def r(self):
        return self.store.r

    @property
    def summaries(self) -> str:
        return self.store.key("fleet")

    @property
    def changes(self) -> str:
        return self.store.key("fleet", "changes")

    @property
    def events(self) -> str:
        return self.store.key("events")

    def write(self, pipe, host: str, summary: dict, changed: dict) -> None:
        """Queue one host's summary on a pipeline (sent with the sample, in the same round trip)."""
        pipe.hset(self.summaries, host, json.dumps(summary, separators=(",", ":")))
        pipe.xadd(self.changes, {"h": host, "d": json.dumps(changed, separators=(",", ":"))},
                  maxlen=CHANGES_KEPT, approximate=True)

    def read_all(self) -> tuple[str, dict[str, dict]]:
        """(the id of the newest change, every host's summary): read after that id to follow."""
        pipe = self.r.pipeline(transaction=True)
        pipe.xrevrange(self.changes, count=1)
        pipe.hgetall(self.summaries)
        newest, raw = pipe.execute()
        out = {}
        for host, text in raw.items():
            try:
                out[host] = json.loads(text)
            except ValueError:
                continue
        return (newest[0][0] if newest else "0-0"), out

    def forget(self, host: str) -> None:
        self.r.hdel(self.summaries, host)

    def add_event(self, type: str, data: str) -> str:
        """One global event, written once; every reader merges it into each host it shows."""
        return self.r.xadd(self.events, {"t": type, "d": data}, minid=f"{self.store.resume_start()}-0",
                           approximate=True)

    def backfill_events(self, since_ms: int) -> list[tuple[str, dict]]:
        return self.r.xrange(self.events, min=f"{since_ms}-0")

    def last_event_id(self) -> str:
        newest = self.r.xrevrange(self.events, count=1)
        return newest[0][0] if newest else "0-0"
