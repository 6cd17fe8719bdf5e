"""The lasting history of one process: its store of roll-ups (SQLite or Redis, handed
in), the roll-ups of this host's samples, and the chart windows over both."""

from __future__ import annotations

import logging

from ..sampling.rollup import Rollups
from ..store.history_store import HistoryStore, StoreBroken
from ..store.tiers import Point, Tier
from ..stream.windows import Windows

log = logging.getLogger("dashboard.control")


def open_history(directory: str, tiers: tuple[Tier, ...], names: tuple[str, ...],
                 history_seconds: float, resume_seconds: float) -> tuple[HistoryStore | None, str | None]:
    """The embedded store under DATA_DIR, or (None, why) when its file is unusable: whole events
    for resume_seconds, the charts' rows for history_seconds."""
    try:
        return HistoryStore(directory, tiers, names, min(resume_seconds, history_seconds),
                            minutes_seconds=history_seconds), None
    except StoreBroken as exc:
        log.error("history store unavailable, serving live data without lasting history: %s", exc)
        return None, str(exc)


class Lasting:
    name = "lasting history"

    def __init__(self, store, tiers: tuple[Tier, ...], host: str, history_seconds: float,
                 error: str | None = None) -> None:
        self.store = store  # store.tiers' interface (HistoryStore or RedisTiers), or None: off
        self.error = error
        self.host = host
        self.rollups = None
        if store is not None:
            self.rollups = Rollups(tiers, lambda tier, point: store.add_point(tier, host, point),
                                   load=lambda tier: store.last_point(tier, host))
        self.windows = Windows(history_seconds, tiers, store, current=self._open_point)

    def _open_point(self, host: str, tier: Tier) -> Point | None:
        if self.rollups is None or host != self.host:
            return None
        return self.rollups.current(tier)

    def add(self, sample: dict) -> None:
        if self.rollups is not None:
            self.rollups.add(sample)

    def health(self) -> dict:
        if self.store is None:
            if self.error:
                return {"state": "unavailable", "error": self.error}
            return {"state": "off"}
        return self.store.health()

    def start(self) -> None:
        if self.store is not None:
            self.store.start()

    def stop(self) -> None:
        # Written while the streams still hold the worker open: once they close,
        # gunicorn may end the process at any moment.
        if self.rollups is not None:
            self.rollups.close()
        if self.store is not None:
            self.store.close()
