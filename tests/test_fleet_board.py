"""The fleet's summaries and its board: what changed, once per flush, and each host's state."""

import json

from dashboard.sampling.summary import SPARK_POINTS, SPARK_STEP, Summarizer, figures
from dashboard.stream.fleet_board import FleetBoard, state_of

CONFIG = {"VIEWER_BACKLOG": 64, "VIEWER_WRITE_TIMEOUT": 5, "HEARTBEAT_SECONDS": 15, "SSE_RETRY_MS": 1000,
          "VIEWER_SEND_BUFFER": 0}


def sample(ts, cpu=10.0, **extra):
    return {"ts": ts, "interval": 1.0, "cpu": {"percent": cpu}, "memory": {"percent": 40.0},
            "disks": [{"percent": 20.0}, {"percent": 91.25}], "load": {"load1": 0.5},
            "net": {"rx_bps": 1000.4, "tx_bps": 20.0}, **extra}


def data(frame) -> dict:
    """The JSON of a frame's SSE `data:` line."""
    line = next(l for l in bytes(frame.body).decode().splitlines() if l.startswith("data:"))
    return json.loads(line[5:])


class Wall:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_figures_take_the_fullest_disk_and_count_running_containers():
    got = figures(sample(1, containers=[{"state": "running"}, {"state": "exited"}, {"state": "running"}]))
    assert got == {"cpu": 10.0, "mem": 40.0, "disk": 91.2, "load": 0.5, "rx": 1000.0, "tx": 20.0, "containers": 2}
    assert figures({"containers": {"running": 4}})["containers"] == 4
    assert figures({})["containers"] is None and figures({})["disk"] is None


def test_a_summary_says_only_what_changed_and_the_sparkline_moves_once_per_bucket():
    s = Summarizer("h1")
    t0 = 100 * SPARK_STEP
    full, changed = s.add(sample(t0, cpu=10))
    assert changed == full and full["name"] == "h1" and len(full["spark"]) == SPARK_POINTS
    _, changed = s.add(sample(t0 + 1, cpu=30))
    assert set(changed) == {"ts", "cpu"}  # the bucket is not finished: the line stays
    _, changed = s.add(sample(t0 + SPARK_STEP, cpu=30), firing=1)
    assert changed["spark"][-1] == 20 and changed["firing"] == 1  # the mean of the finished bucket
    full, _ = s.add(sample(t0 + SPARK_STEP * (SPARK_POINTS + 2), cpu=5))
    assert full["spark"].count(None) == SPARK_POINTS  # ten minutes later the old buckets are gone


def test_state_is_stale_after_the_stale_time_then_alerts_then_paused():
    assert state_of({"ts": 100, "interval": 1}, 103, stale_seconds=3) == "up"
    assert state_of({"ts": 100, "interval": 1}, 103.5, stale_seconds=3) == "stale"
    assert state_of({"ts": 100, "interval": 5}, 110, stale_seconds=3) == "up"  # three intervals at least
    assert state_of({"ts": 100, "firing": 2, "paused": True}, 100, stale_seconds=3) == "alerts"
    assert state_of({"ts": 100, "paused": True}, 100, stale_seconds=3) == "paused"


def test_the_board_publishes_at_most_one_event_per_flush_with_only_the_changes():
    wall = Wall()
    board = FleetBoard(CONFIG, stale_seconds=3, wall=wall)
    board.update("a", {"name": "a", "ts": 1000, "cpu": 1}, key=(1_000_005, 0))
    board.update("a", {"ts": 1000.5, "cpu": 2}, key=(1_000_006, 0))
    board.update("b", {"name": "b", "ts": 1000, "cpu": 9}, key=(1_000_007, 0))
    board.flush()
    board.flush()  # nothing new: nothing sent
    frames = board.hub.frames()
    assert len(frames) == 1 and frames[0].id == "1000007-0"  # the id of the newest change read
    hosts = data(frames[0])["hosts"]
    assert hosts["a"] == {"name": "a", "cpu": 2, "state": "up"}  # ts stays in /api/fleet
    board.update("a", {"ts": 1002, "cpu": 3}, key=(1_000_008, 0))
    wall.now = 1003.5  # b has not been heard from for 3.5 s
    board.flush()
    hosts = data(board.hub.frames()[-1])["hosts"]
    assert hosts == {"a": {"cpu": 3}, "b": {"state": "stale"}}
    assert board.snapshot()["hosts"]["a"]["ts"] == 1002
    wall.now = 1005.5  # a too, with no change read: the hub's own next id
    board.flush()
    last = board.hub.frames()[-1]
    assert data(last)["hosts"] == {"a": {"state": "stale"}} and last.key > (1_000_008, 0)
    snap = board.snapshot()
    assert snap["last_event_id"] == last.id and snap["hosts"]["b"]["state"] == "stale"


