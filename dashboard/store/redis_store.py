"""Everything the app keeps in Redis, and the one place that names its keys.

    {p}:host:{name}      stream   one host's samples (global events: {p}:events, in
                                  store/fleet_store.py, with the fleet's summaries), ids
                                  shared by all processes; trimmed to RESUME_SECONDS (what
                                  viewers resume from). A sample's data is compressed
                                  ("z" alone, or "y" against the key frame "k":
                                  store/stream_frames.py); readers here give it back as "d"
    {p}:minutes:{name}   hash     the charts' rows of the host's hour (HISTORY_SECONDS), a
                                  finished minute per field (its start), packed
                                  (store/chart_minutes.py); written with the samples
    {p}:hosts            hash     host -> JSON (last_seen, role, interval, pid)
    {p}:procs:{name}     string   the host's full process table (JSON), for ps/top
    {p}:lease:{name}     string   which process samples that host (expires)
    {p}:state            hash     interval, paused (shared by every sampler)
    {p}:alerts           hash     rule id -> rule JSON
    {p}:alert-ids        counter  rule ids
    {p}:alert-state      hash     "rule|host" -> JSON (state, since, value)
    {p}:audit            stream   audit records (trimmed to AUDIT_RETENTION_DAYS, and
                                  to 100,000 entries)
    {p}:revoked          zset     logged-out session ids, scored by expiry
    {p}:login_epoch      string   the generation login cookies carry (store.login_epoch)
    {p}:blocks:{step}:{name} hash one host's roll-ups of one tier (store/redis_tiers.py):
                                  field = start of a block of steps, value = the packed
                                  block (store/blocks.py); trimmed to the tier's retention
    {p}:tier:{step}:{name} zset   the same before blocks, one member per point (score = start
                                  of the step, member = 8-byte time + packed point): still
                                  read, packed into blocks by the writer
    {p}:control          pubsub   "state changed": samplers reload it
    {p}:pushes           pubsub   console pushes for every console everywhere
    {p}:notify:channels  hash     notification channel name -> JSON (url, by, created)
    {p}:notify:status    hash     channel name -> JSON (last success, last error, counts)
    {p}:notify:history   list     alert transitions with their evidence, newest first
    {p}:notify:outbox    hash     "transition:channel" -> JSON entry waiting to be sent
    {p}:notify:silences  hash     silence id -> JSON (rule, until, reason, by)
    {p}:notify:ids       counter  transition ids ({p}:notify:ids:silence for silences)
    {p}:notify:lease     string   which process delivers notifications (expires)
    {p}:notify:env       string   the deliverer's NOTIFY_URLS channels by name (JSON), for agents
      (used by store/notify_redis.py)

Methods are thin and raise one of `store.errors` when Redis is unreachable
(redis.RedisError or OSError; the agent's client raises OSErrors only); the
callers decide what that means (fall back, refuse, retry).

Web processes speak through redis-py; the agent through store/redis_lean.py
(`lean=True`), the same calls in a fraction of the memory. redis-py is imported
only by whoever uses it, so the agent never loads it.
"""

from __future__ import annotations

import json
import time
from typing import Iterable

from . import stream_frames
from .redis_lean import LeanRedis

# Renew only if we still hold it; release only our own lease.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
# Add an alert rule unless the limit is reached, in one step (workers may race).
_ADD_RULE = """
local limit = tonumber(ARGV[2])
if limit >= 0 and redis.call('hlen', KEYS[1]) >= limit then return false end
local rule = cjson.decode(ARGV[1])
rule['id'] = 'a' .. redis.call('incr', KEYS[2])
local encoded = cjson.encode(rule)
redis.call('hset', KEYS[1], rule['id'], encoded)
redis.call('publish', KEYS[3], ARGV[3])
return encoded
"""


