"""/api/history against the real server: near-equal windows share one answer,
and answers that must be built are budgeted per login."""

from __future__ import annotations

import json
import random
import re
import threading
import time
import urllib.error
import urllib.request

from tests.conftest import OBSERVER, TOKEN
from tests.support.sseclient import SSEClient

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def cache_counts(server) -> tuple[int, int, int]:
    """(hits, builds, seq) from /healthz?details=1."""
    status, body = server.get("/healthz?details=1")
    assert status == 200, body
    return body["history_cache"]["hits"], body["history_cache"]["builds"], body["sampler"]["seq"]


def history(server, query: str, token: str = TOKEN) -> tuple[int, dict, dict]:
    req = urllib.request.Request(f"{server.base}/api/history?{query}",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_random_windows_share_cache_entries_while_a_viewer_and_health_carry_on(start_server):
    # The budget is out of the way here: this is about what the cache shares.
    server = start_server({"SAMPLE_INTERVAL": "1", "HISTORY_BUILDS_PER_MINUTE": "100000"})
    stop = threading.Event()
    with SSEClient(server.port, headers=AUTH) as viewer:
        viewer.read_events(1)
        pump = threading.Thread(target=lambda: [viewer.pump(0.2) for _ in iter(stop.is_set, True)])
        pump.start()
        hits0, builds0, seq0 = cache_counts(server)
        answers, failures = [0], []

        def asker(seed: int) -> None:
            rnd = random.Random(seed)
            while not stop.is_set():
                # A minute, ten or an hour, give or take a fraction of a second, ending now or at
                # any moment after the newest sample: three answers per sample, however asked.
                seconds = rnd.choice((60, 600, 3600)) - rnd.random() * 0.99
                until = rnd.choice(("", f"&until={time.time() + rnd.random() * 1e6:.3f}"))
                status, _, body = history(server, f"seconds={seconds:.6f}{until}")
                if status != 200:
                    failures.append((status, body))
                answers[0] += 1

        askers = [threading.Thread(target=asker, args=(k,)) for k in range(8)]
        for t in askers:
            t.start()
        health = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            health.append(server.get("/healthz")[0])
            time.sleep(0.1)
        stop.set()
        for t in askers + [pump]:
            t.join(15)
        hits, builds, seq = cache_counts(server)
        hits, builds, samples = hits - hits0, builds - builds0, seq - seq0
        print(f"\n{answers[0]} answers over {samples} samples: {builds} built, {hits} from the cache")
        assert not failures, failures[:3]
        assert hits + builds == answers[0]
        assert builds <= 3 * (samples + 1), (builds, samples)
        assert hits >= 5 * builds, (hits, builds)
        assert health and set(health) == {200}
        seqs = [e.json["seq"] for e in viewer.events_of("metrics")]
        assert len(seqs) >= 3 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap


def test_a_login_over_its_history_budget_gets_429_with_retry_after(start_server):
    # One sample a minute, so nothing built here goes stale while the test runs.
    server = start_server({"SAMPLE_INTERVAL": "60", "HISTORY_BUILDS_PER_MINUTE": "8"})
    # 8 a minute, 2 at once: two new windows are built, the third is refused.
    assert history(server, "seconds=100")[0] == 200
    assert history(server, "seconds=200")[0] == 200
    status, headers, body = history(server, "seconds=300")
    assert status == 429
    assert body["error"]["code"] == "too_many_requests" and "HISTORY_BUILDS_PER_MINUTE" in body["error"]["message"]
    assert int(headers["Retry-After"]) == body["error"]["retry_after"] >= 1
    # What the cache holds costs nothing; another login has its own budget.
    assert history(server, "seconds=100")[0] == 200
    assert history(server, "seconds=199.5")[0] == 200  # the same answer as 200
    assert history(server, "seconds=300", token=OBSERVER)[0] == 200
    _, _, metrics = server.request("GET", "/metrics")
    refused = re.search(rb'^dashboard_refused_total\{reason="history_budget"\} (\S+)$', metrics, re.M)
    assert refused and float(refused.group(1)) == 1.0
    built = re.findall(rb'^dashboard_history_cache_total\{host="[^"]+",outcome="(\w+)"\} (\S+)$', metrics, re.M)
    assert dict(built) == {b"hit": b"2.0", b"build": b"3.0"}
