"""The charts' rows of each host's hour in Redis: `{p}:minutes:{host}`, a hash of packed minutes.

Field = the minute's start (epoch seconds), value = its rows packed by
store/chart_minutes.py. Written by whoever samples the host, in the same
round trip as its sample; the minutes that fall out of HISTORY_SECONDS are
deleted as new ones come, and the key expires when a host stops writing.
"""

from __future__ import annotations

from .redis_store import RedisStore


class RedisMinutes:
    def __init__(self, store: RedisStore) -> None:
        self.store = store
        # The minutes the hour no longer reaches: the one that fell out, and a few more a restart skipped.
        self.span = (int(store.history_seconds) + 59) // 60 * 60 + 60

    def queue(self, pipe, host: str, minutes: list[tuple[int, bytes]]) -> None:
        """Queue finished minutes on a pipeline (the sample's)."""
        if not minutes:
            return
        key = self.store.minutes_key(host)
        pipe.hset(key, mapping={str(start): blob for start, blob in minutes})
        pipe.hdel(key, *{str(start - self.span - 60 * k) for start, _ in minutes for k in range(5)})
        pipe.expire(key, self.span + 120)  # a host that stops writing leaves nothing behind

    def stored(self, host: str, start: int) -> bytes | None:
        """The blob of one minute, if stored (the one a sampler that stopped left unfinished)."""
        return self.store.binary.hget(self.store.minutes_key(host), str(start))

    def add(self, host: str, minutes: list[tuple[int, bytes]]) -> None:
        """Finished minutes written on their own (a sampler stopping)."""
        pipe = self.store.r.pipeline(transaction=False)
        self.queue(pipe, host, minutes)
        pipe.execute()


def since(found: dict, start: float) -> list[bytes]:
    """Of a read hash ({field: blob}, fields as bytes or str), the blobs from `start` on, oldest first."""
    first = int(start) // 60 * 60
    return [found[k] for k in sorted(found, key=int) if int(k) >= first]
