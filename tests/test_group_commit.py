"""The one group-commit writer under the history store, the Redis tiers and the audit log."""

import logging

import gevent
import pytest

from dashboard.store.group_commit import GroupCommit
from tests.test_periodic import until


class Broken(Exception):
    pass


class Store:
    """Records each transaction; fails the next ones while `failing` says so."""

    def __init__(self):
        self.transactions: list[tuple[list, bool]] = []
        self.failing = 0  # how many of the next writes fail

    def write(self, ops, final):
        if self.failing:
            self.failing -= 1
            raise Broken("disk full")
        self.transactions.append((list(ops), final))
        return [f"id-{op}" for op in ops]

    def rows(self):
        return [op for ops, _ in self.transactions for op in ops]


def test_queued_ops_are_written_together_in_one_transaction():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t")
    for i in range(5):
        writes.add(i)
    assert store.transactions == [] and writes.pending == 5  # queueing writes nothing
    assert writes.flush() is True
    assert store.transactions == [([0, 1, 2, 3, 4], True)]
    assert writes.flush() is True and len(store.transactions) == 1  # nothing queued: no transaction
    assert writes.written == 5


def test_a_flush_is_split_into_transactions_of_max_batch_and_only_the_last_is_final():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", max_batch=2)
    for i in range(5):
        writes.add(i)
    writes.flush()
    assert store.transactions == [([0, 1], False), ([2, 3], False), ([4], True)]


def test_upkeep_due_makes_a_flush_with_nothing_queued_write():
    store = Store()
    due = [False]
    writes = GroupCommit(store.write, errors=(Broken,), name="t", upkeep_due=lambda: due[0])
    writes.flush()
    assert store.transactions == []
    due[0] = True
    writes.flush()
    assert store.transactions == [([], True)]


def test_a_failed_batch_stays_queued_is_logged_once_and_later_batches_go_on(caplog):
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="the store", logger=logging.getLogger("t.gc"))
    store.failing = 3
    with caplog.at_level(logging.WARNING, logger="t.gc"):
        for i in range(3):
            writes.add(i)
            assert writes.flush() is False
        assert writes.error == "disk full" and writes.pending == 3
        writes.add(3)
        assert writes.flush() is True
    assert store.rows() == [0, 1, 2, 3]  # in order, nothing lost, nothing twice
    assert writes.error is None and writes.written == 4
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "the store cannot write (disk full)" in m]) == 1
    assert messages[-1] == "the store writes again (4 caught up)"


def test_a_failure_midway_keeps_what_was_written_and_queues_the_rest():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", max_batch=2)
    for i in range(5):
        writes.add(i)

    calls = [0]
    real = store.write

    def second_fails(ops, final):
        calls[0] += 1
        if calls[0] == 2:
            raise Broken("gone")
        return real(ops, final)

    writes.write = second_fails
    assert writes.flush() is False
    assert store.rows() == [0, 1] and writes.pending == 3 and writes.written == 2
    writes.write = real
    assert writes.flush() is True
    assert store.rows() == [0, 1, 2, 3, 4]


def test_past_max_pending_the_oldest_queued_ops_are_dropped_and_counted():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", max_pending=3)
    store.failing = 1
    for i in range(2):
        writes.add(i)
    writes.flush()  # fails: 0, 1 stay queued
    for i in range(2, 5):
        writes.add(i)
    assert writes.pending == 3 and writes.dropped == 2
    writes.flush()
    assert store.rows() == [2, 3, 4]


def test_commit_waits_for_its_op_and_concurrent_commits_share_one_transaction():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t")
    callers = [gevent.spawn(writes.commit, i) for i in range(10)]
    gevent.joinall(callers, timeout=10)
    assert [g.value for g in callers] == [f"id-{i}" for i in range(10)]
    assert store.transactions == [(list(range(10)), True)]


def test_a_failed_commit_raises_in_its_caller_is_not_retried_and_later_commits_work(caplog):
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", logger=logging.getLogger("t.gc2"))
    store.failing = 1
    with caplog.at_level(logging.WARNING, logger="t.gc2"):
        first = [gevent.spawn(writes.commit, i) for i in range(3)]
        gevent.joinall(first, timeout=10)
    assert all(isinstance(g.exception, Broken) for g in first)
    assert writes.pending == 0 and writes.error is None  # told, not kept
    assert caplog.records == []  # the callers say it (the audit log refuses the command)
    assert writes.commit(7) == "id-7"
    assert store.rows() == [7]


def test_close_stops_the_writer_and_writes_what_is_left():
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", period=3600)
    writes.start()
    writes.add("a")
    writes.wake()  # at once, not in an hour
    until(lambda: store.rows() == ["a"])
    writes.add("b")
    writes.close()
    assert store.rows() == ["a", "b"]


def test_the_background_writer_goes_on_after_an_unexpected_error(caplog):
    store = Store()
    writes = GroupCommit(store.write, errors=(Broken,), name="t", period=3600)
    bad = [True]
    real = store.write

    def write(ops, final):
        if bad[0]:
            bad[0] = False
            raise ValueError("a bug")
        return real(ops, final)

    writes.write = write
    writes.start()
    with caplog.at_level(logging.ERROR, logger="dashboard.store.group_commit"):
        writes.add("a")
        writes.wake()
        until(lambda: any("t writer failed" in r.getMessage() for r in caplog.records))
    writes.add("b")
    writes.wake()
    until(lambda: store.rows() == ["b"])  # "a" went with the bug's batch (counted), not retried forever
    assert writes.dropped == 1
    writes.close()


def test_an_unexpected_error_reaches_the_waiters_too():
    store = Store()

    def write(ops, final):
        raise ValueError("a bug")

    writes = GroupCommit(write, errors=(Broken,), name="t")
    with pytest.raises(ValueError):
        writes.commit(1)
    assert writes.pending == 0
