"""The agent's one loop on a real redis-server: shared settings at once, a Redis that goes and comes back,
a stop that hands the host over, and no sample numbered twice."""

import json
import os
import signal
import subprocess
import sys

import redis

from tests.support.server import REPO
from tests.support.waiting import eventually


def start_agent(url, tmp_path, name="edge-1", log="agent"):
    env = {**os.environ, "REDIS_URL": url, "SAMPLE_INTERVAL": "0.5", "SAMPLER_LEASE_SECONDS": "2",
           "PYTHONUNBUFFERED": "1"}
    out = open(tmp_path / f"{log}.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", name], cwd=REPO, env=env,
                             stdout=out, stderr=subprocess.STDOUT)
    out.close()
    return agent


def numbers(url, host="edge-1") -> list[int]:
    """The seq of every sample in the host's stream, in order (read with the app's own reader)."""
    from dashboard.store.redis_store import RedisStore

    return [json.loads(f["d"])["seq"] for _, f in RedisStore(url, "dash").backfill(host, 0) if f.get("t") == "metrics"]


def test_a_shared_setting_reaches_the_agent_through_its_channel_and_stop_hands_the_host_over(redis_server,
                                                                                            tmp_path):
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    agent = start_agent(redis_server.url, tmp_path)
    try:
        eventually(lambda: r.xlen("dash:host:edge-1") >= 2, 30, 0.1)
        holder = r.get("dash:lease:edge-1")
        assert holder and holder.split(":")[1] == str(agent.pid)
        # What `interval 2` from a console writes: the state, and a word on the control channel.
        r.hset("dash:state", "interval", "2")
        r.publish("dash:control", json.dumps({"state": {"interval": 2}}))
        eventually(lambda: json.loads(r.hget("dash:hosts", "edge-1"))["interval"] == 2.0, 10, 0.05)
        agent.send_signal(signal.SIGINT)
        assert agent.wait(15) == 0
        assert r.get("dash:lease:edge-1") is None  # released at once, not left to expire
    finally:
        agent.kill()
    log = (tmp_path / "agent.log").read_text()
    assert "stopped; released the lease for edge-1" in log and "Traceback" not in log


def test_redis_going_away_and_coming_back_is_waited_out_and_seq_goes_on(redis_server, tmp_path):
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    agent = start_agent(redis_server.url, tmp_path)
    try:
        eventually(lambda: r.xlen("dash:host:edge-1") >= 3, 30, 0.1)
        redis_server.stop()
        eventually(lambda: "retrying in about" in (tmp_path / "agent.log").read_text(), 20, 0.1)
        redis_server.start()  # the same port, and an empty Redis (persistence is off)
        r = redis.Redis.from_url(redis_server.url, decode_responses=True)
        eventually(lambda: r.xlen("dash:host:edge-1") >= 3, 40, 0.1)
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
    log = (tmp_path / "agent.log").read_text()
    assert log.count("publishing edge-1 to Redis") == 2 and "Traceback" not in log
    after = numbers(redis_server.url)
    assert after == sorted(set(after)) and after[0] > 1  # numbered on from what this process took before


def test_two_agents_for_one_host_sample_it_once_and_the_second_takes_over_when_the_first_stops(redis_server,
                                                                                                tmp_path):
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    first = start_agent(redis_server.url, tmp_path, log="first")
    eventually(lambda: r.xlen("dash:host:edge-1") >= 2, 30, 0.1)
    second = start_agent(redis_server.url, tmp_path, log="second")
    try:
        holder = r.get("dash:lease:edge-1")
        assert holder.split(":")[1] == str(first.pid)
        first.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0
        eventually(lambda: (r.get("dash:lease:edge-1") or "::").split(":")[1] == str(second.pid), 15, 0.05)
        count = r.xlen("dash:host:edge-1")
        eventually(lambda: r.xlen("dash:host:edge-1") >= count + 2, 15, 0.05)
    finally:
        for agent in (first, second):
            agent.kill()
            agent.wait(10)
    taken = numbers(redis_server.url)
    assert taken == list(range(taken[0], taken[0] + len(taken)))  # no gap, none twice
