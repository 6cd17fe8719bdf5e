"""A simulated fleet: summaries for N hosts (1,000 by default) written into a real Redis.

    python -m bench.fleet_sim --redis redis://127.0.0.1:6379/0 [--hosts 1000] [--seconds 60]

Each simulated host writes what a real sampler writes for the fleet view
(`dashboard.sampling.summary`, `dashboard.store.fleet_store`) once per
--interval, spread over the interval, with CPU following its own slow wave;
a few hosts fire alerts, a few are paused, and --stale hosts stop after their
first write (so the page shows them stale). The hosts' names are web-0001,
db-0002... so filters and rules by pattern have something to match. Prints
one JSON line: writes made, seconds, writes per second achieved, and the
bytes a second of what changed (as JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time

from dashboard.sampling.summary import Summarizer
from dashboard.store.fleet_store import FleetStore
from dashboard.store.redis_store import RedisStore

ROLES = ("web", "db", "cache", "worker")


def fake_sample(i: int, ts: float, interval: float) -> dict:
    phase = i * 0.37
    cpu = max(0.0, min(100.0, 35 + 30 * math.sin(ts / 60 + phase) + random.uniform(-5, 5)))
    return {"ts": ts, "interval": interval, "cpu": {"percent": cpu}, "memory": {"percent": 30 + (i * 7) % 60},
            "disks": [{"percent": 20 + (i * 13) % 75}], "load": {"load1": round(cpu / 25, 2)},
            "net": {"rx_bps": random.uniform(0, 5e6), "tx_bps": random.uniform(0, 1e6)},
            **({"containers": {"running": i % 9}} if i % 3 == 0 else {})}


def names(n: int) -> list[str]:
    return [f"{ROLES[i % len(ROLES)]}-{i + 1:04d}" for i in range(n)]


def run(url: str, hosts: int, seconds: float, interval: float, stale: int, prefix: str = "dash") -> dict:
    store = RedisStore(url, prefix)
    fleet = FleetStore(store)
    hostnames = names(hosts)
    summarizers = [Summarizer(name) for name in hostnames]
    stale_set = set(range(hosts - stale, hosts))
    writes = changed_bytes = 0
    start = time.time()
    tick = 0
    while time.time() - start < seconds or tick == 0:
        round_start = time.time()
        pipe = store.r.pipeline(transaction=False)
        for i, summarizer in enumerate(summarizers):
            if i in stale_set and tick > 0:
                continue
            summary, changed = summarizer.add(fake_sample(i, round_start, interval),
                                              firing=1 if i % 97 == 5 else 0, paused=i % 211 == 7)
            fleet.write(pipe, hostnames[i], summary, changed)
            writes += 1
            if tick:  # the first round is every field of every host: what a viewer loads, not a change
                changed_bytes += len(json.dumps(changed, separators=(",", ":")))
            if len(pipe) >= 200:  # a batch of hosts per round trip, spread over the interval
                pipe.execute()
                pipe = store.r.pipeline(transaction=False)
        pipe.execute()
        tick += 1
        time.sleep(max(0.0, interval - (time.time() - round_start)))
    took = time.time() - start
    store.close()
    return {"hosts": hosts, "writes": writes, "seconds": round(took, 2), "writes_per_second": round(writes / took, 1),
            # what changed, as JSON: what a fleet viewer is owed a second, before its own framing
            "changed_bytes_per_second": round(changed_bytes / max(took - interval, interval))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_sim", description=__doc__.split("\n")[0])
    parser.add_argument("--redis", required=True, help="redis:// URL (loopback)")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--stale", type=int, default=3, help="hosts that stop after their first write")
    parser.add_argument("--prefix", default="dash")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.redis, args.hosts, args.seconds, args.interval, args.stale, args.prefix)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
