import logging
import time

import gevent
import pytest

from dashboard.sampling.collectors import Collector, Unavailable
from dashboard.sampling.sampler import Sampler, check_interval


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


def test_loop_follows_interval_changes_and_pause_at_once():
    seen = []
    s = Sampler([counter_collector()], seen.append, interval=60)
    s.start()
    gevent.sleep(0.05)
    assert len(seen) == 1  # first sample at once, next one a minute away
    s.set_interval(0.25)  # takes effect now, not after the old 60 s wait
    gevent.sleep(0.6)
    assert 3 <= len(seen) <= 4
    assert s.pause() is True and s.pause() is False
    n = len(seen)
    gevent.sleep(0.6)
    assert len(seen) == n
    assert s.resume() is True
    gevent.sleep(0.1)
    assert len(seen) == n + 1
    s.stop()
    assert [x["seq"] for x in seen] == list(range(1, len(seen) + 1))


def test_a_crashing_publisher_does_not_stop_the_loop():
    seen = []

    def publish(sample):
        seen.append(sample)
        raise RuntimeError("subscriber exploded")

    s = Sampler([counter_collector()], publish, interval=0.25)
    s.start()
    gevent.sleep(0.6)
    s.stop()
    assert len(seen) >= 2
