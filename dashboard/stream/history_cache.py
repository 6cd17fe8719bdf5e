"""One encode per window per sample: the answers to /api/history, kept until the next sample.

Encoding an hour of chart columns costs milliseconds of the worker's one CPU;
a few clients polling it would take the worker from everyone (health checks
included). A view's answer for a window only changes when a sample arrives,
so each encoded answer is kept with the version it was built from (the time
the view's latest sample arrived) and served again, byte for byte, until that
changes. N callers cost one encode per sample and window. At most `size`
windows are kept per host (least recently used go first), so odd windows
cannot grow memory. Callers round a window to the step it is answered at
first (stream.windows.Windows.canonical), so windows that differ by less than a
step share one entry. `hits` and `builds` are shown in /metrics and /healthz.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable


class HistoryCache:
    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()
        self.builds = 0
        self.hits = 0

    def fresh(self, window: Hashable, version: Hashable) -> bool:
        """True when get() would answer from the cache (nothing is counted or moved)."""
        entry = self._entries.get(window)
        return entry is not None and entry[0] == version

    def get(self, window: Hashable, version: Hashable, build: Callable[[], bytes]) -> bytes:
        """The cached answer for window if built from this version, else build it now."""
        entry = self._entries.get(window)
        if entry is not None and entry[0] == version:
            self._entries.move_to_end(window)
            self.hits += 1
            return entry[1]
        body = build()
        self.builds += 1
        self._entries[window] = (version, body)
        self._entries.move_to_end(window)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return body

    def __len__(self) -> int:
        return len(self._entries)
