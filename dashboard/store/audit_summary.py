"""Failed and repeated audit events, counted: one summarising record per window.

Commands that change something keep one record each (written `pending`
before they run). Everything else the console is asked (read-only commands,
and any command refused before it ran: unknown, bad arguments, forbidden...)
is keyed by (operator, role, address, command, outcome). The first of a key
in each window (AUDIT_SUMMARY_SECONDS) is written at once as its own record,
so `audit` always shows who asked what; the rest of that window are only
counted, and when the window ends one more record says how many there were
and between which times (`detail`). A hundred observers polling `status` cost
two records per observer and window instead of one per request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import gevent

from ..periodic import Every
from .audit import AuditStore, Record, StoreUnavailable

log = logging.getLogger("dashboard.audit")

MAX_KEYS = 10_000  # past this many keys in one window, the window ends early


@dataclass
class _Tally:
    last: Record
    first_ts: float
    count: int = 0  # beyond the record written at once


class AuditSummary:
    def __init__(self, audit: AuditStore, window: float,
                 sleep: Callable[[float], object] = gevent.sleep) -> None:
        self.audit = audit
        self.window = window
        self.sleep = sleep  # how a window passes (a test ends windows itself)
        self.folded = 0  # requests counted into a summary instead of a record of their own
        self._open: dict[tuple, _Tally] = {}

    def record(self, record: Record) -> Record:
        """Write or count one record; StoreUnavailable when a record due now cannot be written."""
        key = (record.operator, record.role, record.addr, record.action, record.outcome)
        tally = self._open.get(key)
        if tally is not None:
            tally.count += 1
            tally.last = record
            self.folded += 1
            return record
        if len(self._open) >= MAX_KEYS:
            self.flush()
        self.audit.append(record)
        self._open[key] = _Tally(last=record, first_ts=record.ts)
        return record

    def flush(self) -> int:
        """End the window: one summarising record per key that repeated. Returns how many."""
        tallies, self._open = self._open, {}
        written = 0
        for key, tally in tallies.items():
            if not tally.count:
                continue
            last = tally.last
            summary = Record(
                last.operator, last.role, last.session, last.addr, last.action, last.line, last.outcome,
                detail=(f"repeated {tally.count} more times from "
                        f"{_iso(tally.first_ts)} to {_iso(last.ts)}"),
                ts=last.ts)
            try:
                self.audit.append(summary)
                written += 1
            except StoreUnavailable:
                # Counted again in the next window rather than lost.
                self._open.setdefault(key, tally)
        return written

    def run(self) -> None:
        """Forever: end a window every `window` seconds (a failure is logged; the loop goes on)."""
        Every(self.window, self.flush, name="audit summary", sleep=self.sleep, logger=log).run()


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
