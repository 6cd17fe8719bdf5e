"""Leaving a process: the sampler stops between samples, a drain spreads its closes, a stream's farewell."""

import random

import gevent
import gevent.event

from dashboard.sampling.sampler import Sampler
from dashboard.stream.drain import Drain, moments
from dashboard.stream.hub import Hub
from tests.test_sampler import counter_collector


def test_stop_lets_a_sample_being_published_finish_and_none_starts_after():
    published, in_publish = [], gevent.event.Event()

    def on_sample(sample):
        in_publish.set()
        gevent.sleep(0.05)  # publishing yields (a socket, Redis): the kill used to land here
        published.append(sample["seq"])

    sampler = Sampler([counter_collector()], on_sample, interval=0.25)
    sampler.start()
    assert in_publish.wait(10)
    sampler.stop()
    # When stop() returns the sample under way has reached its viewers and store...
    assert published == [1]
    assert not sampler.running
    # ...and no other one comes after it: the store can be detached now.
    sampler.set_interval(0.25)
    gevent.sleep(0.6)
    assert published == [1]


def test_stop_before_start_and_twice_is_harmless():
    sampler = Sampler([counter_collector()], lambda s: None)
    sampler.stop()
    sampler.start()
    sampler.stop()
    sampler.stop()
    assert not sampler.running


def test_moments_give_each_its_slot_so_no_time_ends_more_than_its_share():
    rng = random.Random(7).random
    for count in (1, 2, 10, 997):
        at = sorted(moments(count, 20.0, rng))
        assert len(at) == count and 0 <= at[0] and at[-1] < 20.0
        for k, t in enumerate(at):
            assert k * 20.0 / count <= t < (k + 1) * 20.0 / count
    assert moments(0, 20.0) == []


class FakeTime:
    """A clock and a wait that advance it (no real sleeping)."""

    def __init__(self):
        self.now = 100.0

    def clock(self):
        return self.now

    def wait(self, flag, seconds):
        if not flag.is_set():
            self.now += seconds


def test_a_drain_ends_each_at_its_moment_and_a_cut_ends_the_rest_at_once():
    fake = FakeTime()
    ended = []
    drain = Drain(10.0, rng=random.Random(1).random, clock=fake.clock, wait=fake.wait)
    assert drain.run(range(50), lambda item: ended.append((fake.now - 100.0, item))) == 50
    assert sorted(item for _, item in ended) == list(range(50))
    times = [t for t, _ in ended]
    assert times == sorted(times) and times[-1] < 10.0
    for k, t in enumerate(times):
        assert k * 0.2 <= t < (k + 1) * 0.2  # one per fifth of a second, spread
    assert [item for _, item in ended] != list(range(50))  # in random order, not the order given

    fake, ended = FakeTime(), []
    drain = Drain(10.0, clock=fake.clock, wait=fake.wait)

    def end(item):
        ended.append(fake.now)
        if len(ended) == 5:
            drain.cut()

    assert drain.run(range(20), end) == 20
    assert len(set(ended[4:])) == 1  # after the cut, the rest at the same moment


def test_a_closed_stream_says_when_to_come_back_before_it_ends():
    hub = Hub(history_seconds=60, heartbeat=60)
    sub, _preamble = hub.open(None, chunked=False)
    frames = hub.iter_frames(sub)
    hub.close(sub, "draining", retry_ms=1234)
    assert list(frames) == [b"retry: 1234\n\n"]
    assert sub not in hub.subscribers


def test_streams_are_rotated_each_at_its_own_time_within_the_last_tenth_of_the_limit():
    now = [0.0]
    hub = Hub(history_seconds=60, heartbeat=60, retry_ms=1000, max_seconds=100, now=lambda: now[0],
              rng=random.Random(3).random)
    subs = [hub.open(None, chunked=False)[0] for _ in range(200)]
    assert all(90 <= sub.until <= 100 for sub in subs)
    ended = []
    for second in range(0, 101):
        now[0] = second
        ended.append(hub.rotate())
        assert all(sub.closed == (sub.until <= second) for sub in subs)
    assert sum(ended[:90]) == 0 and sum(ended) == 200
    assert max(ended) < 60  # spread over the last ten seconds, not all at once
    retries = {sub.farewell for sub in subs}
    assert len(retries) > 100 and all(500 <= int(f.split()[1]) < 1500 for f in retries)


def test_without_a_limit_no_stream_is_rotated():
    hub = Hub(history_seconds=60, heartbeat=60, now=lambda: 1e9)
    sub, _ = hub.open(None, chunked=False)
    assert sub.until is None and hub.rotate() == 0 and not sub.closed


def test_admission_lets_a_burst_in_then_its_rate_and_tells_the_rest_to_come_back_spread_out():
    from dashboard.stream.admission import Admission

    now = [0.0]
    gate = Admission(40, clock=lambda: now[0], rng=random.Random(5).random)
    assert [gate.admit() for _ in range(10)] == [None] * 10  # the burst: a quarter second's worth
    waits = [gate.admit() for _ in range(50)]
    assert all(w is not None for w in waits)
    assert len(set(waits)) > 40 and min(waits) >= 500  # never all at the same moment
    assert max(waits[25:]) > max(waits[:5])  # the bigger the crowd, the longer the spread
    admitted = 0
    for _ in range(100):  # then a crowd asking all through one second (10 ms steps): forty get in
        now[0] += 0.01
        admitted += [gate.admit() for _ in range(10)].count(None)
    assert 39 <= admitted <= 40
    now[0] += 60  # after a quiet minute, no more than the burst at once
    assert [gate.admit() for _ in range(20)].count(None) == 10
    assert gate.admitted == 20 + admitted
    assert all(Admission(0).admit() is None for _ in range(10_000))  # 0: no limit
