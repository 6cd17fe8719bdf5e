"""/api/history answers from a cache that lives until the next sample."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from tests.conftest import TOKEN
from tests.test_history import sample

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def fill(svc, rows: int) -> None:
    view = svc.views.local
    now = time.time() + 1  # the oldest stays inside the hour while the test runs
    for i in range(rows):
        frame = view.hub.publish_raw("metrics", json.dumps(sample(i + 1, now - rows + i)))
        view.history.add(frame.id, sample(i + 1, now - rows + i))
    view.latest_at = time.monotonic()


def test_an_hour_of_history_is_encoded_once_per_sample_and_window(client, svc):
    fill(svc, 3600)
    view = svc.views.local
    started = time.perf_counter()
    first = client.get("/api/history?seconds=3600", headers=AUTH)
    encode = time.perf_counter() - started
    assert first.status_code == 200 and first.json["count"] == 3600
    started = time.perf_counter()
    for _ in range(100):
        again = client.get("/api/history?seconds=3600", headers=AUTH)
        assert again.data == first.data
    cached = (time.perf_counter() - started) / 100
    assert view.history_cache.builds == 1 and view.history_cache.hits == 100
    assert client.get("/api/history?seconds=60", headers=AUTH).json["count"] <= 61
    assert view.history_cache.builds == 2  # another window: its own entry
    # The next sample makes every window stale.
    frame = view.ingest("metrics", json.dumps(sample(3601, time.time())), sample=sample(3601, time.time()))
    assert frame is not None
    fresh = client.get("/api/history?seconds=3600", headers=AUTH).json
    assert fresh["last_event_id"] == frame.id and view.history_cache.builds == 3
    # What it saves is counted above (one build, 100 hits); the times are for a person reading the
    # output, not a bound: a busy machine can make one cached answer slower than one encode.
    print(f"encode {encode * 1000:.1f} ms, cached answer {cached * 1000:.2f} ms")


def test_odd_windows_cannot_grow_the_cache(client, svc):
    from dashboard.web.budgets import LoginBudget

    svc.history_budget = LoginBudget(1_000_000)  # this is about memory, not the budget
    fill(svc, 10)
    for i in range(1, 200):
        assert client.get(f"/api/history?seconds={i}", headers=AUTH).status_code == 200
    assert len(svc.views.local.history_cache) == svc.views.local.history_cache.size


def cache_counts(server) -> tuple[float, float]:
    """(answers served from the cache, answers built) so far, from /metrics."""
    lines = server.request("GET", "/metrics")[2].decode().splitlines()

    def total(outcome: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines
                   if line.startswith("dashboard_history_cache_total{") and f'outcome="{outcome}"' in line)
    return total("hit"), total("build")


def samples_taken(server) -> int:
    return server.get("/healthz?details=1")[1]["sampler"]["seq"]


def test_many_history_callers_leave_the_worker_and_health_checks_alone(start_server):
    # Four samples a second: one login rebuilding the hour at each is over the default budget.
    server = start_server({"SAMPLE_INTERVAL": "0.25", "MAX_CONNECTIONS_PER_CLIENT": "100",
                           "HISTORY_BUILDS_PER_MINUTE": "1000000"})
    time.sleep(3)  # some history to encode
    worker = server.worker()
    url = server.base + "/api/history?seconds=3600"
    stop = time.monotonic() + 6
    done = [0]

    def caller():
        while time.monotonic() < stop:
            req = urllib.request.Request(url, headers=AUTH)
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 200
                resp.read()
            done[0] += 1

    hits0, builds0 = cache_counts(server)
    seq0 = samples_taken(server)
    cpu0 = sum(worker.cpu_times()[:2])
    t0 = time.monotonic()
    threads = [threading.Thread(target=caller) for _ in range(6)]
    for t in threads:
        t.start()
    health = []
    while time.monotonic() < stop:
        started = time.monotonic()
        status, _ = server.get("/healthz", timeout=5)
        assert status == 200
        health.append(time.monotonic() - started)
        time.sleep(0.1)
    for t in threads:
        t.join(10)
    cpu = sum(worker.cpu_times()[:2]) - cpu0
    wall = time.monotonic() - t0
    per_request_ms = cpu / max(done[0], 1) * 1000
    health.sort()
    print(f"{done[0]} history answers in {wall:.1f} s ({done[0] / wall:.0f}/s), worker CPU "
          f"{cpu / wall * 100:.0f}% of a core, {per_request_ms:.2f} ms CPU per answer; /healthz p50 "
          f"{health[len(health) // 2] * 1000:.1f} ms, max {health[-1] * 1000:.1f} ms")
    # Counted, not timed (a busy machine makes any answer late): every health check was answered
    # (above), and however many asked, the hour was built at most once per sample; the rest were
    # served from the cache.
    hits, builds = (now - before for now, before in zip(cache_counts(server), (hits0, builds0)))
    samples = samples_taken(server) - seq0
    assert builds <= samples + 2, (builds, samples)
    assert hits >= 5 * builds and hits + builds >= done[0], (hits, builds, done[0])


def test_a_full_hour_polled_by_six_clients_costs_one_encode_per_sample(start_server, redis_server):
    """An hour of 1 Hz history (backfilled from Redis, as after any restart: whole samples for
    RESUME_SECONDS, the chart minutes before them), six clients asking for all of it as fast
    as they can: cached, against the same load with a different window on every call (each
    one a fresh encode)."""
    from dashboard.store import chart_minutes
    from dashboard.store.redis_minutes import RedisMinutes
    from dashboard.store.redis_store import RedisStore
    from dashboard.stream.history import Minutes

    store = RedisStore(redis_server.url, "dash")
    now_ms = int(time.time() * 1000)
    pipe = store.r.pipeline(transaction=False)
    gather = Minutes(keep=100)
    for i in range(3590):
        ts_ms = now_ms - (3590 - i) * 1000
        gather.add(sample(i + 1, ts_ms / 1000))
        if ts_ms >= now_ms - 240_000:
            pipe.xadd(store.stream("web-1"), {"t": "metrics", "d": json.dumps(sample(i + 1, ts_ms / 1000))},
                      id=f"{ts_ms}-0")
    pipe.execute()
    RedisMinutes(store).add("web-1", [(start, chart_minutes.encode(rows)) for start, rows in gather.ready])
    store.close()
    server = start_server({"REDIS_URL": redis_server.url, "HOST_NAME": "web-1", "SAMPLE_INTERVAL": "1",
                           "HISTORY_BUILDS_PER_MINUTE": "1000000", "RESUME_SECONDS": "300"})
    answer = json.loads(urllib.request.urlopen(urllib.request.Request(
        server.base + "/api/history?seconds=3600", headers=AUTH), timeout=10).read())
    assert answer["count"] >= 3590
    seqs = [s for s in answer["columns"]["seq"] if s is not None]
    assert seqs[:3590] == list(range(1, 3591))  # from the minutes, then the whole samples: none lost or doubled
    worker = server.worker()

    def load(windows) -> dict:
        stop = time.monotonic() + 5
        done = [0]

        def caller(k):
            n = 0
            while time.monotonic() < stop:
                window = windows(k, n)
                with urllib.request.urlopen(urllib.request.Request(
                        f"{server.base}/api/history?seconds={window}", headers=AUTH), timeout=10) as resp:
                    resp.read()
                n += 1
                done[0] += 1

        counts0, seq0 = cache_counts(server), samples_taken(server)
        cpu0, t0 = sum(worker.cpu_times()[:2]), time.monotonic()
        threads = [threading.Thread(target=caller, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        health = []
        while time.monotonic() < stop:
            started = time.monotonic()
            assert server.get("/healthz", timeout=10)[0] == 200
            health.append(time.monotonic() - started)
            time.sleep(0.1)
        for t in threads:
            t.join(15)
        cpu, wall = sum(worker.cpu_times()[:2]) - cpu0, time.monotonic() - t0
        health.sort()
        hits, builds = (now - before for now, before in zip(cache_counts(server), counts0))
        return {"answers": done[0], "hits": hits, "builds": builds, "samples": samples_taken(server) - seq0,
                "per_second": done[0] / wall, "cpu_share": cpu / wall,
                "cpu_ms_per_answer": cpu / done[0] * 1000, "health_p50_ms": health[len(health) // 2] * 1000,
                "health_max_ms": health[-1] * 1000}

    cached = load(lambda k, n: 3600)
    # Whole seconds apart (a fraction would be rounded to the same answer): a fresh encode each.
    fresh = load(lambda k, n: 3600 - (k * 500 + n % 500 + 1))
    print(f"\ncached: {cached}\nfresh encodes: {fresh}")
    # Counted: the same window is built once per sample however many ask; a new window every call is
    # built every call. The CPU of each, measured in the same run, shows what that saves.
    assert cached["builds"] <= cached["samples"] + 2 and cached["hits"] >= 5 * cached["builds"], cached
    assert fresh["builds"] >= 0.9 * fresh["answers"], fresh
    assert cached["cpu_ms_per_answer"] < fresh["cpu_ms_per_answer"] / 3
