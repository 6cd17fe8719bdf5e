"""Sample this host and publish it to a dashboard's Redis; nothing else.

    REDIS_URL=redis://... python -m dashboard.agent [--host-name NAME]

Run it on every machine the dashboard should show. It competes for the same
per-host lease as the web processes (so a host is sampled once even if a web
dyno runs there too), follows the shared interval, pause and alert rules, and
reconnects with backoff when Redis goes away. SIGTERM or Ctrl-C stops it and
releases its lease.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402

from . import settings  # noqa: E402
from .alerts.delivery import Notifier  # noqa: E402
from .alerts.rules import Alerts  # noqa: E402
from .sampling.cgroups import Container, discover  # noqa: E402
from .sampling.collectors import SYSTEM_COLLECTORS, Collector  # noqa: E402
from .sampling.containers import Containers  # noqa: E402
from .stream.wire import encode as encode_metrics  # noqa: E402
from .store.notify_store import RedisNotifyStore  # noqa: E402
from .fleet.sharing import ERRORS, HostSampling, publish_everywhere  # noqa: E402
from .sampling.processes import ProcessTable  # noqa: E402
from .store.redis_store import RedisStore, redacted  # noqa: E402
from .sampling.sampler import Sampler  # noqa: E402

log = logging.getLogger("dashboard.agent")


def build(cfg: dict, host: str) -> tuple[RedisStore, HostSampling]:
    store = RedisStore(cfg["REDIS_URL"], cfg["REDIS_PREFIX"], history_seconds=cfg["HISTORY_SECONDS"],
                       tls_verify=cfg["REDIS_TLS_VERIFY"])
    table = ProcessTable(cfg["TOP_PROCESSES"])
    container = Container(discover())
    collectors = SYSTEM_COLLECTORS + (
        Collector("processes", ProcessTable.help, table),
        Collector("container", Container.help, container),
        Collector("containers", Containers.help,
                  Containers(cfg["CONTAINERS"], cfg["CONTAINER_SOCKET"], cfg["CONTAINERS_SHOWN"])),
    )
    holder: dict = {}
    # The agent records its host's transitions in the shared outbox; web processes deliver them.
    notifier = Notifier(RedisNotifyStore(store), env_urls=cfg["NOTIFY_URLS"],
                        group_seconds=cfg["NOTIFY_GROUP_SECONDS"], public_url=cfg["PUBLIC_URL"])

    def on_sample(sample: dict) -> None:
        try:
            holder["sampling"].publish(sample, encode_metrics(sample))
        except ERRORS as exc:
            log.warning("could not publish a sample: %s", exc)

    sampler = Sampler(collectors, on_sample, interval=cfg["SAMPLE_INTERVAL"], host=host)
    sampling = HostSampling(
        store, host, sampler, Alerts(), lease_seconds=cfg["SAMPLER_LEASE_SECONDS"], role="agent",
        table_rows=lambda: table.rows(table.latest),
        publish_event=lambda event: publish_everywhere(store, event, set(store.hosts()) | {host}),
        on_transition=notifier.record,
    )
    holder["sampling"] = sampling
    return store, sampling


def run(store: RedisStore, sampling: HostSampling, stop: gevent.event.Event) -> None:
    control = store.key("control")
    delay = 1.0
    while not stop.is_set():
        pubsub = None
        try:
            store.ping()
            sampling.sync()
            pubsub = store.pubsub()
            log.info("publishing %s to Redis at %s", sampling.host, redacted(store.url))
            delay = 1.0
            while not stop.is_set():
                sampling.step()
                deadline = time.monotonic() + sampling.lease_seconds / 5
                while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                    msg = pubsub.get_message(timeout=min(left, 0.5))
                    if msg is not None and msg["channel"] == control:
                        sampling.sync()
        except ERRORS as exc:
            sampling.holding = False
            sampling.sampler.stop()
            log.error("Redis at %s is unreachable (%s); retrying in about %.0f s",
                      redacted(store.url), exc, delay)
            stop.wait(delay * (0.5 + random.random()))
            delay = min(30.0, delay * 2)
        finally:
            if pubsub is not None:
                try:
                    pubsub.close()
                except Exception:
                    pass
    sampling.release()


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
    store, sampling = build(cfg, host)
    stop = gevent.event.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    run(store, sampling, stop)
    log.info("stopped; released the lease for %s", host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
