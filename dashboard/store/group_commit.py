"""Group commit: writes queued by many callers go to the store together, one batch per transaction.

Two ways in, one writer:

- `add(op)`: write-behind. The op is queued and the call returns at once;
  the background writer (`start`) writes the queue every `period` seconds,
  or at once after `wake()`. A batch that fails stays queued (up to
  `max_pending`, oldest dropped first and counted) and is tried again at the
  next flush; the failure is logged once, and once more when writes succeed
  again. Nothing that queues ever waits for the disk or the network.
- `commit(op)`: the caller waits until its op is written and gets what the
  store said of it (a row id, say), or the store's error. The first waiter
  writes for everyone queued behind it: it yields once first, so others that
  are ready queue theirs, and under load the cost of a transaction is paid
  once for many callers. A failed op that someone waits for is never retried:
  its caller is told.

The store gives `write(ops, final)`, which writes a list of ops in one
transaction and returns one value per op (or None), raising one of `errors`
when it cannot. A flush splits its batch into transactions of `max_batch`
ops and yields between them (sqlite3 calls do not yield to gevent); `final`
is True for its last one, where upkeep such as trimming belongs (a flush
with nothing queued still calls `write([], True)` when `upkeep_due()` says
so). `close()` stops the writer and writes what is left.
"""

from __future__ import annotations

import logging
from typing import Callable

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore

from ..periodic import Every

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, write: Callable[[list, bool], list | None], *, errors: tuple, name: str,
                 period: float = 1.0, max_pending: int | None = None, max_batch: int | None = None,
                 failing: Callable[[BaseException, int], str] | None = None,
                 recovered: Callable[[int], str] | None = None, logger: logging.Logger | None = None,
                 upkeep_due: Callable[[], bool] | None = None,
                 announced: Callable[[BaseException], bool] | None = None,
                 describe: Callable[[BaseException], str] = str) -> None:
        self.write = write
        self.upkeep_due = upkeep_due  # True when a flush must write even with nothing queued
        self.errors = errors
        self.name = name
        self.period = period
        self.max_pending = max_pending
        self.max_batch = max_batch
        # What the log says when writes fail (error, ops kept) and when they work again (ops written).
        self.failing = failing or (lambda exc, kept: f"{name} cannot write ({exc}); "
                                                     f"{kept} kept queued, retrying every {period:g}s")
        self.recovered = recovered or (lambda n: f"{name} writes again ({n} caught up)")
        # True when a failure was said elsewhere, once for the process (a Redis refusing writes):
        # this writer's own lines about it go to debug.
        self.announced = announced or (lambda exc: False)
        self._quiet = False
        self.describe = describe  # an error as /healthz and the log show it
        self.log = logger or log
        self.error: str | None = None  # why queued ops are waiting for a retry, while they are
        self.written = 0
        self.dropped = 0
        self._queue: list[tuple[object, AsyncResult | None]] = []
        self._waiters = 0  # queued ops someone waits for
        self._leading = False
        self._lock = Semaphore()
        self._loop = Every(period, self.flush, name=f"{name} writer", logger=self.log)

    @property
    def pending(self) -> int:
        return len(self._queue)

    # ---- queueing ---------------------------------------------------------------

    def add(self, op) -> None:
        """Queue op for the next flush (never blocks)."""
        self._queue.append((op, None))
        self._cap()

    def _cap(self) -> None:
        if self.max_pending is not None and len(self._queue) > self.max_pending:
            drop = len(self._queue) - self.max_pending
            del self._queue[:drop]  # only write-behind ops grow the queue this far
            self.dropped += drop

    def commit(self, op):
        """Write op (with whatever else is queued) and return the store's value for it."""
        result = AsyncResult()
        self._queue.append((op, result))
        self._waiters += 1
        if not self._leading:
            self._leading = True
            try:
                gevent.sleep(0)
                while self._waiters:
                    self.flush()
            finally:
                self._leading = False
        return result.get()

    # ---- writing ---------------------------------------------------------------------

    def flush(self) -> bool:
        """Write what is queued now (with nothing queued, only the store's upkeep, if due).
        True when nothing is left queued."""
        with self._lock:
            if not self._queue and not (self.upkeep_due is not None and self.upkeep_due()):
                return True
            batch, self._queue = self._queue, []
            self._waiters -= sum(1 for _, result in batch if result is not None)
            step = self.max_batch or max(1, len(batch))
            done = 0
            try:
                while True:
                    chunk = batch[done:done + step]
                    final = done + step >= len(batch)
                    values = self.write([op for op, _ in chunk], final)
                    for i, (_, result) in enumerate(chunk):
                        if result is not None:
                            result.set(values[i] if values is not None else None)
                    done += len(chunk)
                    if final:
                        break
                    gevent.sleep(0)  # let the loop serve between transactions
            except self.errors as exc:
                self._failed(batch[done:], exc)
                self.written += done
                return False
            except BaseException as exc:
                # A bug, or the greenlet killed: no waiter hangs, and what nobody
                # waits for is dropped (counted) rather than retried forever.
                rest = batch[done:]
                for _, result in rest:
                    if result is not None:
                        result.set_exception(exc)
                self.dropped += sum(1 for _, result in rest if result is None)
                self.written += done
                raise
            if self.error is not None:
                self.log.log(logging.DEBUG if self._quiet else logging.WARNING, self.recovered(len(batch)))
                self.error = None
            self.written += len(batch)
            return not self._queue

    def _failed(self, rest: list, exc: BaseException) -> None:
        kept = [(op, result) for op, result in rest if result is None]
        for _, result in rest:
            if result is not None:
                result.set_exception(exc)
        self._queue[:0] = kept
        self._cap()
        if kept or not rest:  # write-behind ops (or the upkeep alone) are retried: say so once
            if self.error is None:
                self._quiet = self.announced(exc)
                self.log.log(logging.DEBUG if self._quiet else logging.ERROR, self.failing(exc, len(self._queue)))
            self.error = self.describe(exc)

    # ---- the background writer -----------------------------------------------------------

    def start(self) -> None:
        self._loop.start()

    def wake(self) -> None:
        """Flush now rather than at the end of the period (a change that must last soon)."""
        self._loop.wake()

    def close(self) -> bool:
        """Stop the writer (never mid-batch: the last flush waits for the lock) and write what is left."""
        self._loop.stop(5)
        return self.flush()
