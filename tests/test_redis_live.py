"""Scaling out on a real redis-server: workers, dynos, an agent, and Redis faults."""

import os
import signal
import subprocess
import sys
import time

import redis

from tests.support.browser import open_with_login_link
from tests.support.redis_server import RedisServer
from tests.support.server import REPO
from tests.support.sseclient import SSEClient
from tests.support.wsclient import TOKEN, Console
from tests.support.waiting import eventually


def shared_env(redis_server, **extra):
    env = {"REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-key-of-dynos", "SAMPLE_INTERVAL": "0.5",
           "SAMPLER_LEASE_SECONDS": "2", "HOST_STALE_SECONDS": "3"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(predicate, timeout=15.0, step=0.1):
    try:
        return eventually(predicate, timeout, step)
    except AssertionError:
        return predicate()


def seqs(events):
    return [e.json["seq"] for e in events]


def test_two_workers_share_one_sampler_one_stream_and_pushes(start_server, redis_server):
    server = start_server(shared_env(redis_server, WEB_CONCURRENCY=2, HOST_NAME="web-1"))
    assert len(server.workers()) == 2
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    holder = wait_until(lambda: r.get("dash:lease:web-1"))
    assert holder and int(holder.split(":")[1]) in {w.pid for w in server.workers()}
    # Many viewers land on either worker; all see the same ids and one seq per sample.
    clients = [SSEClient(server.port, path="/events?host=web-1") for _ in range(8)]
    runs = [c.read_events(5) for c in clients]
    by_id = {}
    for events in runs:
        for e in events:
            by_id.setdefault(e.last_event_id, e.json["seq"])
            assert by_id[e.last_event_id] == e.json["seq"]  # same id, same sample, every worker
    all_seqs = sorted(set(by_id.values()))
    assert all_seqs == list(range(all_seqs[0], all_seqs[0] + len(all_seqs)))  # one sampler, no duplicates
    for c in clients:
        c.close()
    # Consoles on different workers get each other's pushes.
    consoles = [Console(server.port, name=f"op{i}") for i in range(6)]
    consoles[0].ok("broadcast hello from one worker")
    for c in consoles[1:]:
        assert c.wait_push("notice")["message"] == "hello from one worker"
    assert consoles[2].ok("status")["mode"] == "shared through Redis"


def test_two_dynos_commands_and_resume_cross_over(start_server, redis_server):
    a = start_server(shared_env(redis_server, HOST_NAME="dyno-a"), name="a")
    b = start_server(shared_env(redis_server, HOST_NAME="dyno-b"), name="b")
    wait_until(lambda: {h["name"] for h in a.get("/api/hosts")[1]["hosts"]} >= {"dyno-a", "dyno-b"})
    with SSEClient(a.port, path="/events?host=dyno-a") as viewer:
        seen = viewer.read_events(3)
    last = seen[-1]
    time.sleep(1.5)
    # The router sends the reconnect to the other dyno: it resumes the same host's stream.
    with SSEClient(b.port, path="/events?host=dyno-a", headers={"Last-Event-ID": last.last_event_id}) as again:
        resumed = again.read_events(4)
        assert not again.events_of("resync")
        assert seqs(resumed)[0] == last.json["seq"] + 1
        assert seqs(resumed) == list(range(seqs(resumed)[0], seqs(resumed)[0] + len(resumed)))
        assert all(e.json["host"] == "dyno-a" for e in resumed)
        # A command given on dyno B changes what viewers of dyno A's stream see.
        Console(b.port, name="ops").ok("interval 0.25")
        again.wait_for(lambda c: c.events_of("config"), timeout=5)
        assert again.events_of("config")[0].json["interval"] == 0.25
        n = len(again.events_of("metrics"))
        again.read_events(n + 8)
        ts = [e.json["ts"] for e in again.events_of("metrics")[n:n + 8]]
        gaps = sorted(b2 - b1 for b1, b2 in zip(ts, ts[1:]))
        assert 0.15 < gaps[len(gaps) // 2] < 0.4
    with SSEClient(a.port, path="/events?host=dyno-a") as viewer_a:
        viewer_a.read_events(1)
    assert Console(a.port).ok("audit 50")["rows"][-1][4] == "interval 0.25"  # one audit log for all


def test_the_sampler_moves_when_its_worker_is_killed(start_server, redis_server):
    server = start_server(shared_env(redis_server, WEB_CONCURRENCY=2, HOST_NAME="web-1"))
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    holder = wait_until(lambda: r.get("dash:lease:web-1"))
    victim = int(holder.split(":")[1])
    with SSEClient(server.port, path="/events?host=web-1") as viewer:
        before = viewer.read_events(2)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # The dead holder cannot release its lease: by Redis's own clock it runs out within one TTL
        # (SAMPLER_LEASE_SECONDS=2), whatever the load. No expiry (-1) would mean never.
        left = r.pttl("dash:lease:web-1")
        assert left != -1 and left <= 2000, f"the lease has {left} ms left"
        # Then the others, asking every TTL/5, take it: about one TTL after the kill (2-3 s here). Waited
        # for generously, as a busy machine delays them; the failure mode is never, not late.
        new_holder = wait_until(lambda: (h := r.get("dash:lease:web-1")) and int(h.split(":")[1]) != victim and h,
                                timeout=30)
        took = time.monotonic() - killed_at
        assert new_holder, f"nobody took the sampler over in {took:.1f}s"
        assert took < 15, f"takeover took {took:.1f}s"  # a few TTLs at most, not whenever
    # Whatever worker serves the next viewer, the sequence continues where it stopped.
    with SSEClient(server.port, path="/events?host=web-1") as viewer:
        after = viewer.read_events(3)
    assert seqs(after)[0] > seqs(before)[-1]
    assert seqs(after) == list(range(seqs(after)[0], seqs(after)[0] + 3))


def test_an_agent_publishes_another_host(start_server, redis_server, tmp_path):
    server = start_server(shared_env(redis_server, HOST_NAME="web-1"))
    env = {**os.environ, "REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "0.5", "SAMPLER_LEASE_SECONDS": "2",
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", "db-1"],
                             cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        hosts = wait_until(lambda: {h["name"]: h for h in server.get("/api/hosts")[1]["hosts"]}
                           if "db-1" in str(server.get("/api/hosts")[1]) else None)
        assert hosts["db-1"]["role"] == "agent" and hosts["db-1"]["stale"] is False
        assert hosts["web-1"]["local"] is True
        with SSEClient(server.port, path="/events?host=db-1") as viewer:
            events = viewer.read_events(3)
        assert {e.json["host"] for e in events} == {"db-1"}
        status, history = server.get("/api/history?host=db-1&seconds=60")
        assert status == 200 and history["host"] == "db-1" and history["count"] >= 3
        op = Console(server.port)
        top = op.ok("top 3 --host db-1")
        assert len(top["rows"]) == 3
        assert op.error("top 3 --host nowhere")["code"] == "not_found"
        assert server.get("/api/snapshot?host=nowhere") == (404, {"error": {
            "code": "unknown_host", "message": "no host named 'nowhere'; see /api/hosts"}})
        # Alerts are evaluated where the samples are taken, for every host.
        op.ok("alert set cpu >= 0")
        firing = wait_until(lambda: [r for r in op.ok("alert list")["rows"] if "db-1" in str(r[3])])
        assert firing
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        assert redis.Redis.from_url(redis_server.url).get("dash:lease:db-1") is None  # released
        stale = wait_until(lambda: next(h for h in server.get("/api/hosts")[1]["hosts"]
                                        if h["name"] == "db-1")["stale"], timeout=10)
        assert stale
    finally:
        agent.kill()
        log.close()
    assert "publishing db-1 to Redis" in (tmp_path / "agent.log").read_text()


def test_redis_lost_and_back_while_serving(start_server, redis_server):
    server = start_server(shared_env(redis_server, HOST_NAME="web-1"))
    op = Console(server.port)
    op.ok("broadcast before")
    with SSEClient(server.port, path="/events?host=web-1") as viewer:
        viewer.read_events(2)
        redis_server.kill()
        # Viewers keep a live stream from this host's own sampler.
        n = len(viewer.events_of("metrics"))
        viewer.read_events(n + 4, timeout=20)
        health = wait_until(lambda: server.get("/healthz")[1]["redis"]["shared"] is False)
        assert health
        # A command that cannot be recorded is refused, not dropped.
        err = op.error("broadcast during the outage")
        assert err["code"] == "unavailable"
        assert server.get("/healthz")[0] == 200
        status, body = server.get("/api/alerts")  # its history lives in Redis
        assert status == 503 and body["error"]["code"] == "unavailable", body
        redis_server.start()  # same port, empty (persistence is off)
        assert wait_until(lambda: server.get("/healthz")[1]["redis"]["shared"], timeout=40)
        op2 = Console(server.port)
        assert op2.ok("broadcast after")["sent"]
        viewer.wait_for(lambda c: any(e.json["message"] == "after" for e in c.events_of("notice")), timeout=10)
        n = len(viewer.events_of("metrics"))
        viewer.read_events(n + 3, timeout=15)
    assert "Redis at redis://127.0.0.1" in server.log() and "is unreachable" in server.log()


def test_redis_unreachable_at_start_then_appears(start_server, tmp_path):
    later = RedisServer(tmp_path / "later")
    server = start_server({"REDIS_URL": later.url, "SECRET_KEY": "secret-key-for-tests", "SAMPLE_INTERVAL": "0.5",
                           "HOST_NAME": "web-1"})
    assert "is unreachable" in server.log()
    with SSEClient(server.port) as viewer:
        viewer.read_events(2)  # local metrics meanwhile
    assert Console(server.port).error("status")["code"] == "unavailable"
    later.start()
    try:
        assert wait_until(lambda: server.get("/healthz")[1]["redis"]["shared"], timeout=40)
        assert Console(server.port).ok("status")["mode"] == "shared through Redis"
    finally:
        later.stop()


def test_rediss_tls_urls_work(start_server, tmp_path):
    tls = RedisServer(tmp_path / "tls", tls=True).start()
    try:
        server = start_server({"REDIS_URL": tls.url, "REDIS_TLS_VERIFY": "0", "SECRET_KEY": "secret-key-for-tests",
                               "SAMPLE_INTERVAL": "0.5", "HOST_NAME": "web-1"})
        assert wait_until(lambda: server.get("/healthz")[1]["redis"]["shared"])
        assert Console(server.port).ok("status")["mode"] == "shared through Redis"
        with SSEClient(server.port, path="/events?host=web-1") as viewer:
            assert viewer.read_events(2)
        strict = start_server({"REDIS_URL": tls.url, "SECRET_KEY": "secret-key-for-tests", "HOST_NAME": "web-2"}, name="strict")
        # A self-signed certificate with verification on: refused, said so, served locally.
        time.sleep(1)
        health = strict.get("/healthz")[1]
        assert health["redis"]["shared"] is False and "certificate" in (health["redis"]["error"] or "").lower()
        assert strict.get("/api/snapshot")[0] == 200
    finally:
        tls.stop()


def test_logout_is_shared_between_dynos(start_server, redis_server):
    from tests.support.wsclient import handshake_status, login_cookie

    a = start_server(shared_env(redis_server, HOST_NAME="dyno-a"), name="a")
    b = start_server(shared_env(redis_server, HOST_NAME="dyno-b"), name="b")
    cookie = login_cookie(a.base, name="alice")
    assert handshake_status(b.port, token=None, cookie=cookie, origin=b.base) == 101
    a.request("POST", "/logout", body={}, headers={"Cookie": cookie, "Origin": a.base})
    assert handshake_status(b.port, token=None, cookie=cookie, origin=b.base) == 401
    records = Console(b.port).ok("audit 10")["rows"]
    assert [row[4] for row in records][-2:] == ["login", "logout"]


def test_the_page_lists_hosts_and_follows_the_one_picked(start_server, redis_server, tmp_path, browser,
                                                         page_errors):
    server = start_server(shared_env(redis_server, HOST_NAME="web-1"))
    env = {**os.environ, "REDIS_URL": redis_server.url, "SAMPLE_INTERVAL": "0.5", "PYTHONUNBUFFERED": "1"}
    agent = subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", "db-1"],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "db-1" in str(server.get("/api/hosts")[1]))
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = page_errors(context.new_page())
        open_with_login_link(page, f"{server.base}/?token={TOKEN}")
        page.wait_for_selector("#host-picker-label:not([hidden])", timeout=15000)
        options = page.locator("#host-picker option").all_inner_texts()
        assert options == ["web-1 (this server)", "db-1"]
        page.select_option("#host-picker", "db-1")
        page.wait_for_url("**/?host=db-1")
        page.wait_for_function("document.querySelector('#sse-pill').dataset.state === 'open'", timeout=10000)
        page.wait_for_function("window.dashboard.charts.store.ts.length >= 3", timeout=15000)
        assert page.inner_text("#host-name") == "db-1"
        assert page.title().startswith("db-1")
        page.goto(server.base + "/?host=nowhere")
        page.wait_for_selector(".banner[data-kind=offline]", timeout=5000)
        assert "No host named" in page.inner_text(".banner[data-kind=offline]")
        context.close()
        # The unknown host's history answered 404: the one error Chromium reports.
        assert page_errors.errors == [
            "console: Failed to load resource: the server responded with a status of 404 (NOT FOUND)"]
    finally:
        agent.kill()
