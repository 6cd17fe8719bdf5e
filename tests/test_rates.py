import pytest

from dashboard.sampling.rates import Rates, percent


def test_first_observation_has_no_rate_then_rates_per_second():
    r = Rates()
    r.begin(100.0)
    assert r.per_second("rx", 1000) is None
    assert r.delta("cpu", 5.0) is None
    r.end()
    r.begin(102.0)
    assert r.per_second("rx", 3000) == 1000.0
    assert r.delta("cpu", 6.5) == 1.5
    r.end()


def test_counter_going_backwards_gives_none_not_a_negative_rate():
    r = Rates()
    r.begin(0.0)
    r.per_second("disk", 500)
    r.end()
    r.begin(1.0)
    assert r.per_second("disk", 10) is None  # device re-added: counter restarted
    r.end()
    r.begin(2.0)
    assert r.per_second("disk", 30) == 20.0
    r.end()


def test_keys_not_seen_in_a_round_are_forgotten():
    r = Rates()
    r.begin(0.0)
    r.delta(("proc", 1), 1.0)
    r.delta(("proc", 2), 1.0)
    r.end()
    r.begin(1.0)
    r.delta(("proc", 1), 2.0)
    r.end()
    r.begin(2.0)
    assert r.delta(("proc", 2), 3.0) is None  # gone for a round: no stale baseline
    assert r.delta(("proc", 1), 2.5) == 0.5
    r.end()


def test_zero_elapsed_time_gives_none():
    r = Rates()
    r.begin(5.0)
    r.per_second("x", 1)
    r.end()
    r.begin(5.0)
    assert r.per_second("x", 2) is None


def test_delta_requires_a_round():
    with pytest.raises(RuntimeError):
        Rates().delta("x", 1)


def test_percent():
    assert percent(1, 4) == 25.0
    assert percent(None, 4) is None
    assert percent(1, 0) is None


def test_clamped_deltas_treat_a_step_back_as_zero():
    r = Rates()
    r.begin(0.0)
    r.delta("iowait", 10.0, clamp=True)
    r.end()
    r.begin(1.0)
    assert r.delta("iowait", 9.99, clamp=True) == 0.0
    r.end()
    r.begin(2.0)
    assert r.delta("iowait", 10.5, clamp=True) == pytest.approx(0.51)


def test_counters_read_together_get_their_rates_in_one_lookup_each_under_the_same_rules():
    r = Rates()
    r.begin(10.0)
    assert r.per_second_each(("ctr", "a"), (5.0, 100, None)) == (None, None, None)  # nothing to diff yet
    r.end()
    r.begin(12.0)
    # one counter went back (reset), one was not read: None for those alone
    assert r.per_second_each(("ctr", "a"), (6.0, 50, 7)) == (0.5, None, None)
    r.end()
    r.begin(13.0)
    assert r.per_second_each(("ctr", "a"), (6.0, 60, 9)) == (0.0, 10.0, 2.0)
    r.end()
    r.begin(14.0)
    r.end()  # not seen in a round: forgotten
    r.begin(15.0)
    assert r.per_second_each(("ctr", "a"), (7.0, 70, 10)) == (None, None, None)
