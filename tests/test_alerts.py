import pytest

from dashboard.alerts import Alerts, metric_getter


def sample(cpu=None, ts=0.0, disks=()):
    return {"ts": ts, "cpu": {"percent": cpu}, "disks": list(disks)}


def test_hold_time_pending_then_firing_then_resolved():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 10, by="alice")
    assert a.evaluate(sample(90, ts=100)) == []
    assert rule.state == "pending" and rule.since == 100
    assert a.evaluate(sample(95, ts=105)) == []
    assert a.evaluate(sample(95, ts=110)) == [(rule, "firing")]
    assert a.evaluate(sample(99, ts=111)) == []  # fires once
    assert a.firing() == [rule]
    assert a.evaluate(sample(50, ts=112)) == [(rule, "resolved")]
    assert rule.state == "ok" and rule.since is None


def test_dipping_below_restarts_the_hold():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 10, by=None)
    a.evaluate(sample(90, ts=0))
    a.evaluate(sample(10, ts=5))
    assert a.evaluate(sample(90, ts=9)) == [] and rule.since == 9
    assert a.evaluate(sample(90, ts=19)) == [(rule, "firing")]


def test_missing_values_change_nothing():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 0, by=None)
    a.evaluate(sample(90, ts=0))
    assert a.evaluate(sample(None, ts=1)) == [] and rule.state == "firing"


def test_disk_metrics_by_mount():
    get = metric_getter("disk:/data")
    assert get(sample(disks=[{"mount": "/", "percent": 10}, {"mount": "/data", "percent": 93.5}])) == 93.5
    assert get(sample(disks=[{"mount": "/", "percent": 10}])) is None


@pytest.mark.parametrize("metric", ["temperature", "disk:", "cpu.percent", ""])
def test_unknown_metrics_are_refused_with_the_list(metric):
    with pytest.raises(ValueError) as err:
        Alerts().add(metric, ">", 1, 0, None)
    assert "known: cpu" in str(err.value)


def test_ids_are_unique_and_removal():
    a = Alerts()
    r1, r2 = a.add("cpu", ">", 1, 0, None), a.add("memory", "<", 5, 0, None)
    assert (r1.id, r2.id) == ("a1", "a2")
    assert a.remove("a1") is r1 and list(a.rules) == ["a2"]
    with pytest.raises(KeyError):
        a.remove("a1")
