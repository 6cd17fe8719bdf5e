"""What a failing Redis means, for whichever part met it: refused writes told apart from an
outage, said once for the whole process, and Redis named in a log line without its password."""

from __future__ import annotations

import logging
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from .redis_lean import ReplyError


def refuses_writes(exc: BaseException) -> bool:
    """Whether Redis answered but refuses writes: OOM (full under noeviction) or READONLY (a replica)."""
    if isinstance(exc, ReplyError):
        return exc.refuses_writes
    redis = sys.modules.get("redis")  # an error of redis-py's comes with redis-py loaded
    return redis is not None and isinstance(exc, (redis.OutOfMemoryError, redis.ReadOnlyError))


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
