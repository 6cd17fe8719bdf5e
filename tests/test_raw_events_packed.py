"""The stored raw hour, packed: events zlib-compressed on disk (no row spills into an
overflow page) and in the Redis stream (read back as they were written), and stores
from before still read."""

import json
import sqlite3
import time

from dashboard.store.history_store import HistoryStore
from dashboard.store.redis_store import RedisStore
from dashboard.store.tiers import default_tiers
from dashboard.stream import wire
from tests.test_lasting import NAMES

TIERS = default_tiers(30, 365)
T0 = int(time.time()) - 3600


def real_event(i: int) -> str:
    """A metrics event the size a busy host sends (~1.7 kB compact)."""
    sample = {"ts": T0 + i, "seq": i + 1, "host": "web-1", "interval": 1,
              "cpu": {"percent": (i * 7) % 100 / 1.0, "per_core": [float(i % 50), 25.5], "count": 2},
              "memory": {"total": 25276071936, "used": 2463080448 + i, "percent": 9.7},
              "disks": [{"mount": f"/m{j}", "device": "/dev/vda", "read_bps": float(i * j), "write_bps": 12227.5}
                        for j in range(6)],
              "processes": {"top_cpu": [{"pid": 100 + j, "name": f"worker-{j}", "user": "app",
                                         "cpu": float((i + j) % 30), "rss": 1000 * j} for j in range(15)],
                            "top_mem": []}}
    return wire.encode(sample)


def test_an_hour_of_events_on_disk_reads_back_and_no_row_spills(tmp_path):
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 7200)  # none is trimmed while the test runs
    ms = int(time.time() * 1000) - 3600_000
    events = [real_event(i) for i in range(3600)]
    for i, data in enumerate(events):
        store.add_event((ms + i * 1000, 0), "metrics", data)
    store.flush()
    assert [d for _k, _t, d in store.events(0)] == events
    store.close()
    db = sqlite3.connect(store.path)
    overflow = db.execute("SELECT COUNT(*) FROM dbstat WHERE name = 'event_log' AND pagetype = 'overflow'").fetchone()[0]
    used, pages = db.execute("SELECT SUM(pgsize - unused), SUM(pgsize) FROM dbstat WHERE name = 'event_log'").fetchone()
    size = sum(len(d) for d in events)
    db.close()
    assert overflow == 0
    assert pages < size * 0.75, (pages, size)  # packed: well under the text's size, pages and all
    print(f"event log: {pages / 3600:.0f} B per event of {size / 3600:.0f} B, pages {used / pages:.0%} full")


def test_a_database_from_before_has_its_events_converted_when_it_opens(tmp_path):
    path = tmp_path / "history.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE events (ms INTEGER NOT NULL, sq INTEGER NOT NULL, type TEXT NOT NULL,
                        data TEXT NOT NULL, PRIMARY KEY (ms, sq)) WITHOUT ROWID;""")
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [(i, 0, "metrics", real_event(i)) for i in range(50)])
    db.commit()
    db.close()
    store = HistoryStore(str(tmp_path), TIERS, NAMES, 3600)
    assert [d for _k, _t, d in store.events(0)] == [real_event(i) for i in range(50)]
    assert store.reader.execute("SELECT name FROM sqlite_master WHERE name = 'events'").fetchone() is None
    store.close()


def test_samples_in_the_redis_stream_are_compressed_and_read_back_as_written(redis_server):
    store = RedisStore(redis_server.url, "t", history_seconds=3600)
    plain = real_event(0)
    store.r.xadd(store.stream("web-1"), {"t": "metrics", "d": plain})  # written before compression
    events = [real_event(i) for i in range(1, 200)]
    for data in events:
        store.add_sample("web-1", data, None, {"interval": 1})
    store.add_event(["web-1"], "notice", json.dumps({"text": "hi"}))
    got = store.backfill("web-1", 0)
    assert [f["d"] for _i, f in got] == [plain] + events + [json.dumps({"text": "hi"})]
    assert [f["t"] for _i, f in got][-1] == "notice"
    read = store.read({"web-1": got[0][0]}, 10)
    assert [f["d"] for _i, f in read[0][1]] == events + [json.dumps({"text": "hi"})]
    assert read[0][0] == store.stream("web-1")
    assert store.last_seq("web-1") == 200
    per_entry = store.binary.memory_usage(store.stream("web-1"), samples=0) / len(got)
    assert per_entry < len(plain) * 0.75, (per_entry, len(plain))
    store.close()


def test_another_process_reads_samples_packed_against_key_frames_and_skips_orphans(redis_server):
    writer = RedisStore(redis_server.url, "t", history_seconds=3600)
    events = [real_event(i) for i in range(150)]  # key frames at 0, 60 and 120
    ids = [writer.add_sample("web-1", data, None, {"interval": 1}) for data in events]
    reader = RedisStore(redis_server.url, "t", history_seconds=3600)  # knows no key frame yet
    assert [f["d"] for _i, f in reader.backfill("web-1", 0)] == events
    read = RedisStore(redis_server.url, "t").read({"web-1": ids[69]}, 10)
    assert [f["d"] for _i, f in read[0][1]] == events[70:]
    alone = writer.binary.memory_usage(writer.stream("web-1"), samples=0) / len(events)
    assert alone < len(events[0]) * 0.4, alone
    # Trimmed so that the first key frame is gone: its samples are skipped, the rest read.
    writer.binary.xtrim(writer.stream("web-1"), minid=ids[1], approximate=False)
    fresh = RedisStore(redis_server.url, "t", history_seconds=3600)
    assert [f["d"] for _i, f in fresh.backfill("web-1", 0)] == events[60:]
    assert fresh.frames.skipped == 59
    for store in (writer, reader, fresh):
        store.close()
