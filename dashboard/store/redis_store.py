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
      (used by store/notify_store.py)

Methods are thin and raise redis.RedisError when Redis is unreachable; the
callers decide what that means (fall back, refuse, retry).
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

import redis

from . import stream_frames

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


def refuses_writes(exc: BaseException) -> bool:
    """Whether Redis answered but refuses writes: OOM (full under noeviction) or READONLY (a replica)."""
    return isinstance(exc, (redis.OutOfMemoryError, redis.ReadOnlyError))


def trouble_words(exc: BaseException) -> str:
    """How a log line names what went wrong: a Redis that answers but refuses writes is not away."""
    return "refuses writes (full under noeviction, or a read-only replica)" if refuses_writes(exc) else "is unreachable"


def said(exc: BaseException) -> str:
    """What Redis answered, fit for a log line or /healthz: redis-py names a failed pipeline command
    with its arguments ("Command # 1 (HSET key <binary block>) of pipeline caused error: ..."),
    which are data, not the reason."""
    text = str(exc)
    if " caused error: " in text:
        text = text.split(" caused error: ", 1)[1]
    return (text.splitlines() or [type(exc).__name__])[0][:200]


class Refusals:
    """One warning for the whole process while Redis refuses writes (full, or a read-only replica).

    Every part that writes meets it (the sampler's publish, the fleet, the notification outbox, the
    history writer), and each would say so in its own words, some again at each retry. The first to
    meet it says it once for all, as a warning; the others call this too and keep their own line
    at debug. The first write that gets through again says so (info), and the next refusal is news.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self.since: float | None = None  # monotonic time of the first refusal of this outage
        self.first: str | None = None  # which part met it first

    def met(self, exc: BaseException, where: str) -> None:
        if self.since is not None:
            self.log.debug("%s: Redis still refuses writes", where)
            return
        self.since, self.first = time.monotonic(), where
        self.log.warning("Redis refuses writes (%s; full under noeviction, or a read-only replica), first "
                         "met by %s: live streams go on; the shared state, history and notifications wait "
                         "and resume by themselves once it takes writes", said(exc), where)

    def cleared(self, where: str) -> None:
        if self.since is None:
            return
        self.log.info("Redis takes writes again (%s wrote, %.0f s after %s met the refusal)", where,
                      time.monotonic() - self.since, self.first)
        self.since = self.first = None


# One per process: the parts that write to Redis share it.
REFUSALS = Refusals(logging.getLogger("dashboard.redis"))


def redacted(url: str) -> str:
    """The URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, ""))


class RedisStore:
    def __init__(self, url: str, prefix: str = "dash", *, history_seconds: float = 3600,
                 resume_seconds: float | None = None, audit_keep: int = 100_000, tls_verify: bool = True,
                 timeout: float = 5.0) -> None:
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
        self.r = redis.Redis.from_url(url, **options)
        # Blocking reads get their own connection pool, so they never hold up commands.
        self.reader = redis.Redis.from_url(url, **{**options, "socket_timeout": timeout + 10})
        # Packed roll-up points and compressed samples are bytes: their own pools, without decoding.
        self.binary = redis.Redis.from_url(url, **{**options, "decode_responses": False})
        self.binary_reader = redis.Redis.from_url(url, **{**options, "decode_responses": False,
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