class RedisStore:
    def __init__(self, url: str, prefix: str = "dash", *, history_seconds: float = 3600,
                 resume_seconds: float | None = None, audit_keep: int = 100_000, tls_verify: bool = True,
                 timeout: float = 5.0, lean: bool = False) -> None:
        self.url = url
        self.prefix = prefix
        self.history_seconds = history_seconds  # the charts' rows ({p}:minutes:{name})
        # Whole samples and events (the streams): as long as viewers resume from them.
        self.resume_ms = int(min(history_seconds, resume_seconds or history_seconds) * 1000)
        self.audit_keep = audit_keep
        options = {"decode_responses": True, "socket_timeout": timeout, "socket_connect_timeout": timeout,
                   "health_check_interval": 30}
        if url.startswith("rediss://") and not tls_verify:
            # Heroku's Redis add-on presents a self-signed certificate.
            options["ssl_cert_reqs"] = None
        if lean:
            client, self.errors = LeanRedis, (OSError,)
        else:
            import redis

            client, self.errors = redis.Redis, (redis.RedisError, OSError)
        self.r = client.from_url(url, **options)
        # Blocking reads get their own connection pool, so they never hold up commands.
        self.reader = client.from_url(url, **{**options, "socket_timeout": timeout + 10})
        # Packed roll-up points and compressed samples are bytes: their own pools, without decoding.
        self.binary = client.from_url(url, **{**options, "decode_responses": False})
        self.binary_reader = client.from_url(url, **{**options, "decode_responses": False,
                                                      "socket_timeout": timeout + 10})
        self._writers: dict[str, stream_frames.Writer] = {}  # the samples this process writes, by host
        self.frames = stream_frames.Reader(self._key_frame)
        self._renew = self.r.register_script(_RENEW)
        self._release = self.r.register_script(_RELEASE)
        self._add_rule = self.r.register_script(_ADD_RULE)

    def _key_frame(self, key: str, entry_id: str) -> bytes | None:
        found = self.binary.xrange(key, min=entry_id, max=entry_id)
        return found[0][1].get(b"z") if found else None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix,) + parts)

    def stream(self, host: str) -> str:
        return self.key("host", host)

    def host_of(self, stream_key: str) -> str:
        return stream_key[len(self.key("host")) + 1 :]

    def ping(self) -> bool:
        return bool(self.r.ping())

    def tier_key(self, step: int, host: str) -> str:
        return self.key("tier", str(step), host)

    def minutes_key(self, host: str) -> str:
        return self.key("minutes", host)

    def blocks_key(self, step: int, host: str) -> str:
        return self.key("blocks", str(step), host)

    def tails_key(self, step: int, host: str) -> str:
        """The ends of the blocks too long for one allocation (store/redis_tiers.fitted)."""
        return self.key("tails", str(step), host)

    def close(self) -> None:
        self.r.close()
        self.reader.close()
        self.binary.close()
        self.binary_reader.close()

    # ---- streams ---------------------------------------------------------------

    def resume_start(self) -> int:
        """Milliseconds since the epoch of the oldest entry the streams keep."""
        return int(time.time() * 1000) - self.resume_ms

    def _minid(self) -> str:
        return f"{self.resume_start()}-0"

    def new_frames(self, host: str) -> None:
        """The host's next sample starts a key frame: the one written before may be gone (a Redis that
        restarted empty while another process, or nobody, held the lease)."""
        self._writers.pop(host, None)

    def add_sample(self, host: str, data: str, procs: str | None, info: dict, also=None) -> str:
        """Append a sample to the host's stream (and its process table, when given); note the host as alive.
        `also(pipe)` queues more writes in the same round trip (the fleet summary, the charts' minutes)."""
        writer = self._writers.setdefault(host, stream_frames.Writer())
        fields = writer.fields(data)
        pipe = self.r.pipeline(transaction=False)
        if also is not None:
            also(pipe)
        at = len(pipe)
        pipe.xadd(self.stream(host), fields, minid=self._minid(), approximate=True)
        if procs is not None:
            pipe.set(self.key("procs", host), procs, ex=max(60, int(info.get("interval", 1) * 10)))
        pipe.hset(self.key("hosts"), host, json.dumps({**info, "last_seen": time.time()}))
        try:
            entry_id = pipe.execute()[at]
        except BaseException:
            writer.lost()
            raise
        writer.written(fields, entry_id, data)
        return entry_id

    def add_event(self, hosts: Iterable[str], type: str, data: str) -> dict[str, str]:
        """Append a global event to every host's stream; the id it got in each."""
        hosts = list(dict.fromkeys(hosts))
        pipe = self.r.pipeline(transaction=False)
        for host in hosts:
            pipe.xadd(self.stream(host), {"t": type, "d": data}, minid=self._minid(), approximate=True)
        return dict(zip(hosts, pipe.execute()))

    def backfill(self, host: str, since_ms: int | None = None) -> list[tuple[str, dict]]:
        """The host's stream as far back as it reaches."""
        since = self.resume_start() if since_ms is None else since_ms
        key = self.stream(host)
        return self.frames.entries(key, self.binary.xrange(key, min=f"{since}-0"))

    def read(self, last_ids: dict[str, str], block_ms: int) -> list:
        """New entries after last_ids ({host: id}), waiting up to block_ms."""
        streams = {self.stream(h): i for h, i in last_ids.items()}
        return [(key.decode(), self.frames.entries(key.decode(), entries))
                for key, entries in self.binary_reader.xread(streams, block=block_ms, count=1000) or []]

    def last_seq(self, host: str) -> int:
        """The seq of the host's newest sample (so a new sampler continues it)."""
        key = self.stream(host)
        for _id, fields in self.frames.entries(key, self.binary.xrevrange(key, count=50)):
            if fields.get("t") == "metrics":
                try:
                    return int(json.loads(fields["d"]).get("seq", 0))
                except (ValueError, TypeError):
                    return 0
        return 0

    # ---- hosts -------------------------------------------------------------------

    def hosts(self) -> dict[str, dict]:
        out = {}
        for name, raw in self.r.hgetall(self.key("hosts")).items():
            try:
                out[name] = json.loads(raw)
            except ValueError:
                continue
        return out

    def procs(self, host: str) -> list | None:
        raw = self.r.get(self.key("procs", host))
        return None if raw is None else json.loads(raw)

    # ---- the sampler lease --------------------------------------------------------

    def acquire(self, host: str, holder: str, seconds: float) -> bool:
        return bool(self.r.set(self.key("lease", host), holder, nx=True, px=int(seconds * 1000)))

    def renew(self, host: str, holder: str, seconds: float) -> bool:
        return bool(self._renew(keys=[self.key("lease", host)], args=[holder, int(seconds * 1000)]))

    def release(self, host: str, holder: str) -> bool:
        return bool(self._release(keys=[self.key("lease", host)], args=[holder]))

    def holder(self, host: str) -> str | None:
        return self.r.get(self.key("lease", host))

    # ---- shared settings and alert rules -----------------------------------------------

    def state(self) -> dict:
        raw = self.r.hgetall(self.key("state"))
        out = {}
        if "interval" in raw:
            out["interval"] = float(raw["interval"])
        if "paused" in raw:
            out["paused"] = raw["paused"] == "1"
        return out

    def set_state(self, **values) -> None:
        mapping = {k: ("1" if v else "0") if isinstance(v, bool) else str(v) for k, v in values.items()}
        pipe = self.r.pipeline()
        pipe.hset(self.key("state"), mapping=mapping)
        pipe.publish(self.key("control"), json.dumps({"state": values}))
        pipe.execute()

    def rules(self) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.r.hgetall(self.key("alerts")).items()}

    def add_rule(self, rule: dict, limit: int | None = None) -> dict | None:
        """Store a new rule under a fresh id; None when `limit` rules exist already."""
        raw = self._add_rule(keys=[self.key("alerts"), self.key("alert-ids"), self.key("control")],
                             args=[json.dumps(rule), -1 if limit is None else limit,
                                   json.dumps({"rules": True})])
        return None if raw is None else json.loads(raw)

    def remove_rule(self, rule_id: str) -> dict | None:
        raw = self.r.hget(self.key("alerts"), rule_id)
        if raw is None:
            return None
        pipe = self.r.pipeline()
        pipe.hdel(self.key("alerts"), rule_id)
        for field in self.r.hkeys(self.key("alert-state")):
            if field.startswith(rule_id + "|"):
                pipe.hdel(self.key("alert-state"), field)
        pipe.publish(self.key("control"), json.dumps({"rules": True}))
        pipe.execute()
        return json.loads(raw)

    def alert_states(self) -> dict[tuple[str, str], dict]:
        out = {}
        for field, raw in self.r.hgetall(self.key("alert-state")).items():
            rule_id, _, host = field.partition("|")
            out[(rule_id, host)] = json.loads(raw)
        return out

    def save_alert_state(self, rule_id: str, host: str, state: dict) -> None:
        self.r.hset(self.key("alert-state"), f"{rule_id}|{host}", json.dumps(state))

    # ---- pushes to consoles everywhere ---------------------------------------------------

    def push(self, text: str) -> None:
        self.r.publish(self.key("pushes"), text)

    def pubsub(self):
        p = self.reader.pubsub(ignore_subscribe_messages=True)
        p.subscribe(self.key("control"), self.key("pushes"))
        return p

    # ---- audit and sessions --------------------------------------------------------------

    def audit_add(self, fields: dict) -> str:
        return self.r.xadd(self.key("audit"), fields, maxlen=self.audit_keep, approximate=True)

    def audit_latest(self, n: int) -> list[tuple[str, dict]]:
        return self.r.xrevrange(self.key("audit"), count=n)

    def audit_trim(self, before_ms: int) -> int:
        """Drop audit entries older than before_ms (exactly: ids are milliseconds)."""
        return self.r.xtrim(self.key("audit"), minid=f"{before_ms}-0", approximate=False)

    def audit_scan(self, page: int = 1000):
        """Every audit entry, oldest first, a page per round trip."""
        start = "-"
        while True:
            entries = self.r.xrange(self.key("audit"), min=start, count=page)
            yield from entries
            if len(entries) < page:
                return
            start = "(" + entries[-1][0]

    def revoke(self, session: str, expires: float) -> None:
        pipe = self.r.pipeline()
        pipe.zadd(self.key("revoked"), {session: expires})
        pipe.zremrangebyscore(self.key("revoked"), 0, time.time())
        pipe.execute()

    def is_revoked(self, session: str) -> bool:
        score = self.r.zscore(self.key("revoked"), session)
        return score is not None and score > time.time()

    def login_epoch(self) -> str:
        """The generation new login cookies carry: made by the first login, kept until Redis loses it."""
        import secrets  # here, not above: it loads OpenSSL (4 MB), and the agent never logs anyone in

        key = self.key("login_epoch")
        pipe = self.r.pipeline()
        pipe.set(key, secrets.token_urlsafe(12), nx=True)
        pipe.get(key)
        return pipe.execute()[1]

    def login_state(self, session: str) -> tuple[str | None, bool]:
        """(the current login generation or None, whether session was logged out), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        pipe.get(self.key("login_epoch"))
        pipe.zscore(self.key("revoked"), session)
        epoch, score = pipe.execute()
        return epoch, score is not None and score > time.time()
