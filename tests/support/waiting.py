"""Waiting for something to become true: one deadline loop for the whole suite.

Tests wait on what the server counts (subscribers, seq, a receiver's hits),
never on a fixed sleep, and give up after a deadline generous enough for a
busy machine: a failure then names what did not happen and what was seen last.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, *,
               what: str = "", ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """The first truthy value of check(), called every `interval` s; AssertionError after `timeout` s.

    Exceptions of the `ignoring` types count as "not yet" (a server still
    starting refuses connections); the last one seen is named on failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except ignoring as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or getattr(check, '__name__', 'check')}"
                                 f" (last seen: {last!r:.300})")
        time.sleep(interval)
