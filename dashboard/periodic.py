"""Background loops: call a function every N seconds; an error is logged and the loop goes on.

Each loop is one greenlet. `every(seconds, fn, ...)` waits `seconds`, calls
fn, and again, until stopped; an exception from fn is logged with the loop's
name and the next call comes after `retry` seconds instead (the same period
unless told; an error of the `expected` types, such as a store that is away, is
one warning line without its traceback). `wake()` makes the next call come now, `stop()` ends the loop
after the call in progress. `run()` is the loop itself, for a caller that
spawns and kills its own greenlet.

Tests pass `sleep` (any callable taking seconds) to drive a loop without
waiting; a loop given its own sleep cannot be woken early.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
from gevent.event import Event as _Flag

log = logging.getLogger(__name__)


class Every:
    """One background loop (see the module's doc)."""

    def __init__(self, seconds: float, fn: Callable, *args, name: str, retry: float | None = None,
                 at_once: bool = False, sleep: Callable[[float], object] | None = None,
                 logger: logging.Logger | None = None, expected: tuple[type[BaseException], ...] = ()) -> None:
        self.seconds = seconds
        self.retry = seconds if retry is None else retry
        self.name = name
        self.at_once = at_once  # first call at once, then every `seconds`
        self.fn, self.args = fn, args
        self.log = logger or log
        self.expected = expected
        self.calls = 0
        self.failures = 0
        self._flag = _Flag()
        self._sleep = sleep or self._wait
        self._stopping = False
        self._greenlet: gevent.Greenlet | None = None

    def _wait(self, seconds: float) -> None:
        self._flag.wait(seconds)
        self._flag.clear()

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> "Every":
        """Run the loop in a greenlet of its own (again, after a stop)."""
        if not self.running:
            self._stopping = False
            self._greenlet = gevent.spawn(self.run)
        return self

    def run(self) -> None:
        """The loop, in the calling greenlet, until stop() (or the greenlet is killed)."""
        delay = 0.0 if self.at_once else self.seconds
        while not self._stopping:
            if delay:
                self._sleep(delay)
                if self._stopping:
                    break
            self.calls += 1
            try:
                self.fn(*self.args)
            except Exception as exc:
                self.failures += 1
                if isinstance(exc, self.expected):
                    self.log.warning("%s failed (%s); trying again in %gs", self.name, exc, self.retry)
                else:
                    self.log.exception("%s failed; trying again in %gs", self.name, self.retry)
                delay = self.retry
            else:
                delay = self.seconds

    def wake(self) -> None:
        """Make the next call come now (or right after the one in progress)."""
        self._flag.set()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop after the call in progress; wait up to `timeout` for that."""
        self._stopping = True
        self._flag.set()
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None and greenlet is not gevent.getcurrent():
            greenlet.join(timeout)


def every(seconds: float, fn: Callable, *args, **options) -> Every:
    """Start calling fn(*args) every `seconds` in a greenlet; returns the loop (to stop it)."""
    return Every(seconds, fn, *args, **options).start()
