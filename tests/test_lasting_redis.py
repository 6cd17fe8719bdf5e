"""Chart tiers on a real redis-server: the same answers as SQLite, written once per host,
shared by every dyno."""

import json
import time


from dashboard.store.history_store import HistoryStore
from dashboard.store.redis_store import RedisStore
from dashboard.store.redis_tiers import RedisTiers
from dashboard.store.tiers import default_tiers
from dashboard.stream.windows import Windows
from tests.conftest import TOKEN
from tests.test_lasting import DAY, NAMES, TIERS, FakeView, month_of_points

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_month_in_redis_reads_back_exactly_as_from_sqlite(redis_server, tmp_path):
    now = (int(time.time()) // 3600) * 3600 + 1800
    hole = (now - 2 * DAY, now - 2 * DAY + 3 * 3600)
    # A day more retention than the data spans: the two stores trim at slightly
    # different moments, which must not cut a point from one and not the other.
    kept = default_tiers(31, 365)
    items = [(kept[TIERS.index(t)], h, p) for t, h, p in month_of_points(now, hole)]
    sqlite = HistoryStore(str(tmp_path), kept, NAMES, 3600)
    sqlite.write_points(items)
    store = RedisStore(redis_server.url, "t")
    tiers = RedisTiers(store, kept, NAMES)
    tiers.write_points(items)
    assert tiers.health()["pending"] == 0
    for seconds in (6 * 3600, DAY, 7 * DAY, 30 * DAY):
        a = Windows(3600, kept, sqlite).window(FakeView(), seconds, now=now)
        b = Windows(3600, kept, tiers).window(FakeView(), seconds, now=now)
        assert a == b and a["tier"] != "raw", seconds
    # Writing the same step again replaces it; nothing is duplicated.
    tiers.add_point(*items[-1])
    tiers.flush()
    minute = kept[0]
    stored = tiers.points(minute, "web-1", 0, now + DAY)
    assert len(stored) == len({p.ts for p in stored}) == sum(1 for t, _h, _p in items if t is minute)
    memory = sum(store.binary.memory_usage(k) or 0 for k in (store.blocks_key(minute.step, "web-1"),
                                                              store.tails_key(minute.step, "web-1")))
    print(f"redis: minute tier, 30 days, one host: {memory / 1e6:.2f} MB "
          f"({memory / len(stored) / len(NAMES):.1f} B per series and step)")
    # Trimmed by age.
    short = RedisTiers(store, default_tiers(1, 2), NAMES)
    short.add_point(*items[0])  # 30 days old
    assert short.flush() is True
    assert short.points(minute, "web-1", 0, now - 2 * DAY) == []
    sqlite.close()
    store.close()


def test_two_dynos_serve_the_same_months_written_once(start_server, redis_server):
    env = {"REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-of-the-dynos", "SAMPLE_INTERVAL": "0.5",
           "SAMPLER_LEASE_SECONDS": "2", "HOST_NAME": "web-1"}
    one = start_server(env, name="dyno1")
    two = start_server(env, name="dyno2")
    # A month written through the store's own API, ending a day ago.
    store = RedisStore(redis_server.url, "dash")
    tiers = RedisTiers(store, TIERS, NAMES)
    now = time.time()
    # 28 days, ending a day ago: clear of the 30-day trim, whoever runs it and when.
    tiers.write_points(month_of_points(now - DAY, (0, 0), days=28))

    def history(server, query):
        status, _h, raw = server.request("GET", f"/api/history?host=web-1&{query}", headers=AUTH)
        assert status == 200, raw
        return json.loads(raw)

    until = int(now - 2 * DAY)
    for query in (f"seconds={30 * DAY}&until={until}", f"seconds={7 * DAY}&until={until}", f"seconds={DAY}&until={until}"):
        a, b = history(one, query), history(two, query)
        a.pop("last_event_id"), b.pop("last_event_id")
        assert a == b and any(v is not None for v in a["columns"]["cpu"]), query
    # Real samples: the next whole minute is rolled up by the lease holder alone.
    boundary = (int(time.time()) // 60 + 1) * 60
    time.sleep(max(0.0, boundary - time.time()) + 3)
    a, b = history(one, "seconds=7200"), history(two, "seconds=7200")
    assert a["tier"] == "minute"
    last_minute = boundary - 60
    index = a["columns"]["ts"].index(last_minute)
    assert a["columns"]["cpu"][index] is not None and b["columns"]["cpu"][index] == a["columns"]["cpu"][index]
    written = [s.get("/healthz")[1]["history"]["written"] for s in (one, two)]
    assert sorted(w > 0 for w in written) == [False, True], written  # only the lease holder writes
    store.close()