def test_a_resume_gets_what_came_after_and_a_fill_sends_only_differences():
    board = FleetBoard(CONFIG, stale_seconds=3, wall=Wall())
    board.fill({"a": {"name": "a", "ts": 1000, "cpu": 1}}, (999_000, 0))
    board.flush()
    assert board.hub.frames()[0].id == "999000-0"  # every process that read the same store says so
    board.update("a", {"ts": 1000.5, "cpu": 4}, key=(999_001, 0))
    board.flush()
    sub, _ = board.hub.open("999000-0")
    assert [f.id for f in board.hub.next_batch(sub)] == ["999001-0"]
    board.fill({"a": {"name": "a", "ts": 1000.5, "cpu": 4}}, (999_001, 0))
    board.flush()
    assert len(board.hub.frames()) == 2  # nothing differed


def test_embedded_the_fleet_is_this_host_and_needs_a_login(client, anon, svc):
    import gevent

    client.get("/api/fleet")  # starts the sampler
    for _ in range(100):
        gevent.sleep(0.1)  # the sampler and the board are greenlets of this process
        body = client.get("/api/fleet").json["hosts"].get(svc.host)
        if body:
            break
    assert body["state"] == "up" and body["name"] == svc.host
    assert list(client.get("/api/fleet").json["hosts"]) == [svc.host]
    assert anon.get("/api/fleet").status_code == 401
    assert anon.get("/fleet/events").status_code == 401
    page = anon.get("/fleet")
    assert page.status_code == 200 and b"private" in page.data and b"fleet.js" not in page.data
    assert b"fleet.js" in client.get("/fleet").data


def test_a_rule_on_a_set_of_hosts_is_checked_on_those_only():
    from dashboard.alerts.rules import Alerts, Rule

    alerts = Alerts()
    everywhere = alerts.add("cpu", ">=", 0, 0, "a")
    web = alerts.add("cpu", ">=", 0, 0, "a", hosts="web-*")
    one = alerts.add("cpu", ">=", 0, 0, "a", hosts="db-1")
    fired = {h: {r.id for r, _, change in alerts.evaluate(sample(1), h)} for h in ("web-1", "db-1", "web")}
    assert fired == {"web-1": {everywhere.id, web.id}, "db-1": {everywhere.id, one.id}, "web": {everywhere.id}}
    assert web.describe() == "cpu >= 0 on web-*" and everywhere.describe() == "cpu >= 0"
    assert Rule.from_dict(web.public()).hosts == "web-*" and Rule.from_dict(everywhere.public()).hosts is None
    assert Rule.from_dict({**web.public(), "hosts": None}).applies("anything")


def test_alert_set_takes_a_host_pattern_and_alert_list_says_where(client):
    import json as _json

    from tests.support.wsclient import TOKEN  # noqa: F401  (the client fixture is the operator)

    svc = client.application.extensions["dashboard"]
    rule = svc.ops.add_alert("cpu", ">=", 0, 0, by="op", hosts="web-*")
    assert rule.hosts == "web-*"
    listed = {r["id"]: r for r in svc.ops.alert_rules()}
    assert listed[rule.id]["hosts"] == "web-*"
    _json.dumps(listed)
