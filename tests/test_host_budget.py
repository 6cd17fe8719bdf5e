"""A budget per host in Redis (HOST_BUDGET_BYTES), and a Redis that refuses writes: the
oldest data is trimmed to stay inside the budget, live data goes on, it is said once
and in /healthz, and writing resumes by itself."""

import json
import logging
import os
import time

import redis

from dashboard.store.host_budget import HostBudget
from dashboard.store.redis_store import RedisStore
from dashboard.store.redis_trouble import REFUSALS
from dashboard.store.redis_tiers import RedisTiers
from dashboard.store.tiers import Point
from tests.support.sseclient import SSEClient
from tests.support.waiting import eventually
from tests.test_lasting import NAMES
from tests.test_rollup_blocks import TIERS, synthetic_month




def fill_redis_to_the_brim(r: redis.Redis) -> None:
    """A megabyte of junk, then maxmemory below what Redis holds, noeviction: it refuses
    every write until the junk is deleted."""
    for i in range(10):
        r.set(f"junk:{i}", os.urandom(100_000))
    r.config_set("maxmemory-policy", "noeviction")
    r.config_set("maxmemory", r.info("memory")["used_memory"] - 300_000)
    try:
        r.set("probe", "x")
    except redis.OutOfMemoryError:
        return
    raise AssertionError("Redis still takes writes")


def test_a_host_over_its_budget_is_trimmed_from_its_oldest_data(redis_server):
    store = RedisStore(redis_server.url, "t", history_seconds=3600)
    now = int(time.time()) // 60 * 60
    items = synthetic_month(now, days=30, every=60)
    tiers = RedisTiers(store, TIERS, NAMES)
    tiers.write_points(items)
    for i in range(600):
        store.add_sample("web-1", json.dumps({"seq": i, "junk": os.urandom(200).hex()}), None, {"interval": 1})
    budget = HostBudget(store, TIERS, 10_000_000)
    full = budget.usage("web-1")
    hour_oldest, minute_oldest = tiers.oldest(TIERS[1], "web-1"), tiers.oldest(TIERS[0], "web-1")
    last_hour = tiers.last_point(TIERS[1], "web-1")
    budget.budget = full - 150_000  # a few hour blocks over
    assert budget.enforce("web-1") > 0
    assert budget.usage("web-1") <= budget.budget
    oldest = min(hour_oldest, minute_oldest)
    # The oldest blocks went, whichever tier they were of; the newest stays.
    assert min(tiers.oldest(TIERS[1], "web-1"), tiers.oldest(TIERS[0], "web-1")) > oldest
    assert tiers.last_point(TIERS[1], "web-1") == last_hour
    # Far over: every block goes, then the stream's oldest samples, never its last five minutes.
    budget.budget = 100_000
    budget.enforce("web-1")
    assert tiers.oldest(TIERS[1], "web-1") is None and tiers.oldest(TIERS[0], "web-1") is None
    assert len(store.backfill("web-1", 0)) == 600  # all written just now: inside the stream's floor
    later = time.time() + 3600
    budget.enforce("web-1", now=later)
    assert budget.usage("web-1") <= 100_000 and len(store.backfill("web-1", 0)) < 600
    store.close()


def test_the_writer_keeps_each_host_inside_its_budget(redis_server):
    store = RedisStore(redis_server.url, "t")
    now = int(time.time()) // 60 * 60
    tiers = RedisTiers(store, TIERS, NAMES, budget=200_000)
    items = synthetic_month(now, days=30, every=60)
    tiers.write_points(items)  # ~0.9 MB of roll-ups
    tiers._trimmed_at = 0  # the upkeep's minute has passed
    tiers.flush()
    used = HostBudget(store, TIERS, 0).usage("web-1")
    assert used <= 200_000
    assert tiers.last_point(TIERS[0], "web-1").ts == [p for t, _h, p in items if t is TIERS[0]][-1].ts  # the newest stays
    assert tiers.health()["trimmed_bytes"]["web-1"] > 3 * used  # most of the month went
    store.close()


