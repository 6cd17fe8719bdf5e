"""The busiest containers' history: picked by their mean over the window, aligned on the
samples' times with None where one was not running, bounded in time; and its API."""

import math

import pytest

from dashboard.stream.container_history import ContainerHistory


def sample(ts, *rows):
    return {"ts": ts, "containers": {"running": len(rows), "list": [
        {"id": cid, "name": f"<b>{cid}</b>", "cpu_pct": cpu, "mem_pct": mem} for cid, cpu, mem in rows]}}


def test_the_busiest_are_picked_by_their_mean_and_aligned_on_the_samples():
    h = ContainerHistory(3600)
    h.add(sample(100, ("a", 10, 90), ("b", 50, 5)))
    h.add(sample(101, ("a", 12, 91), ("b", 52, 5), ("c", 99, 1)))  # c starts
    h.add(sample(102, ("a", 14, 92), ("b", None, 6)))  # c stops; b's cpu unread once
    h.add({"ts": 103})  # a sample without containers (CONTAINERS=off) is skipped
    by_cpu = h.columns(3600, top=2, by="cpu")
    assert by_cpu["ts"] == [100.0, 101.0, 102.0]
    assert [c["id"] for c in by_cpu["containers"]] == ["c", "b"]  # means 99, 51
    c, b = by_cpu["containers"]
    assert c["cpu_pct"] == [None, 99.0, None] and c["mem_pct"] == [None, 1.0, None]
    assert b["cpu_pct"] == [50.0, 52.0, None] and b["mem_pct"] == [5.0, 5.0, 6.0] and b["mean"] == 51.0
    assert c["name"] == "<b>c</b>"  # data, not markup: the page writes it as text
    assert [c["id"] for c in h.columns(3600, top=5, by="mem")["containers"]] == ["a", "b", "c"]
    assert h.columns(1.5, by="mem")["ts"] == [101.0, 102.0]  # the window's own samples
    assert h.columns(3600, until=100.5)["ts"] == [100.0]


def test_the_hour_is_kept_and_no_more_and_a_set_that_stays_is_stored_once():
    h = ContainerHistory(60)
    for ts in range(200):
        h.add(sample(ts, ("a", ts % 7, 10), ("b", 1, 2)))
    assert len(h) == 61 and h.columns(3600)["ts"][0] == 139.0
    rows = list(h._rows)
    assert all(r[1] is rows[0][1] for r in rows)  # one ids tuple for the run
    for ts in range(200, 400):  # containers come and go: names of the gone are dropped
        h.add(sample(ts, (f"x{ts}", 1, 1)))
    assert len(h._names) <= 4 + 256 and math.isclose(h.columns(60)["containers"][0]["mean"], 1.0)


def test_the_api_answers_the_busiest_and_refuses_bad_arguments(app, client, anon, svc):
    view = svc.views.local
    view.containers.add(sample(1000.0, ("web", 30, 40), ("db", 60, 20)))
    view.containers.add(sample(1001.0, ("web", 32, 41), ("db", 58, 21)))
    r = client.get("/api/containers/history?seconds=600&top=1&by=mem")
    assert r.status_code == 200 and [c["id"] for c in r.json["containers"]] == ["web"]
    assert r.json["containers"][0]["mem_pct"] == [40.0, 41.0] and r.json["by"] == "mem"
    assert client.get("/api/containers/history").json["containers"][0]["id"] == "db"
    for query, words in (("seconds=0", "seconds must be"), ("seconds=99999999", "seconds must be"),
                         ("top=0", "top must be"), ("top=2.5", "top must be"), ("top=21", "top must be"),
                         ("by=disk", "by must be cpu or mem")):
        r = client.get(f"/api/containers/history?{query}")
        assert r.status_code == 400 and r.json["error"]["code"] == "bad_request", query
        assert words in r.json["error"]["message"], query
    assert anon.get("/api/containers/history").status_code == 401


@pytest.mark.parametrize("bad", [{"ts": "x", "containers": {}}, {"ts": 1, "containers": {"list": "no"}},
                                 {"ts": 1, "containers": {"list": [{"id": 5}, None, {"id": "ok"}]}}])
def test_odd_samples_are_skipped_or_read_as_far_as_they_go(bad):
    h = ContainerHistory(60)
    h.add(bad)
    answer = h.columns(60)
    assert all(c["cpu_pct"] == [None] for c in answer["containers"])
