"""Lasting history: roll-up arithmetic, the SQLite tiers read back at every window,
the event buffer and state across a restart, and the store's faults."""

import logging
import math
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import create_app
from dashboard.sampling.rollup import Rollups, values_of
from dashboard.sampling.series import SERIES
from dashboard.store.history_store import FILE_NAME, HistoryStore
from dashboard.store.tiers import Point, default_tiers
from dashboard.stream.views import HostView
from dashboard.stream.windows import MAX_POINTS, Windows
from tests.conftest import OBSERVER, TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMES = tuple(s.name for s in SERIES)
TIERS = default_tiers(30, 365)
MINUTE, HOUR = TIERS
DAY = 86400


def sample(ts, cpu, memory=None, seq=1):
    return {"ts": ts, "seq": seq, "interval": 1.0, "cpu": {"percent": cpu, "per_core": [cpu]},
            "memory": {"percent": memory}}


# ---- roll-up arithmetic ---------------------------------------------------------------

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=7200, allow_nan=False),
                          finite, st.one_of(st.none(), finite)), min_size=1, max_size=200))
def test_rollups_hold_min_le_mean_le_max_and_means_agree_with_the_samples(raw):
    raw.sort(key=lambda r: r[0])
    base = 1_800_000_000  # a whole hour, so minutes and hours line up as on a clock
    emitted = []
    rollups = Rollups(TIERS, lambda tier, point: emitted.append((tier, point)))
    for ts, cpu, memory in raw:
        rollups.add(sample(base + ts, cpu, memory))
    rollups.close()
    for tier, point in emitted:
        inside = [r for r in raw if int(base + r[0]) // tier.step * tier.step == point.ts]
        assert point.n == len(inside) > 0
        for index, name in ((0, "cpu"), (1, "memory")):
            values = [r[1 + index] for r in inside if r[1 + index] is not None]
            triple = point.values[NAMES.index(name)]
            if not values:
                assert triple is None
                continue
            low, mean, high = triple
            assert low <= mean + 1e-6 * max(1, abs(mean)) and mean <= high + 1e-6 * max(1, abs(mean))
            assert low == min(values) and high == max(values)
            assert math.isclose(mean, sum(values) / len(values), rel_tol=1e-9, abs_tol=1e-6)
    # Every sample lands in exactly one point of each tier.
    for tier in TIERS:
        assert sum(p.n for t, p in emitted if t is tier) == len(raw)


def test_values_of_skips_what_is_missing_or_not_a_number():
    values = values_of({"cpu": {"percent": 12}, "memory": {"percent": float("nan")}, "load": "x"})
    assert values[NAMES.index("cpu")] == 12.0 and values[NAMES.index("memory")] is None
    assert len(values) == len(SERIES)


# ---- a month through the store's own API, read back at each window ---------------------

def month_of_points(now, hole, days=30):
    """Per-minute and per-hour points for `days` days; cpu is the hour of the day, memory a ramp."""
    items = []
    for tier in TIERS:
        start = (int(now) - days * DAY) // tier.step * tier.step
        for ts in range(start, int(now) // tier.step * tier.step + 1, tier.step):
            if hole[0] <= ts < hole[1]:
                continue
            hour = (ts // 3600) % 24
            values = [None] * len(NAMES)
            values[NAMES.index("cpu")] = (hour * 0.5, float(hour), hour * 2 + 5.0)
            values[NAMES.index("memory")] = (10.0, 20.0, 30.0)
            items.append((tier, "web-1", Point(ts, 60 if tier is MINUTE else 3600, tuple(values))))
    return items


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    now = (int(time.time()) // 3600) * 3600 + 1800
    hole = (now - 3 * DAY, now - 3 * DAY + 4 * 3600)  # the server was down four hours
    store = HistoryStore(str(tmp_path_factory.mktemp("month")), TIERS, NAMES, 3600)
    store.write_points(month_of_points(now, hole))
    yield store, now, hole
    store.close()


class FakeView(HostView):
    def __init__(self):
        super().__init__("web-1", {"HISTORY_SECONDS": 3600, "VIEWER_BACKLOG": 64, "VIEWER_WRITE_TIMEOUT": 10,
                                   "HEARTBEAT_SECONDS": 15, "SSE_RETRY_MS": 2000, "VIEWER_SEND_BUFFER": 0})


@pytest.mark.parametrize("seconds, tier, step", [
    (300, "raw", 1.0), (3600, "raw", 1.0), (6 * 3600, "minute", 60), (DAY, "minute", 60),
    (7 * DAY, "minute", 360), (30 * DAY, "hour", 3600), (365 * DAY, "hour", 3600 * 5),
])
def test_a_month_reads_back_at_each_window(month, seconds, tier, step):
    store, now, hole = month
    windows = Windows(3600, TIERS, store)
    out = windows.window(FakeView(), seconds, now=now)
    assert out["tier"] == tier and out["step"] == step
    cols = out["columns"]
    assert len(cols["ts"]) <= MAX_POINTS * 1.01
    if tier == "raw":
        return
    assert cols["ts"] == sorted(cols["ts"]) and all(b - a == step for a, b in zip(cols["ts"], cols["ts"][1:]))
    assert cols["ts"][0] <= now - seconds < cols["ts"][0] + step and cols["ts"][-1] <= now
    kept = [i for i, v in enumerate(cols["cpu"]) if v is not None]
    assert kept, out
    for i in kept:
        assert cols["cpu_min"][i] <= cols["cpu"][i] <= cols["cpu_max"][i]
        assert cols["memory"][i] == 20.0 and cols["memory_min"][i] == 10.0 and cols["memory_max"][i] == 30.0
    if step == 60:  # one stored point per step: exactly what was written
        for i in kept:
            assert cols["cpu"][i] == float((cols["ts"][i] // 3600) % 24)
    assert cols["swap"] == [None] * len(cols["ts"])  # never written: null throughout
    if seconds >= 7 * DAY and step <= 3600:  # the four hours down are nulls, so the chart shows a gap
        down = [i for i, ts in enumerate(cols["ts"]) if hole[0] <= ts and ts + step <= hole[1]]
        assert down and all(cols["cpu"][i] is None for i in down)


def test_reach_is_how_far_back_the_data_goes(month, tmp_path):
    store, now, hole = month
    assert abs(Windows(3600, TIERS, store).reach("web-1", now) - 30 * DAY) < 3600
    assert Windows(3600, TIERS, store).reach("nobody", now) == 3600
    assert Windows(3600, TIERS, None).reach("web-1", now) == 3600


def test_until_pans_back_in_time(month):
    store, now, hole = month
    out = Windows(3600, TIERS, store).window(FakeView(), 6 * 3600, until=hole[1] + 3600, now=now)
    cols = out["columns"]
    assert out["tier"] == "minute" and cols["ts"][-1] <= hole[1] + 3600
    down = [v for ts, v in zip(cols["ts"], cols["cpu"]) if hole[0] <= ts < hole[1]]
    assert len(down) == 4 * 60 and down == [None] * len(down)
    assert all(v is not None for ts, v in zip(cols["ts"], cols["cpu"]) if not hole[0] <= ts < hole[1])


def test_old_points_are_trimmed_by_age(tmp_path):
    short = default_tiers(1, 2)
    store = HistoryStore(str(tmp_path), short, NAMES, 3600)
    now = int(time.time())
    values = (None,) * len(NAMES)
    store.write_points([(short[0], "h", Point(now - 3 * DAY, 1, values)),
                        (short[0], "h", Point(now // 60 * 60, 1, values))])
    store.flush()
    assert [p.ts for p in store.points(short[0], "h", 0, now + 60)] == [now // 60 * 60]
    store.close()


# ---- faults -----------------------------------------------------------------------------

def test_a_full_disk_is_logged_once_live_goes_on_and_writing_resumes(tmp_path, caplog):
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 3600)
    store.flush()
    pages = store.writer.execute("PRAGMA page_count").fetchone()[0]
    store.writer.execute(f"PRAGMA max_page_count={pages}")  # the disk is full from now on
    big = os.urandom(10000).hex()  # stored compressed: it must not compress to nothing
    with caplog.at_level(logging.WARNING, logger="dashboard.history"):
        for i in range(5):
            store.add_event((i + 1, 0), "metrics", big)
            assert store.flush() is False
        assert store.health()["state"] == "failing" and "full" in store.health()["error"]
        assert len([r for r in caplog.records if "cannot write" in r.message]) == 1
        store.writer.execute("PRAGMA max_page_count=1073741823")  # room again
        assert store.flush() is True
    assert store.health()["state"] == "ok"
    assert any("writes again" in r.message for r in caplog.records)
    assert [k for k, _t, _d in store.events(0)] == [(i + 1, 0) for i in range(5)]
    store.close()


def app_with(data_dir, tmp_path, **extra):
    return create_app({"TESTING": True, "OPERATOR_TOKEN": TOKEN, "OBSERVER_TOKEN": OBSERVER,
                       "SECRET_KEY": "s", "AUDIT_DB": str(tmp_path / "audit.sqlite3"),
                       "DATA_DIR": str(data_dir), **extra})


@pytest.mark.parametrize("damage", ["corrupt", "unwritable"])
def test_a_broken_store_at_start_is_one_line_and_live_data_is_served(tmp_path, caplog, damage):
    data = tmp_path / "data"
    data.mkdir()
    if damage == "corrupt":
        (data / FILE_NAME).write_bytes(b"this is not a database, " * 200)
    else:
        (data / FILE_NAME).write_bytes(b"")
        os.chmod(data / FILE_NAME, 0o444)
        if os.geteuid() == 0:  # root writes anyway: make the file a folder instead
            os.chmod(data / FILE_NAME, 0o644)
            os.remove(data / FILE_NAME)
            (data / FILE_NAME).mkdir()
    with caplog.at_level(logging.ERROR):
        app = app_with(data, tmp_path)
    lines = [r for r in caplog.records if "history store" in r.message]
    assert len(lines) == 1 and "serving live data without lasting history" in lines[0].message
    svc = app.extensions["dashboard"]
    try:
        client = app.test_client()
        svc.sampler.tick()
        health = client.get("/healthz", headers=AUTH).json
        assert health["status"] == "ok" and health["history"]["state"] == "unavailable"
        assert FILE_NAME in health["history"]["error"]
        r = client.get("/api/history?seconds=60", headers=AUTH)
        assert r.status_code == 200 and r.json["count"] == 1 and r.json["tier"] == "raw"
        r = client.get("/api/history?seconds=86400", headers=AUTH)
        assert r.status_code == 400  # the longest window is the in-memory one
        assert "HISTORY_SECONDS" in r.json["error"]["message"]
    finally:
        svc.shutdown("test finished")


# ---- state and events across a restart (in process) -------------------------------------

def test_events_ids_seq_and_state_survive_a_restart(tmp_path):
    data = tmp_path / "data"
    app = app_with(data, tmp_path)
    svc = app.extensions["dashboard"]
    for _ in range(3):
        svc.sampler.tick()
    svc.ops.set_interval(2.5, by="alice")
    svc.ops.set_paused(True, by="alice")
    rule = svc.ops.add_alert("cpu", ">", 99, 0, by="alice")
    svc.ops.broadcast("hello", by="alice")
    last = svc.hub.head
    types = [f.type for f in svc.hub.frames()]
    svc.shutdown("restart")

    app = app_with(data, tmp_path)
    svc = app.extensions["dashboard"]
    try:
        assert [f.type for f in svc.hub.frames()] == types and svc.hub.head.id == last.id
        assert svc.sampler.interval == 2.5 and svc.sampler.paused
        assert list(svc.alerts.rules) == [rule.id]
        assert svc.ops.add_alert("memory", ">", 99, 0, by="bob").id != rule.id  # ids never reused
        svc.sampler.tick()
        assert svc.local.latest["seq"] == 4 and svc.hub.head.key > last.key
        sub, preamble = svc.hub.open(last.id)
        assert b"resync" not in preamble and sub.cursor == svc.hub.head.n - 2  # the new rule and the sample
        client = app.test_client()
        cols = client.get("/api/history?seconds=600", headers=AUTH).json["columns"]
        assert [s for s in cols["seq"] if s is not None] == [1, 2, 3, 4]
    finally:
        svc.shutdown("test finished")


def test_history_store_off_keeps_nothing(tmp_path):
    data = tmp_path / "data"
    app = app_with(data, tmp_path, HISTORY_STORE=False)
    svc = app.extensions["dashboard"]
    svc.sampler.tick()
    assert svc.health()[1]["history"]["state"] == "off"
    svc.shutdown("done")
    assert not (data / FILE_NAME).exists()
