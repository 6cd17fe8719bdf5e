"""The audit log's upkeep: settle records a dead process left pending, trim old ones."""

from __future__ import annotations

import logging
import time
from typing import Callable

from ..periodic import Every
from ..store.audit import AuditStore

log = logging.getLogger("dashboard.control")

# A record pending this long belongs to a process that died (commands take milliseconds).
PENDING_GRACE_SECONDS = 60.0


def audit_upkeep(audit: AuditStore, retention_days: float, *, alone: bool,
                 started_at: Callable[[], float], sleep: Callable[[float], object] | None = None) -> None:
    """Forever, from the start (in the calling greenlet): settle records a dead process left
    pending, and trim records older than retention_days; hourly (a minute after a failure)."""
    first = [True]

    def once() -> None:
        now = time.time()
        # A store this process alone writes: every record left pending from before
        # it started is a dead one's. Later, and when other processes share the store
        # (they run commands right now), only those pending for more than a minute.
        older_than = started_at() if first[0] and alone else now - PENDING_GRACE_SECONDS
        settled = audit.settle_interrupted(now, older_than)
        trimmed = audit.trim(now - retention_days * 86400)
        if settled or trimmed or first[0]:
            log.info("audit upkeep: %d pending records settled as interrupted, %d records older "
                     "than %g days deleted", settled, trimmed, retention_days)
        first[0] = False

    # Redis away, a full disk: one warning, and again in a minute.
    Every(3600, once, name="audit upkeep", retry=60, at_once=True, sleep=sleep, logger=log,
          expected=(Exception,)).run()
