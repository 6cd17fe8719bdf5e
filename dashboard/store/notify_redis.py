"""Notifications' store in Redis, shared by every worker, dyno and host (see store/notify_store.py)."""

from __future__ import annotations

import json
import time

from .notify_store import HISTORY_KEEP, status_update


# Take the lease if free, or renew it if ours.
_CLAIM = """
local cur = redis.call('get', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1
end
return 0
"""
# Add a channel unless the name is taken (0) or there are ARGV[3] already (-1).
_ADD_CHANNEL = """
if redis.call('hexists', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('hlen', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1
"""
# Drop expired silences, then add one unless ARGV[4] are in force.
_ADD_SILENCE = """
local all = redis.call('hgetall', KEYS[1])
local live = 0
for i = 1, #all, 2 do
  if tonumber(cjson.decode(all[i + 1])['until']) <= tonumber(ARGV[3]) then
    redis.call('hdel', KEYS[1], all[i])
  else
    live = live + 1
  end
end
if live >= tonumber(ARGV[4]) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2]) return 1
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisNotifyStore:
    """The same, in Redis (keys named in store/redis_store.py's table, under {p}:notify:*)."""

    def __init__(self, store) -> None:
        self.r = store.r
        k = lambda *parts: store.key("notify", *parts)  # noqa: E731
        self.k_channels, self.k_status, self.k_history = k("channels"), k("status"), k("history")
        self.k_outbox, self.k_silences, self.k_ids, self.k_lease, self.k_env = (
            k("outbox"), k("silences"), k("ids"), k("lease"), k("env"))
        self._claim = self.r.register_script(_CLAIM)
        self._release = self.r.register_script(_RELEASE)
        self._add_channel = self.r.register_script(_ADD_CHANNEL)
        self._add_silence = self.r.register_script(_ADD_SILENCE)

    def add_channel(self, name: str, url: str, by: str | None, limit: int | None = None) -> dict | None:
        row = {"name": name, "url": url, "by": by, "created": time.time()}
        added = self._add_channel(keys=[self.k_channels], args=[name, json.dumps(row), limit or 2**52])
        if added == 0:
            raise ValueError(f"a channel named {name!r} exists already")
        return row if added == 1 else None

    def remove_channel(self, name: str) -> dict | None:
        raw = self.r.hget(self.k_channels, name)
        if raw is None:
            return None
        pipe = self.r.pipeline()
        pipe.hdel(self.k_channels, name)
        pipe.hdel(self.k_status, name)
        for entry_id, entry in self.r.hgetall(self.k_outbox).items():
            if json.loads(entry)["channel"] == name:
                pipe.hdel(self.k_outbox, entry_id)
        pipe.execute()
        return json.loads(raw)

    def channels(self) -> list[dict]:
        rows = [json.loads(v) for v in self.r.hgetall(self.k_channels).values()]
        return sorted(rows, key=lambda c: c["created"])

    def status(self) -> dict[str, dict]:
        return {n: json.loads(d) for n, d in self.r.hgetall(self.k_status).items()}

    def note(self, name: str, ok: bool, error: str | None = None) -> None:
        raw = self.r.hget(self.k_status, name)
        st = status_update(json.loads(raw) if raw else None, ok, error, time.time())
        self.r.hset(self.k_status, name, json.dumps(st))

    def record(self, transition: dict, channels: list[str]) -> dict:
        n = self.r.incr(self.k_ids)
        transition = {**transition, "id": f"t{n}"}
        data = json.dumps(transition)
        pipe = self.r.pipeline()  # MULTI/EXEC: the history entry and its outbox entries together
        pipe.lpush(self.k_history, data)
        pipe.ltrim(self.k_history, 0, HISTORY_KEEP - 1)
        for channel in channels:
            entry = {"id": f"{n}:{channel}", "channel": channel, "transition": transition,
                     "created": transition["ts"], "attempts": 0, "next_at": transition["ts"]}
            pipe.hset(self.k_outbox, entry["id"], json.dumps(entry))
        pipe.execute()
        return transition

    def history(self, n: int) -> list[dict]:
        return [json.loads(d) for d in self.r.lrange(self.k_history, 0, n - 1)]

    def outbox(self) -> list[dict]:
        rows = [json.loads(v) for v in self.r.hgetall(self.k_outbox).values()]
        return sorted(rows, key=lambda e: (e["created"], e["id"]))

    def reschedule(self, ids: list, attempts: int, next_at: float) -> None:
        raws = self.r.hmget(self.k_outbox, ids)
        pipe = self.r.pipeline()
        for entry_id, raw in zip(ids, raws):
            if raw is not None:
                entry = {**json.loads(raw), "attempts": attempts, "next_at": next_at}
                pipe.hset(self.k_outbox, entry_id, json.dumps(entry))
        pipe.execute()

    def done(self, ids: list) -> None:
        if ids:
            self.r.hdel(self.k_outbox, *ids)

    def add_silence(self, silence: dict, limit: int | None = None) -> dict | None:
        silence = {**silence, "id": f"s{self.r.incr(self.k_ids + ':silence')}"}
        added = self._add_silence(keys=[self.k_silences],
                                  args=[silence["id"], json.dumps(silence), time.time(), limit or 2**52])
        return silence if added == 1 else None

    def silences(self, now: float | None = None) -> list[dict]:
        now = time.time() if now is None else now
        out = []
        for sid, raw in self.r.hgetall(self.k_silences).items():
            silence = json.loads(raw)
            if silence["until"] <= now:
                self.r.hdel(self.k_silences, sid)
            else:
                out.append(silence)
        return sorted(out, key=lambda s: int(s["id"][1:]))

    def clear_silence(self, silence_id: str) -> dict | None:
        raw = self.r.hget(self.k_silences, silence_id)
        if raw is None:
            return None
        self.r.hdel(self.k_silences, silence_id)
        return json.loads(raw)

    def claim_delivery(self, holder: str, seconds: float) -> bool:
        return bool(self._claim(keys=[self.k_lease], args=[holder, int(seconds * 1000)]))

    def release_delivery(self, holder: str) -> None:
        self._release(keys=[self.k_lease], args=[holder])

    def announce_env(self, names: list[str]) -> None:
        """The deliverer's NOTIFY_URLS channels, by name: an agent queues its transitions for them
        without holding the URLs (their secrets stay with the web processes)."""
        self.r.set(self.k_env, json.dumps(names))

    def announced_env(self) -> list[str]:
        raw = self.r.get(self.k_env)
        try:
            names = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
