import pytest

from dashboard.alerts.rules import Alerts, Rule, metric_getter


def sample(cpu=None, ts=0.0, disks=()):
    return {"ts": ts, "cpu": {"percent": cpu}, "disks": list(disks)}


def test_hold_time_pending_then_firing_then_resolved():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 10, by="alice")
    assert a.evaluate(sample(90, ts=100), "h1") == []
    st = a.states[(rule.id, "h1")]
    assert st.state == "pending" and st.since == 100
    assert a.evaluate(sample(95, ts=105), "h1") == []
    assert a.evaluate(sample(95, ts=110), "h1") == [(rule, st, "firing")]
    assert a.evaluate(sample(99, ts=111), "h1") == []  # fires once
    assert a.firing() == [(rule, "h1")]
    assert a.evaluate(sample(50, ts=112), "h1") == [(rule, st, "resolved")]
    assert st.state == "ok" and st.since is None


def test_state_is_kept_per_host():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 0, by=None)
    assert [c[2] for c in a.evaluate(sample(90, ts=1), "web")] == ["firing"]
    assert a.evaluate(sample(10, ts=1), "db") == []
    assert a.firing() == [(rule, "web")]


def test_dipping_below_restarts_the_hold():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 10, by=None)
    a.evaluate(sample(90, ts=0), "h")
    a.evaluate(sample(10, ts=5), "h")
    assert a.evaluate(sample(90, ts=9), "h") == [] and a.states[(rule.id, "h")].since == 9
    assert [c[2] for c in a.evaluate(sample(90, ts=19), "h")] == ["firing"]


def test_missing_values_change_nothing():
    a = Alerts()
    rule = a.add("cpu", ">", 80, 0, by=None)
    a.evaluate(sample(90, ts=0), "h")
    assert a.evaluate(sample(None, ts=1), "h") == [] and a.states[(rule.id, "h")].state == "firing"


def test_disk_metrics_by_mount():
    get = metric_getter("disk:/data")
    assert get(sample(disks=[{"mount": "/", "percent": 10}, {"mount": "/data", "percent": 93.5}])) == 93.5
    assert get(sample(disks=[{"mount": "/", "percent": 10}])) is None


@pytest.mark.parametrize("metric", ["temperature", "disk:", "cpu.percent", ""])
def test_unknown_metrics_are_refused_with_the_list(metric):
    with pytest.raises(ValueError) as err:
        Alerts().add(metric, ">", 1, 0, None)
    assert "known: cpu" in str(err.value)


def test_ids_removal_and_replacing_the_rule_set():
    a = Alerts()
    r1, r2 = a.add("cpu", ">", 1, 0, None), a.add("memory", "<", 5, 0, None)
    assert (r1.id, r2.id) == ("a1", "a2")
    a.evaluate(sample(90, ts=0), "h")
    assert a.remove("a1") is r1 and list(a.rules) == ["a2"] and ("a1", "h") not in a.states
    with pytest.raises(KeyError):
        a.remove("a1")
    a.replace({"a7": Rule("a7", "swap", ">", 50, 0, "bob").public()})
    assert list(a.rules) == ["a7"] and a.rules["a7"].describe() == "swap > 50"


def test_a_firing_rule_kept_across_a_restart_is_not_announced_again():
    before = Alerts()
    rule = before.add("cpu", ">", 50, 0, "ops")
    before.add("memory", ">", 10, 30, "ops")  # pending when the process stops
    assert [c for _, _, c in before.evaluate({"ts": 1.0, "cpu": {"percent": 90}, "memory": {"percent": 20}},
                                             "web-1")] == ["firing"]
    after = Alerts()
    after.restore(**before.saved())
    assert after.next_id == before.next_id and set(after.rules) == set(before.rules)
    assert after.states[(rule.id, "web-1")].state == "firing"
    assert len(after.states) == 1  # the pending one counts its hold time again
    assert after.evaluate({"ts": 2.0, "cpu": {"percent": 95}, "memory": {"percent": 20}}, "web-1") == []
    (change,) = after.evaluate({"ts": 3.0, "cpu": {"percent": 5}, "memory": {"percent": 20}}, "web-1")
    assert change[2] == "resolved"
