"""every(): a background loop that waits, calls, logs a failure and goes on, and stops."""

import logging
import time

import gevent
import pytest

from dashboard.periodic import Every, every


def until(check, seconds=10.0):
    """Yield to other greenlets until check() holds (the bound is only against a hang). The clock is
    time.monotonic, not the gevent loop's: that one is cached at the loop's last turn, stale by however
    long the tests before ran without yielding (90 s once), and the bound then passed at once."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.001)


def test_waits_then_calls_and_an_error_is_logged_and_retried_sooner(caplog):
    waits, calls = [], []

    def fn(x):
        calls.append((x, len(waits)))
        if len(calls) == 2:
            raise RuntimeError("boom")
        if len(calls) == 4:
            loop.stop()

    loop = Every(10, fn, "a", name="the tick", retry=1, sleep=waits.append)
    with caplog.at_level(logging.ERROR, logger="dashboard.periodic"):
        loop.run()  # returns once stopped
    assert waits == [10, 10, 1, 10]  # after the failure, the retry delay
    assert calls == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]
    assert (loop.calls, loop.failures) == (4, 1)
    failed = [r for r in caplog.records if "the tick failed" in r.getMessage()]
    assert len(failed) == 1 and "trying again in 1s" in failed[0].getMessage() and failed[0].exc_info


def test_at_once_calls_before_the_first_wait():
    waits, calls = [], []

    def fn():
        calls.append(len(waits))
        if len(calls) == 2:
            loop.stop()

    loop = Every(5, fn, name="t", at_once=True, sleep=waits.append)
    loop.run()
    assert calls == [0, 1] and waits == [5]


def test_a_stop_during_the_wait_ends_the_loop_without_another_call():
    calls = []
    loop = Every(5, lambda: calls.append(1), name="t", sleep=lambda s: loop.stop())
    loop.run()
    assert calls == []


def test_wake_calls_now_instead_of_at_the_end_of_the_period_and_stop_ends_the_greenlet():
    calls = []
    loop = every(3600, calls.append, "x", name="t")
    assert loop.running
    loop.wake()
    until(lambda: calls == ["x"])
    loop.wake()
    until(lambda: calls == ["x", "x"])
    loop.stop()
    assert not loop.running
    loop.start()  # a stopped loop starts again
    assert loop.running
    loop.wake()
    until(lambda: len(calls) == 3)
    loop.stop()


def test_a_killed_greenlet_running_the_loop_ends_it():
    loop = Every(3600, lambda: None, name="t")
    g = gevent.spawn(loop.run)
    gevent.sleep(0)
    g.kill()
    assert g.dead and isinstance(g.value, gevent.GreenletExit)


def test_base_exceptions_are_not_swallowed():
    def fn():
        raise KeyboardInterrupt

    loop = Every(1, fn, name="t", sleep=lambda s: None)
    with pytest.raises(KeyboardInterrupt):
        loop.run()


def test_an_expected_error_is_one_warning_without_its_traceback(caplog):
    waits = []

    def fn():
        if len(waits) >= 2:
            loop.stop()
        raise ConnectionError("store away")

    loop = Every(10, fn, name="the job", retry=2, sleep=waits.append, expected=(ConnectionError,))
    with caplog.at_level(logging.WARNING, logger="dashboard.periodic"):
        loop.run()
    records = [r for r in caplog.records if "the job failed" in r.getMessage()]
    assert records and all(r.levelno == logging.WARNING and not r.exc_info for r in records)
    assert "store away" in records[0].getMessage() and waits[:2] == [10, 2]


def test_audit_upkeep_settles_what_was_pending_before_the_start_then_hourly_and_retries_a_failure():
    from dashboard.control.upkeep import PENDING_GRACE_SECONDS, audit_upkeep

    class Stop(BaseException):
        pass

    class Audit:
        def __init__(self):
            self.settled, self.trims, self.fail_next = [], 0, False

        def settle_interrupted(self, now, older_than):
            if self.fail_next:
                self.fail_next = False
                raise OSError("disk full")
            self.settled.append(now - older_than)
            return 0

        def trim(self, before):
            self.trims += 1
            return 0

    audit, waits = Audit(), []

    def sleep(seconds):
        waits.append(seconds)
        if len(waits) == 1:
            audit.fail_next = True
        if len(waits) == 3:
            raise Stop

    with pytest.raises(Stop):
        audit_upkeep(audit, 90, alone=True, started_at=lambda: 0.0, sleep=sleep)
    # At once, everything pending from before the start (started_at 0: older than "now");
    # an hour on, a failure; a minute on, those pending for more than a minute.
    assert waits == [3600, 60, 3600]
    assert len(audit.settled) == 2 and audit.settled[0] > 10**9 and audit.settled[1] == PENDING_GRACE_SECONDS
