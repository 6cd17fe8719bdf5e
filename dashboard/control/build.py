"""Parts a web process and an agent build the same way: the sampler with its
collectors, process table and containers, and the Redis store."""

from __future__ import annotations

from typing import Callable

from ..sampling.cgroups import Container, discover
from ..sampling.collectors import SYSTEM_COLLECTORS, Collector, net_collector
from ..sampling.containers import Containers
from ..sampling.processes import ProcessTable
from ..sampling.sampler import Sampler
from ..store.redis_store import RedisStore
from ..stream.wire import encode as encode_metrics

__all__ = ["encode_metrics", "host_sampler", "redis_store"]

def host_sampler(config: dict, host: str,
                 on_sample: Callable[[dict], None]) -> tuple[Sampler, ProcessTable, Containers]:
    """This host's sampler (not started), the process table it fills and its containers collector."""
    processes = ProcessTable(config["TOP_PROCESSES"])
    container = Container(discover())
    containers = Containers(config["CONTAINERS"], config["CONTAINER_SOCKET"], config["CONTAINERS_SHOWN"])
    system = tuple(net_collector(config["NET_EXCLUDE"]) if c.name == "net" else c for c in SYSTEM_COLLECTORS)
    collectors = system + (
        Collector("processes", ProcessTable.help, processes),
        Collector("container", Container.help, container),
        Collector("containers", Containers.help, containers),
    )
    return Sampler(collectors, on_sample, interval=config["SAMPLE_INTERVAL"], host=host), processes, containers


def redis_store(config: dict) -> RedisStore:
    return RedisStore(config["REDIS_URL"], config["REDIS_PREFIX"], history_seconds=config["HISTORY_SECONDS"],
                      resume_seconds=config["RESUME_SECONDS"], tls_verify=config["REDIS_TLS_VERIFY"])