def test_a_full_redis_is_said_once_points_wait_and_writing_resumes_by_itself(redis_server, caplog):
    store = RedisStore(redis_server.url, "t")
    tiers = RedisTiers(store, TIERS, NAMES, budget=5_000_000)
    now = int(time.time()) // 60 * 60
    fill_redis_to_the_brim(store.r)
    point = Point(now, 1, ((1.0, 2.0, 3.0),) + (None,) * (len(NAMES) - 1))
    REFUSALS.cleared("a test before")  # one per process: this test starts with no outage said
    caplog.set_level(logging.INFO, logger="dashboard.redis")
    caplog.set_level(logging.DEBUG, logger="dashboard.history")
    for i in range(5):
        tiers.add_point(TIERS[0], "web-1", point._replace(ts=now - 60 * i))
        assert tiers.flush() is False
    health = tiers.health()
    assert health["state"] == "failing" and "refuses writes" in health["refused"]
    assert health["pending"] == 5
    # Said once for the whole process (a warning); the writer's own line is there, at debug only.
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.name for r in loud] == ["dashboard.redis"] and "refuses writes" in loud[0].message, loud
    assert "first met by the history writer" in loud[0].message and "HSET" not in loud[0].message
    assert len([r for r in caplog.records if "cannot reach Redis" in r.message]) == 1
    store.r.delete(*[f"junk:{i}" for i in range(10)])  # room again (the operator, or other hosts trimmed)
    assert tiers.flush() is True
    assert tiers.health()["state"] == "ok" and "refused" not in tiers.health()
    assert any("reach Redis again" in r.message for r in caplog.records)
    assert any("Redis takes writes again" in r.message for r in caplog.records if r.name == "dashboard.redis")
    assert REFUSALS.since is None  # the next refusal is news again
    assert [p.ts for p in tiers.points(TIERS[0], "web-1", 0, now + 60)] == [now - 60 * i for i in range(4, -1, -1)]
    store.close()


def test_a_viewer_keeps_its_live_stream_while_redis_is_full_and_writing_resumes(start_server, redis_server):
    env = {"REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-key-of-dynos", "SAMPLE_INTERVAL": "0.5",
           "SAMPLER_LEASE_SECONDS": "2", "HOST_NAME": "web-1"}
    server = start_server(env)
    r = redis.Redis.from_url(redis_server.url)
    with SSEClient(server.port, path="/events?host=web-1") as viewer:
        viewer.read_events(2)
        fill_redis_to_the_brim(r)
        seen = len(viewer.events_of("metrics"))
        viewer.read_events(seen + 10, timeout=30)  # ten more samples while Redis refuses writes
        status, body = server.get("/healthz?details=1")
        assert status == 200
        assert "refuse" in json.dumps(body) or "maxmemory" in json.dumps(body), body
        for key in r.scan_iter("junk:*"):
            r.delete(key)
        seen = len(viewer.events_of("metrics"))
        viewer.read_events(seen + 5, timeout=30)
    stream = "dash:host:web-1"
    last = r.xrevrange(stream, count=1)[0][0]
    eventually(lambda: r.xrevrange(stream, count=1)[0][0] != last, 30, 0.2)  # the stream is written again
    log = server.log()
    assert "Traceback" not in log and "maxmemory" in log
    # Redis answered all along: no line says it was away, and the parts that could not write say why.
    assert "unreachable" not in log, [ln for ln in log.splitlines() if "unreachable" in ln]
    assert "full under noeviction, or a read-only replica" in log
    # One warning for the whole outage, whichever part met the refusal first and however often the
    # parts retried (the sampler's publish, the fleet, the outbox, the history writer), then one line
    # when writes get through again.
    loud = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{")]
    loud = [rec for rec in loud if rec.get("level") in ("warning", "error") and "edis" in rec.get("msg", "")]
    assert len(loud) == 1 and "Redis refuses writes" in loud[0]["msg"], loud
    assert "Redis takes writes again" in log
    r.close()


def test_a_refusal_is_said_once_per_outage_for_every_part_and_its_end_once(caplog):
    from dashboard.store.redis_trouble import Refusals

    refusals = Refusals(logging.getLogger("test.refusals"))
    full = redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    caplog.set_level(logging.DEBUG, logger="test.refusals")
    for where in ("the sampler", "the fleet", "the history writer", "the sampler"):
        refusals.met(full, where)
    refusals.cleared("the notification outbox")
    refusals.cleared("the sampler")  # already said
    refusals.met(redis.ReadOnlyError("You can't write against a read only replica."), "the fleet")
    said = [(r.levelname, r.message.split(" (")[0].split(":")[0]) for r in caplog.records if r.levelno >= logging.INFO]
    assert said == [("WARNING", "Redis refuses writes"), ("INFO", "Redis takes writes again"),
                    ("WARNING", "Redis refuses writes")], said
    assert "first met by the sampler" in caplog.records[0].message
    assert "read only replica" in caplog.records[-1].message
