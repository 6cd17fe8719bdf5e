"""Parts a web process and an agent build the same way: the sampler with its
collectors and process table, and the Redis store."""

from __future__ import annotations

from typing import Callable

from ..sampling.cgroups import Container, discover
from ..sampling.collectors import SYSTEM_COLLECTORS, Collector
from ..sampling.processes import ProcessTable
from ..sampling.sampler import Sampler
from ..store.redis_store import RedisStore
from ..stream.wire import encode as encode_metrics

__all__ = ["encode_metrics", "host_sampler", "redis_store"]

def host_sampler(config: dict, host: str, on_sample: Callable[[dict], None]) -> tuple[Sampler, ProcessTable]:
    """This host's sampler (not started) and the process table it fills."""
    processes = ProcessTable(config["TOP_PROCESSES"])
    container = Container(discover())
    collectors = SYSTEM_COLLECTORS + (
        Collector("processes", ProcessTable.help, processes),
        Collector("container", Container.help, container),
    )
    return Sampler(collectors, on_sample, interval=config["SAMPLE_INTERVAL"], host=host), processes


def redis_store(config: dict) -> RedisStore:
    return RedisStore(config["REDIS_URL"], config["REDIS_PREFIX"], history_seconds=config["HISTORY_SECONDS"],
                      tls_verify=config["REDIS_TLS_VERIFY"])
