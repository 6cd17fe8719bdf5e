"""The raw hour split (RESUME_SECONDS): whole events kept only as long as viewers resume from
them, the charts' rows of the whole hour packed a minute to a blob beside them, and a restart
that charts the hour again from both."""

import random
import time

from dashboard.sampling.series import SERIES
from dashboard.store import chart_minutes, redis_minutes
from dashboard.store.history_store import HistoryStore
from dashboard.store.host_budget import HostBudget
from dashboard.store.tiers import default_tiers
from dashboard.stream import wire
from dashboard.stream.history import Minutes, chart_row
from tests.test_lasting import AUTH, app_with

NAMES = tuple(s.name for s in SERIES)
TIERS = default_tiers(30, 365)


def busy_sample(ts: float, seq: int) -> dict:
    """A sample with every charted figure, rounded as the collectors round them."""
    return {"ts": ts, "seq": seq, "host": "web-1", "interval": 1.0,
            "cpu": {"percent": round(20 + seq * 7 % 60 + 0.3, 1), "per_core": [float(seq % 97), 12.5 + seq % 3]},
            "memory": {"percent": round(40 + seq % 11 / 10, 1), "used": 2_463_080_448 + seq * 4096},
            "swap": {"percent": 1.5}, "load": {"load1": round(seq % 300 / 100, 2), "load5": 1.07, "load15": 0.98},
            "disks": [{"mount": "/", "read_bps": float(seq * 512 % 90_000), "write_bps": 12227.5 + seq}],
            "net": {"rx_bps": round(seq * 1234.5 % 1e6, 1), "tx_bps": 777.0}}


def noisy(row: tuple, rnd: random.Random) -> tuple:
    """Every figure moved at random (more than a real host's move from one second to the next)."""
    def move(v):
        return None if v is None else round(v * rnd.uniform(0.5, 1.5) + rnd.uniform(0, 1), 1)
    return row[:3] + (tuple(move(v) for v in row[3]), tuple(move(v) for v in row[4]))


def test_a_minute_of_chart_rows_reads_back_exactly_in_a_few_bytes_a_value():
    t0 = 1_764_000_000.25
    rnd = random.Random(3)
    rows = [noisy(chart_row(busy_sample(t0 + i * 1.001, i + 1)), rnd) for i in range(60)]
    rows[17] = rows[17][:4] + (tuple(None for _ in NAMES),)  # a sample without any figure
    rows[30] = rows[30][:3] + ((5.0,),) + rows[30][4:]  # fewer cores in one sample
    blob = chart_minutes.encode(rows)
    back = chart_minutes.decode(blob, len(NAMES))
    padded = [r if len(r[3]) == 2 else r[:3] + (r[3] + (None,),) + r[4:] for r in rows]
    assert back == padded
    values = 60 * (3 + 2 + len(NAMES))
    assert len(blob) / values < 2.0, len(blob)  # random figures; a real minute costs less


def test_a_damaged_minute_or_one_with_other_series_reads_as_nothing():
    blob = chart_minutes.encode([chart_row(busy_sample(1000.0 + i, i)) for i in range(60)])
    assert chart_minutes.decode(blob[:30], len(NAMES)) == []
    assert chart_minutes.decode(b"\x01", len(NAMES)) == []
    assert chart_minutes.decode(blob, len(NAMES) + 1) == []  # written by a release with other series


def test_minutes_are_handed_over_once_finished_and_kept_until_stored():
    gather = Minutes(keep=2)
    for i in range(60):
        assert gather.add(busy_sample(6000.0 + i, i)) == []
    ready = gather.add(busy_sample(6060.0, 60))
    assert [(start, len(rows)) for start, rows in ready] == [(6000, 60)]
    assert gather.add(busy_sample(6061.0, 61)) == ready  # not stored yet: handed over again
    gather.sent()
    assert gather.add(busy_sample(6062.0, 62)) == []
    for minute in (6120, 6180, 6240):  # three more minutes end, none stored: the two newest wait
        gather.add(busy_sample(float(minute), minute))
    assert [start for start, _ in gather.ready] == [6120, 6180]
    assert [start for start, _ in gather.unfinished()] == [6120, 6180, 6240]


