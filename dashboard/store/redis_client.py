"""Which Redis client a process uses: redis-py (the web app), or `resp` (the agent, to stay small).

The agent calls `use_small()` before it imports anything that talks to Redis;
from then on `connect` makes `resp.Redis` clients and `ERRORS` names its
errors. Everyone else gets redis-py, imported only when first asked for.
"""

from __future__ import annotations

_small = False


def use_small() -> None:
    global _small
    _small = True


def connect(url: str, **options):
    if _small:
        from .resp import Redis

        return Redis.from_url(url, **options)
    import redis

    return redis.Redis.from_url(url, **options)


def errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis call raises with the client in use (a lost connection is an OSError too)."""
    if _small:
        from .resp import RedisError
    else:
        from redis import RedisError
    return (RedisError, OSError)


def __getattr__(name: str):
    # `from .redis_client import ERRORS` answers for the client chosen by then.
    if name == "ERRORS":
        return errors()
    raise AttributeError(name)
