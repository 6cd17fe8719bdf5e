import logging
import time

import gevent
import gevent.event
import pytest

from dashboard.sampling.collectors import Collector, Unavailable
from dashboard.sampling.sampler import Sampler, check_interval
from tests.test_periodic import until


def counter_collector(name="n"):
    state = {"n": 0}

    def collect(rates):
        state["n"] += 1
        return state["n"]

    return Collector(name, "counts calls", collect)


def test_sample_has_ts_seq_host_and_every_collector():
    s = Sampler([counter_collector("a"), counter_collector("b")], lambda x: None, host="h1")
    before = time.time()
    one, two = s.sample(), s.sample()
    assert isinstance(one["ts"], float) and before - 0.01 <= one["ts"] <= time.time()
    assert (one["seq"], two["seq"]) == (1, 2)
    assert one["host"] == "h1" and one["a"] == 1 and two["b"] == 2
    assert one["missing"] == {}


def test_a_failing_collector_is_reported_missing_logged_once_and_never_stops_the_rest(caplog):
    calls = {"n": 0}

    def broken(rates):
        calls["n"] += 1
        if calls["n"] <= 3:
            raise PermissionError(13, "Permission denied")
        return "ok"

    def absent(rates):
        raise Unavailable("not reported on this host")

    s = Sampler(
        [Collector("broken", "", broken), Collector("absent", "", absent), counter_collector("fine")],
        lambda x: None,
    )
    with caplog.at_level(logging.INFO, logger="dashboard.sampling.sampler"):
        samples = [s.sample() for _ in range(4)]
    assert samples[0]["broken"] is None
    assert samples[0]["missing"] == {
        "broken": "permission denied",
        "absent": "not reported on this host",
    }
    assert [x["fine"] for x in samples] == [1, 2, 3, 4]
    assert samples[3]["broken"] == "ok" and "broken" not in samples[3]["missing"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("collector broken unavailable: permission denied") == 1
    assert messages.count("collector absent unavailable: not reported on this host") == 1
    assert messages.count("collector broken is back") == 1


@pytest.mark.parametrize("bad", [0.1, 61, "x", None, float("nan")])
def test_interval_bounds(bad):
    with pytest.raises(ValueError) as err:
        check_interval(bad)
    assert "interval must" in str(err.value)


class FakeClock:
    """The sampler's cadence clock, moved by the test: a wait for n seconds of it
    ends when the test has advanced it that far (or the sampler's flag is set)."""

    def __init__(self):
        self.now = 1000.0
        self._moved = gevent.event.Event()
        self.waiting = 0  # greenlets parked in wait()
        self.looked = None  # the time a waiter last saw

    def __call__(self):
        return self.now

    def wait(self, flag, seconds):
        deadline = None if seconds is None else self.now + seconds
        self.waiting += 1
        try:
            while not flag.is_set():
                self.looked = self.now
                if deadline is not None and self.now >= deadline:
                    return False
                gevent.wait([flag, self._moved], count=1)
            return True
        finally:
            self.waiting -= 1

    def advance(self, seconds):
        self.now += seconds
        moved, self._moved = self._moved, gevent.event.Event()
        moved.set()


def settle(clock, seen, count):
    """Let the loop run until it has published `count` samples and parked again,
    having seen the clock's current time."""
    until(lambda: len(seen) == count and clock.waiting == 1 and clock.looked == clock.now)


def test_loop_follows_interval_changes_and_pause_at_once():
    clock, seen = FakeClock(), []
    s = Sampler([counter_collector()], seen.append, interval=60, clock=clock, wait=clock.wait)
    s.start()
    settle(clock, seen, 1)  # the first sample at once
    clock.advance(59.9)
    settle(clock, seen, 1)  # the next one a minute after the first
    s.set_interval(0.25)  # takes effect now, not after the old 60 s wait
    settle(clock, seen, 2)
    for n in (3, 4, 5):
        clock.advance(0.25)
        settle(clock, seen, n)
    assert s.pause() is True and s.pause() is False
    for _ in range(10):
        clock.advance(1)
        settle(clock, seen, 5)  # paused: time passes, no sample
    assert s.resume() is True
    settle(clock, seen, 6)  # at once on resume
    clock.advance(0.25)
    settle(clock, seen, 7)  # then on the cadence again, with no burst for the paused time
    s.stop()
    assert [x["seq"] for x in seen] == list(range(1, 8))


def test_a_crashing_publisher_does_not_stop_the_loop():
    clock, seen = FakeClock(), []

    def publish(sample):
        seen.append(sample)
        raise RuntimeError("subscriber exploded")

    s = Sampler([counter_collector()], publish, interval=0.25, clock=clock, wait=clock.wait)
    s.start()
    settle(clock, seen, 1)
    clock.advance(0.25)
    settle(clock, seen, 2)
    s.stop()
