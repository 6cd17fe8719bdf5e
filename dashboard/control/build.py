"""Parts a web process and an agent build the same way: the sampler with its
collectors, process table and containers, and the Redis store."""

from __future__ import annotations

import logging
from typing import Callable

from ..fleet.asks import Asks
from ..sampling.cgroups import Container, discover
from ..sampling.collectors import SYSTEM_COLLECTORS, Collector, net_collector
from ..sampling.containers import Containers
from ..sampling.processes import ProcessTable
from ..sampling.sampler import Sampler
from ..store.redis_store import RedisStore
from ..stream.wire import encode as encode_metrics

__all__ = ["encode_metrics", "host_asks", "host_sampler", "redis_store"]

log = logging.getLogger("dashboard.control")

def host_sampler(config: dict, host: str, on_sample: Callable[[dict], None], *, sampler: type[Sampler] = Sampler,
                 spawn: Callable | None = None) -> tuple[Sampler, ProcessTable, Containers]:
    """This host's sampler (not started), the process table it fills and its containers collector
    (`sampler` and `spawn`, the engine's rounds: the agent's own, without gevent)."""
    processes = ProcessTable(config["TOP_PROCESSES"])
    container = Container(discover())
    containers = Containers(config["CONTAINERS"], config["CONTAINER_SOCKET"], config["CONTAINERS_SHOWN"],
                            spawn=spawn)
    system = tuple(net_collector(config["NET_EXCLUDE"]) if c.name == "net" else c for c in SYSTEM_COLLECTORS)
    collectors = system + (
        Collector("processes", ProcessTable.help, processes),
        Collector("container", Container.help, container),
        Collector("containers", Containers.help, containers),
    )
    return sampler(collectors, on_sample, interval=config["SAMPLE_INTERVAL"], host=host), processes, containers


def redis_store(config: dict, *, lean: bool = False) -> RedisStore:
    """The Redis store (`lean`: through the agent's small client, store/redis_lean.py)."""
    return RedisStore(config["REDIS_URL"], config["REDIS_PREFIX"], history_seconds=config["HISTORY_SECONDS"],
                      resume_seconds=config["RESUME_SECONDS"], tls_verify=config["REDIS_TLS_VERIFY"], lean=lean)


def host_asks(store: RedisStore, host: str, containers: Containers, allowed: bool,
              holding: Callable[[], bool]) -> Asks:
    """The asks other processes send this host's sampler (fleet/asks.py): restart one of
    its containers, if this host was started with ALLOW_PROCESS_CONTROL=1."""

    def act(ask: dict) -> dict:
        if ask.get("do") != "container restart":
            return {"ok": False, "code": "bad_args", "message": f"{host} does not know that ask"}
        if not allowed:
            return {"ok": False, "code": "forbidden",
                    "message": f"process control is disabled on {host} (ALLOW_PROCESS_CONTROL=0 there)"}
        name, wait = ask.get("name"), ask.get("wait", 10)
        if not isinstance(name, str) or not name or type(wait) is not int or not 0 <= wait <= 60:
            return {"ok": False, "code": "bad_args", "message": "a container name and a wait of 0 to 60 s"}
        try:
            cid = containers.find(name)
            containers.restart(cid, wait)
        except LookupError as exc:
            return {"ok": False, "code": "not_found", "message": str(exc.args[0]) if exc.args else "no such container"}
        except OSError as exc:  # the engine refused or could not be reached (engine.EngineError)
            return {"ok": False, "code": "unavailable", "message": f"the engine on {host} did not restart it: {exc}"}
        log.warning("container %r (%s) restarted on %s, asked by %r through Redis", name[:80], cid[:12], host,
                    str(ask.get("by"))[:64])
        return {"ok": True, "id": cid[:12], "name": name, "restarted": True}

    return Asks(store, host, act, holding)
