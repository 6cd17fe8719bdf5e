"""The agent's small Redis client against a real redis-server: the same answers as redis-py
for every command the agent sends, errors the callers catch, reconnection, TLS and pub/sub."""

import os
import signal
import subprocess
import sys

import pytest
import redis

from dashboard.store import resp
from dashboard.store.redis_store import RedisStore
from tests.support.redis_server import RedisServer
from tests.support.server import REPO
from tests.support.waiting import eventually

SCRIPT = "return redis.call('incrby', KEYS[1], ARGV[1])"


def both(url):
    return (redis.Redis.from_url(url, decode_responses=True, socket_timeout=5),
            resp.Redis.from_url(url, decode_responses=True, socket_timeout=5))


def test_every_command_the_agent_sends_answers_as_redis_py_does(redis_server):
    big, small = both(redis_server.url)
    for client, p in ((big, "b"), (small, "s")):
        pipe = client.pipeline(transaction=False)
        pipe.xadd(f"{p}:st", {"t": "metrics", "d": '{"seq": 1}'}, minid="0-0", approximate=True)
        pipe.xadd(f"{p}:st", {"t": "notice", "d": "é"}, maxlen=100, approximate=True)
        pipe.hset(f"{p}:h", "k1", "v1")
        pipe.hset(f"{p}:h", mapping={"k2": "2", "k3": "x y"})
        pipe.set(f"{p}:procs", "[]", ex=60)
        assert len(pipe.execute()) == 5
        assert client.set(f"{p}:lease", "me", nx=True, px=2000) is True
        assert client.set(f"{p}:lease", "you", nx=True, px=2000) is None
        tx = client.pipeline()
        tx.incr(f"{p}:n")
        tx.lpush(f"{p}:l", "a", "b")
        tx.ltrim(f"{p}:l", 0, 9)
        assert tx.execute() == [1, 2, True]
    for a, b in [
        (big.hgetall("b:h"), small.hgetall("s:h")),
        ([f for _, f in big.xrange("b:st")], [f for _, f in small.xrange("s:st")]),
        ([f for _, f in big.xrevrange("b:st", count=1)], [f for _, f in small.xrevrange("s:st", count=1)]),
        (big.get("b:lease"), small.get("s:lease")),
        (big.hget("b:h", "k3"), small.hget("s:h", "k3")),
        (big.lrange("b:l", 0, -1), small.lrange("s:l", 0, -1)),
        (big.ping(), small.ping()),
        (big.get("nothing"), small.get("nothing")),
        (big.register_script(SCRIPT)(keys=["b:n"], args=[5]), small.register_script(SCRIPT)(keys=["s:n"], args=[5])),
    ]:
        assert a == b
    # A script Redis forgot is sent again whole (EVALSHA, then EVAL).
    small.execute_command("SCRIPT", "FLUSH")
    assert small.register_script(SCRIPT)(keys=["s:n"], args=[1]) == 7
    with pytest.raises(resp.ResponseError):
        small.execute_command("HSET", "s:lease", "f", "v")  # a string, not a hash
    assert small.get("s:lease") == "me"  # the connection is still good after an error reply


def test_lost_connections_are_oserrors_and_the_next_call_reconnects(tmp_path):
    server = RedisServer(tmp_path / "r").start()
    small = resp.Redis.from_url(server.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
    assert small.ping()
    port = server.port
    server.stop()
    with pytest.raises(OSError) as lost:
        small.ping()
    assert isinstance(lost.value, resp.RedisError)
    again = RedisServer(tmp_path / "r2", port=port).start()
    try:
        assert small.ping()
    finally:
        again.stop()


def test_pubsub_hands_out_messages_and_times_out_quietly(redis_server):
    big, small = both(redis_server.url)
    sub = small.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("dash:control", "dash:pushes")
    assert eventually(lambda: big.publish("dash:pushes", "hello") == 1, 10)
    msg = eventually(lambda: sub.get_message(timeout=1.0), 10)
    assert msg == {"type": "message", "channel": "dash:pushes", "data": "hello"}
    assert sub.get_message(timeout=0.2) is None
    sub.close()


def test_an_agent_over_tls_with_the_small_client_publishes(tmp_path):
    tls = RedisServer(tmp_path / "tls", tls=True).start()
    env = {**os.environ, "REDIS_URL": tls.url, "REDIS_TLS_VERIFY": "0", "SAMPLE_INTERVAL": "0.5",
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "agent.log", "wb")
    agent = subprocess.Popen([sys.executable, "-m", "dashboard.agent", "--host-name", "tls-1"],
                             cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        store = RedisStore(tls.url, tls_verify=False)
        eventually(lambda: store.r.xlen("dash:host:tls-1") >= 2, 30, 0.2)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
        assert store.holder("tls-1") is None  # released on the way out
        store.close()
    finally:
        agent.kill()
        log.close()
        tls.stop()
