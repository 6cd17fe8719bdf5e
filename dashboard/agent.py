"""Sample this host and publish it to a dashboard's Redis; nothing else.

    REDIS_URL=redis://... python -m dashboard.agent [--host-name NAME]

Run it on every machine the dashboard should show. It competes for the same
per-host lease as the web processes (so a host is sampled once even if a web
dyno runs there too), follows the shared interval, pause and alert rules, and
reconnects with backoff when Redis goes away. SIGTERM or Ctrl-C stops it and
releases its lease.

It is made to cost a host less memory than node_exporter: one thread runs one
loop (`Agent.run`): the lease, the shared settings (a subscription to their
channel is what the loop waits on), the samples on their cadence and the asks
of other hosts (`container restart --host`). Redis is spoken through
store/redis_lean.py, not redis-py; gevent, Flask, Apprise and the egress policy
are never loaded (the web processes deliver the alerts it records). The
container engine's rounds, rare, run on a thread of their own.
"""

from __future__ import annotations

import getopt
import logging
import random
import signal
import socket
import sys
import threading
import time

from . import settings
from .alerts.recording import Recorder
from .alerts.rules import Alerts
from .control import build
from .control.shared import Transitions
from .fleet.lease import HostSampling, publish_everywhere
from .sampling.sampler import Sampler
from .store.fleet_store import FleetStore
from .store.notify_redis import RedisNotifyStore
from .store.redis_store import RedisStore
from .store.redis_trouble import REFUSALS, redacted, refuses_writes, trouble_words

log = logging.getLogger("dashboard.agent")

WAKE_SECONDS = 0.5  # the longest the loop waits: how soon a stop is seen


class DrivenSampler(Sampler):
    """The sampler with no loop of its own: started means the agent's loop ticks it when due."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, flag=threading.Event, **kwargs)
        self._on = False

    @property
    def running(self) -> bool:
        return self._on

    def start(self) -> None:
        self._on = True

    def stop(self, timeout: float = 5.0) -> None:
        self._on = False  # one thread: no tick is under way when this runs


class _Round(threading.Thread):
    """An engine round on a thread of its own, with the greenlet's `dead` the containers collector asks."""

    @property
    def dead(self) -> bool:
        return not self.is_alive()


def _on_thread(fn) -> _Round:
    thread = _Round(target=fn, name="engine", daemon=True)
    thread.start()
    return thread


class Agent:
    """This host under its lease, published to Redis (see the module's doc)."""

    def __init__(self, cfg: dict, host: str, store: RedisStore | None = None) -> None:
        self.store = store = store or build.redis_store(cfg, lean=True)
        self.host = host
        self.trouble: BaseException | None = None  # a failed publish, raised in the loop to reconnect
        self.sampler, self.processes, containers = build.host_sampler(
            cfg, host, self._publish, sampler=DrivenSampler, spawn=_on_thread)
        fleet_store = FleetStore(store)
        # The agent records its host's transitions in the shared outbox, for the channels the delivering
        # web process announces (its NOTIFY_URLS, by name) and those added from a console; it delivers
        # nothing, so it needs no notification URL, nor their secrets.
        notify_store = RedisNotifyStore(store)
        recorder = Recorder(notify_store, notify_store.announced_env)
        self.sampling = HostSampling(
            store, host, self.sampler, Alerts(), lease_seconds=cfg["SAMPLER_LEASE_SECONDS"], role="agent",
            table_rows=lambda: self.processes.rows(self.processes.latest),
            publish_event=lambda event: publish_everywhere(fleet_store, event),
            on_transition=Transitions(recorder.record, store.errors))
        # `container restart --host` from a console reaches this host's engine only if this agent allows it.
        self.asks = build.host_asks(store, host, containers, cfg["ALLOW_PROCESS_CONTROL"],
                                    holding=lambda: self.sampling.holding)
        self.step_seconds = self.sampling.lease_seconds / 5
        self.stopping = threading.Event()

    def _publish(self, sample: dict) -> None:
        try:
            self.sampling.publish(sample, build.encode_metrics(sample))
            REFUSALS.cleared("the agent")
        except self.store.errors as exc:  # Redis went away between two samples, or refuses writes
            self.trouble = exc

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Until stop(): connect, serve, and on any Redis failure wait (backoff) and connect again."""
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self._connect()
                delay = 1.0
                self._serve()
            except self.store.errors as exc:
                self._lost(exc, delay)
                self.stopping.wait(delay * (0.5 + random.random()))
                delay = min(30.0, delay * 2)
        self.sampling.release()  # another process can take over at once
        self.processes.close()
        log.info("stopped; released the lease for %s", self.host)

    def stop(self) -> None:
        self.stopping.set()

    def _connect(self) -> None:
        self.store.ping()
        self.sampling.sync()
        self.sampler.stop()  # from now on only the lease holder samples
        self.sampling.step()
        self.asks.last = "$"  # asks made while away are stale by now
        log.info("publishing %s to Redis at %s", self.host, redacted(self.store.url))

    def _serve(self) -> None:
        control = self.store.key("control")
        pubsub = self.store.reader.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(control)
            next_step = time.monotonic() + self.step_seconds
            while not self.stopping.is_set():
                now = time.monotonic()
                due = self.sampler.due_in(now) if self.sampler.running else None
                wait = min(next_step - now, WAKE_SECONDS, due if due is not None else WAKE_SECONDS)
                msg = pubsub.get_message(timeout=max(0.0, wait))
                if msg is not None:
                    if msg["channel"] == control:  # the interval, the pause or the rules changed
                        self.sampling.sync()
                    continue
                now = time.monotonic()
                if now >= next_step:
                    self.sampling.step()
                    self.asks.poll()
                    next_step = now + self.step_seconds
                if self.sampler.running and self.sampler.due_in(now) == 0:
                    self.sampler.tick_on_cadence(now)
                    if self.trouble is not None:
                        exc, self.trouble = self.trouble, None
                        raise exc
        finally:
            pubsub.close()

    def _lost(self, exc: BaseException, delay: float) -> None:
        self.sampling.holding = False
        self.sampler.stop()
        level = logging.ERROR
        if refuses_writes(exc):  # said once while it lasts
            REFUSALS.met(exc, "the agent")
            level = logging.DEBUG
        log.log(level, "Redis at %s %s (%s: %s); retrying in about %.0f s", redacted(self.store.url),
                trouble_words(exc), type(exc).__name__, exc, delay)


USAGE = "usage: python -m dashboard.agent [--host-name NAME]"


def main(argv: list[str] | None = None) -> int:
    # getopt, not argparse: argparse loads shutil, and with it bz2 and lzma (1.2 MB), for one option.
    try:
        opts, rest = getopt.getopt(sys.argv[1:] if argv is None else argv, "h", ["host-name=", "help"])
    except getopt.GetoptError as exc:
        print(f"error: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    given = dict(opts)
    if rest:
        print(f"error: unexpected argument {rest[0]!r}\n{USAGE}", file=sys.stderr)
        return 2
    if "-h" in given or "--help" in given:
        print(f"{USAGE}\n\n{__doc__.split(chr(10))[0]}\n\n  --host-name NAME  the name to publish this host "
              "under (default: HOST_NAME, or the hostname)")
        return 0
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
    agent = Agent(cfg, given.get("--host-name") or cfg["HOST_NAME"] or socket.gethostname())
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: agent.stop())
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
