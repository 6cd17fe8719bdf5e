"""Sample this host and publish it to a dashboard's Redis; nothing else.

    REDIS_URL=redis://... python -m dashboard.agent [--host-name NAME]

Run it on every machine the dashboard should show. It competes for the same
per-host lease as the web processes (so a host is sampled once even if a web
dyno runs there too), follows the shared interval, pause and alert rules, and
reconnects with backoff when Redis goes away. SIGTERM or Ctrl-C stops it and
releases its lease.
"""

# redis-py's sockets must yield to the sampler's greenlets: patch before anything opens one.
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

import redis  # noqa: E402

from . import settings  # noqa: E402
from .alerts.delivery import Notifier  # noqa: E402
from .alerts.rules import Alerts  # noqa: E402
from .control import build  # noqa: E402
from .control.redis import RedisShared  # noqa: E402
from .control.services import Services, Step, Task  # noqa: E402
from .control.shared import Transitions  # noqa: E402
from .store.notify_store import RedisNotifyStore  # noqa: E402

log = logging.getLogger("dashboard.agent")


def build_agent(cfg: dict, host: str) -> tuple[RedisShared, Services]:
    """The Redis shared state plus a sampler (the same parts a web process builds), and its services."""
    store = build.redis_store(cfg)
    shared: RedisShared | None = None

    def on_sample(sample: dict) -> None:
        shared.publish_sample(sample, build.encode_metrics(sample))

    sampler, processes, containers = build.host_sampler(cfg, host, on_sample)
    # The agent records its host's transitions in the shared outbox; web processes deliver them.
    notifier = Notifier(RedisNotifyStore(store), env_urls=cfg["NOTIFY_URLS"],
                        group_seconds=cfg["NOTIFY_GROUP_SECONDS"], public_url=cfg["PUBLIC_URL"],
                        raw_schemes=cfg["NOTIFY_RAW_SCHEMES"])
    shared = RedisShared.build(
        store, sampler, Alerts(), None, role="agent", lease_seconds=cfg["SAMPLER_LEASE_SECONDS"],
        stale_seconds=cfg["HOST_STALE_SECONDS"], table_rows=lambda: processes.rows(processes.latest),
        on_transition=Transitions(notifier.record, (redis.RedisError, OSError)))
    # `container restart --host` from a console reaches this host's engine only if this agent allows it.
    asks = build.host_asks(store, host, containers, cfg["ALLOW_PROCESS_CONTROL"],
                           holding=lambda: shared.sampling.holding)
    return shared, Services([Step("process table", stop=processes.close), shared, Task("asks", asks.run)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.agent", description=__doc__.split("\n")[0])
    parser.add_argument("--host-name", help="name to publish this host under (default: HOST_NAME or hostname)")
    args = parser.parse_args(argv)
    try:
        cfg = settings.load()
    except settings.SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stdout, level=cfg["LOG_LEVEL"].upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not cfg["REDIS_URL"]:
        print("error: REDIS_URL is not set; the agent publishes to the dashboard's Redis", file=sys.stderr)
        return 2
    host = args.host_name or cfg["HOST_NAME"] or socket.gethostname()
    _, services = build_agent(cfg, host)
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    services.start()
    stop.wait()
    services.stop()  # releases the lease: another process can take over at once
    log.info("stopped; released the lease for %s", host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
