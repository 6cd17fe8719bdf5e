"""The one sampler of a process: runs the collectors once per tick.

Everything a viewer sees comes from here; nothing per viewer or per request
calls psutil. Runs in a greenlet started after the worker forks (gevent is
imported then: the agent drives `due_in` and `tick_on_cadence` from its own
loop and never loads it). The interval can change and sampling can pause while
it runs; both take effect at once.
A collector that fails is logged once (and once more when it recovers) and
reported under `missing`; it never stops the loop.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Sequence

from .collectors import Collector, Unavailable
from .rates import Rates

log = logging.getLogger(__name__)

MIN_INTERVAL = 0.25
MAX_INTERVAL = 60.0


def check_interval(seconds: float) -> float:
    """The interval as a float, or ValueError with a message fit for an operator."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise ValueError(f"interval must be a number of seconds, not {seconds!r}") from None
    if not MIN_INTERVAL <= value <= MAX_INTERVAL:  # also rejects NaN
        raise ValueError(
            f"interval must be between {MIN_INTERVAL:g} and {MAX_INTERVAL:g} seconds, not {value:g}"
        )
    return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Unavailable):
        return str(exc)
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"{type(exc).__name__}: {exc}"


class Sampler:
    def __init__(
        self,
        collectors: Sequence[Collector],
        on_sample: Callable[[dict], None],
        *,
        interval: float = 1.0,
        host: str = "",
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[Any, float | None], object] | None = None,
        flag: Callable[[], Any] | None = None,
    ) -> None:
        self.collectors = tuple(collectors)
        self.on_sample = on_sample
        self.host = host
        self.rates = Rates()
        self._interval = check_interval(interval)
        self._paused = False
        self._seq = 0
        self._wake = (flag or _greenlet_flag)()  # set when the interval or the pause changes
        # The cadence's time, and how the loop waits for it (until the flag is
        # set or that many seconds of it passed): a test drives both.
        self.clock = clock
        self._wait = wait or (lambda flag, seconds: flag.wait(seconds))
        self._greenlet = None
        self._stopping = False
        self._last_start: float | None = None
        self.last_sample_at: float | None = None  # monotonic, when the last sample finished
        self.last_duration: float | None = None  # seconds the last sample took
        self.missing: dict[str, str] = {}

    # ---- control (driven by the operator console) --------------------------

    @property
    def interval(self) -> float:
        return self._interval

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def seq(self) -> int:
        return self._seq

    def set_interval(self, seconds: float) -> float:
        self._interval = check_interval(seconds)
        self._wake.set()
        return self._interval

    def pause(self) -> bool:
        """Stop sampling; True if it was running."""
        changed = not self._paused
        self._paused = True
        self._wake.set()
        return changed

    def resume(self) -> bool:
        """Sample again; True if it was paused."""
        changed = self._paused
        self._paused = False
        self._wake.set()
        return changed

    def continue_from(self, seq: int) -> None:
        """Number the next sample seq+1 (when taking over from another sampler)."""
        self._seq = max(self._seq, seq)

    # ---- sampling -----------------------------------------------------------

    def sample(self) -> dict:
        """Run every collector once and return the sample."""
        rates = self.rates
        rates.begin(time.monotonic())
        values: dict = {}
        missing: dict[str, str] = {}
        for collector in self.collectors:
            try:
                values[collector.name] = collector.collect(rates)
            except Exception as exc:  # one collector never stops the others
                values[collector.name] = None
                missing[collector.name] = _reason(exc)
        rates.end()
        self._report(missing)
        self._seq += 1
        return {
            "ts": time.time(),
            "seq": self._seq,
            "host": self.host,
            "interval": self._interval,
            **values,
            "missing": missing,
        }

    def _report(self, missing: dict[str, str]) -> None:
        for name, why in missing.items():
            if self.missing.get(name) != why:
                level = logging.INFO if why.startswith(("no ", "not ")) else logging.WARNING
                log.log(level, "collector %s unavailable: %s", name, why)
        for name in self.missing.keys() - missing.keys():
            log.info("collector %s is back", name)
        self.missing = missing

    # ---- the loop -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        if not self.running:
            import gevent

            self._stopping = False
            self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop; returns when no sample is being taken or published any more.

        A tick under way finishes first (its sample reaches the viewers and the
        store together); none starts after. Killing the loop instead could land
        after the store was detached: a sample shown and never kept, whose seq
        the next process would number again."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is None:
            return
        import gevent

        self._stopping = True
        self._wake.set()
        if greenlet is gevent.getcurrent():
            return
        greenlet.join(timeout)
        if not greenlet.dead:  # a collector stuck for that long: give it up
            greenlet.kill(block=True, timeout=1)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = self.clock()
            wait = self.due_in(now)
            if wait is None or wait > 0:
                self._wait(self._wake, wait)
                continue
            self.tick_on_cadence(now)

    def due_in(self, now: float) -> float | None:
        """Seconds until the next tick is due (0: now); None while paused."""
        if self._paused:
            return None
        due = now if self._last_start is None else self._last_start + self._interval
        return max(0.0, due - now)

    def tick_on_cadence(self, now: float) -> None:
        """Take the tick that is due. Keep the cadence, but never burst to make up for missed ticks."""
        due = now if self._last_start is None else self._last_start + self._interval
        self._last_start = due if now - due < self._interval else now
        self.tick()

    def tick(self) -> None:
        start = time.monotonic()
        try:
            sample = self.sample()
        except Exception:
            log.exception("sampling failed")
            return
        self.last_sample_at = time.monotonic()
        self.last_duration = self.last_sample_at - start
        try:
            self.on_sample(sample)
        except Exception:
            log.exception("publishing a sample failed")


def _greenlet_flag():
    from gevent.event import Event

    return Event()
