"""A process's background parts, started in order and stopped in reverse order.

Each part is a `Service` (start and stop); `Services` runs them. A stop that fails
is logged and the next one still runs: a process going away must close its stores
and streams whatever one part did.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterable, Protocol

import gevent

log = logging.getLogger("dashboard.services")


class Service(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Step:
    """A service made of two calls (either may be nothing)."""

    def __init__(self, name: str, start: Callable[[], object] | None = None,
                 stop: Callable[[], object] | None = None) -> None:
        self.name = name
        self._start, self._stop = start, stop

    def start(self) -> None:
        if self._start is not None:
            self._start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


class Task:
    """A loop that runs in its own greenlet from start() until stop()."""

    def __init__(self, name: str, run: Callable[[], object]) -> None:
        self.name = name
        self.run = run
        self.greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.greenlet = gevent.spawn(self.run)

    def stop(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=False)


class Services:
    def __init__(self, services: Iterable[Service] = ()) -> None:
        self.services: list[Service] = list(services)
        self.started_at = time.time()
        self.stopping = False

    def names(self) -> list[str]:
        return [s.name for s in self.services]

    def uptime(self) -> float:
        return time.time() - self.started_at

    def start(self) -> None:
        """Start every part, in order (again in a forked child: nothing of the parent's runs there)."""
        self.started_at = time.time()
        for service in self.services:
            service.start()

    def stop(self) -> bool:
        """Stop every part, last started first; False when already stopping."""
        if self.stopping:
            return False
        self.stopping = True
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as exc:
                log.warning("could not stop %s cleanly: %s", service.name, exc)
        return True
