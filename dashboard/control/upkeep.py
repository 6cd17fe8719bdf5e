"""The audit log's upkeep: settle records a dead process left pending, trim old ones."""

from __future__ import annotations

import logging
import time
from typing import Callable

import gevent

from ..store.audit import AuditStore

log = logging.getLogger("dashboard.control")

# A record pending this long belongs to a process that died (commands take milliseconds).
PENDING_GRACE_SECONDS = 60.0


def audit_upkeep(audit: AuditStore, retention_days: float, *, alone: bool,
                 started_at: Callable[[], float]) -> None:
    """Forever, from the start: settle records a dead process left pending, and trim
    records older than retention_days; hourly (a minute after a failure)."""
    first = True
    while True:
        now = time.time()
        # A store this process alone writes: every record left pending from before
        # it started is a dead one's. Later, and when other processes share the store
        # (they run commands right now), only those pending for more than a minute.
        older_than = started_at() if first and alone else now - PENDING_GRACE_SECONDS
        try:
            settled = audit.settle_interrupted(now, older_than)
            trimmed = audit.trim(now - retention_days * 86400)
        except Exception as exc:  # Redis away, disk full: try again soon
            log.warning("audit upkeep failed (%s); retrying in a minute", exc)
            gevent.sleep(60)
            continue
        if settled or trimmed or first:
            log.info("audit upkeep: %d pending records settled as interrupted, %d records older "
                     "than %g days deleted", settled, trimmed, retention_days)
        first = False
        gevent.sleep(3600)
