"""A slow drain: connections ended one by one at random moments spread over a window.

Ending every stream at once on SIGTERM sends every viewer back together: a
reconnect storm on whatever serves next. Instead each connection gets its own
moment: the window is cut into as many equal slots as there are connections,
each connection takes one slot (in random order) and a random moment inside
it. So by any time t no more than t/window of them (plus one) have ended, and
all have ended before the window is over (Mercure closes its subscribers
at uniformly random moments of its drain window for the same reason).

`cut()` ends what is left at once (a second, impatient signal). The clock and
the waiting are given, so a test can drive them.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Iterable, TypeVar

from gevent.event import Event as _Flag

T = TypeVar("T")


def moments(count: int, window: float, rng: Callable[[], float] = random.random) -> list[float]:
    """count offsets in [0, window), the k-th smallest in [k, k+1) * window / count."""
    if count <= 0:
        return []
    slot = window / count
    return [(k + rng()) * slot for k in range(count)]


class Drain:
    def __init__(self, window: float, *, rng: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[_Flag, float], object] | None = None) -> None:
        self.window = window
        self.rng = rng
        self.clock = clock
        self._cut = _Flag()
        self._wait = wait or (lambda flag, seconds: flag.wait(seconds))
        self.ended = 0
        self.started_at: float | None = None

    def run(self, items: Iterable[T], end: Callable[[T], object]) -> int:
        """End each item at its moment (returns early, ending the rest, once cut); how many were ended."""
        items = list(items)
        _shuffle(items, self.rng)
        self.started_at = start = self.clock()
        for at, item in zip(moments(len(items), self.window, self.rng), items):
            left = start + at - self.clock()
            if left > 0 and not self._cut.is_set():
                self._wait(self._cut, left)
            end(item)
            self.ended += 1
        return self.ended

    def cut(self) -> None:
        """End whatever is left now."""
        self._cut.set()

    @property
    def was_cut(self) -> bool:
        return self._cut.is_set()


def _shuffle(items: list, rng: Callable[[], float]) -> None:
    """Fisher-Yates with the given random source (a test may seed it)."""
    for i in range(len(items) - 1, 0, -1):
        j = int(rng() * (i + 1))
        items[i], items[j] = items[j], items[i]