def test_the_store_keeps_whole_events_for_resume_seconds_and_chart_minutes_for_the_hour(tmp_path):
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 300, minutes_seconds=3600)
    now = time.time()
    old, young = busy_sample(now - 400, 1), busy_sample(now - 10, 2)
    for s in (old, young):
        store.add_event((int(s["ts"] * 1000), 0), "metrics", wire.encode(s))
    minute = chart_minutes.encode([chart_row(young)])
    for start in (int(now - 4000) // 60 * 60, int(now - 600) // 60 * 60):
        store.add_minute("web-1", start, minute)
    store.flush()  # the first write trims
    assert [k[0] for k, _t, _d in store.events(0)] == [int(young["ts"] * 1000)]
    assert store.minutes("web-1", 0) == [minute]
    store.close()


def test_a_restart_charts_the_hour_from_minutes_and_resumes_from_whole_events(tmp_path):
    """RESUME_SECONDS of whole events and the hour's chart minutes in the store, as a process
    leaves them: the next one charts every sample of the hour once, in order, and its event
    buffer (what viewers resume from) holds the whole events."""
    data = tmp_path / "data"
    store = HistoryStore(str(data), TIERS, NAMES, 300, minutes_seconds=3600)
    now = time.time()
    samples = [busy_sample(now - 3590 + i, i + 1) for i in range(3590)]
    gather = Minutes(keep=100)
    for s in samples:
        gather.add(s)
    for start, rows in gather.ready:  # finished minutes only: the one under way is in the events
        store.add_minute("web-1", start, chart_minutes.encode(rows))
    kept = [s for s in samples if s["ts"] >= now - 240]  # a minute short of RESUME_SECONDS: none trimmed at start
    for s in kept:
        store.add_event((int(s["ts"] * 1000), 0), "metrics", wire.encode(s))
    store.close()

    app = app_with(data, tmp_path, HOST_NAME="web-1", RESUME_SECONDS=300)
    svc = app.extensions["dashboard"]
    try:
        answer = app.test_client().get("/api/history?seconds=3600", headers=AUTH).json
        cols = answer["columns"]
        assert answer["tier"] == "raw"
        seqs = [s for s in cols["seq"] if s is not None]
        assert seqs[:3590] == list(range(1, 3591))  # every sample once, in order, nothing doubled
        by_seq = dict(zip(cols["seq"], cols["cpu"]))
        assert all(by_seq[s["seq"]] == s["cpu"]["percent"] for s in samples)
        assert [c for c in cols["cores"][0] if c is not None][:3590] == [float(s["seq"] % 97) for s in samples]
        assert len(svc.hub.frames()) == len(kept)
        assert answer["last_event_id"] == svc.hub.head.id
    finally:
        svc.shutdown("test finished")


def test_a_hosts_budget_counts_its_chart_minutes(store):
    from dashboard.store.redis_minutes import RedisMinutes

    minutes = [(6000 + 60 * k, chart_minutes.encode([chart_row(busy_sample(6000.0 + 60 * k + i, i))
                                                      for i in range(60)])) for k in range(3)]
    RedisMinutes(store).add("web-1", minutes)
    assert store.minutes_key("web-1") in HostBudget(store, TIERS, 5_000_000).keys("web-1")
    found = store.binary.hgetall(store.minutes_key("web-1"))
    assert redis_minutes.since(found, 6060) == [blob for _start, blob in minutes[1:]]
    assert 0 < store.binary.ttl(store.minutes_key("web-1")) <= 3600 + 300


def test_a_minute_left_unfinished_is_stored_whole_by_the_next_sampler():
    now = time.time()
    start = int(now) // 60 * 60
    earlier = [chart_row(busy_sample(start + i * 0.1, i + 1)) for i in range(3)]
    gather = Minutes()
    gather.seed(start, earlier)
    gather.add(busy_sample(start + 0.5, 4))
    assert [r[1] for r in gather.unfinished()[0][1]] == [1, 2, 3, 4]
    other = Minutes()
    other.seed(start - 600, earlier)  # not the minute under way: nothing to continue
    assert other.unfinished() == []
