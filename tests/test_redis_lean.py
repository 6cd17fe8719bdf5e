"""The agent's Redis client against redis-py on a real redis-server: the same calls give the same answers."""

import socket
import threading
import time

import pytest
import redis

from dashboard.store.redis_lean import LeanRedis, ReplyError
from dashboard.store.redis_trouble import refuses_writes


def both(url, **options):
    return redis.Redis.from_url(url, **options), LeanRedis.from_url(url, **options)


def calls(c, k, raw):
    """Every call the stores make, on keys under prefix k; the answers in order (bytes that are no
    UTF-8, `raw`, only where the answers are not decoded: redis-py raises on them, as the stores expect)."""
    out = [c.ping(), c.set(f"{k}s", "v", ex=60), c.set(f"{k}s", "w", nx=True), c.set(f"{k}l", "me", nx=True, px=5000),
           c.get(f"{k}s"), c.get(f"{k}none"), c.incr(f"{k}n"), c.incr(f"{k}n"), c.expire(f"{k}n", 60),
           c.expire(f"{k}none", 60), c.hset(f"{k}h", "a", "1"), c.hset(f"{k}h", mapping={"b": "2", "c": raw}),
           c.hget(f"{k}h", "a"), c.hget(f"{k}h", "z"), c.hgetall(f"{k}h"), c.hgetall(f"{k}none"),
           sorted(c.hkeys(f"{k}h")), c.hdel(f"{k}h", "a", "zz"), c.lpush(f"{k}list", "x", "y"),
           c.ltrim(f"{k}list", 0, 0), c.lrange(f"{k}list", 0, -1), c.publish(f"{k}chan", "hello"), c.xlen(f"{k}x")]
    first = c.xadd(f"{k}x", {"t": "metrics", "d": "é"}, id="1-1", minid="0-0", approximate=True)
    second = c.xadd(f"{k}x", {"z": raw}, id="2-1", maxlen=10, approximate=True)
    out += [first, second, c.xlen(f"{k}x"), c.xrange(f"{k}x"), c.xrange(f"{k}x", min="2-0", max="2-1"),
            c.xrevrange(f"{k}x", count=1), c.xread({f"{k}x": "1-1"}, count=10, block=10),
            c.xread({f"{k}x": "$"}, block=50), c.xread({f"{k}x": "0-0", f"{k}none": "0-0"}, count=1)]
    script = c.register_script("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', "
                               "KEYS[1], ARGV[2]) else return 0 end")
    out += [script(keys=[f"{k}l"], args=["me", 9000]), script(keys=[f"{k}l"], args=["you", 9000]),
            c.register_script("return false")(keys=[], args=[]),
            c.register_script("return {ARGV[1], 2}")(keys=[], args=["é"])]
    pipe = c.pipeline(transaction=False)
    pipe.hset(f"{k}p", "f", "1")
    pipe.xadd(f"{k}x", {"a": "b"}, id="3-1")
    pipe.set(f"{k}p2", "x", ex=10)
    out += [len(pipe), pipe.execute()]
    pipe = c.pipeline()
    pipe.lpush(f"{k}q", "1")
    pipe.hgetall(f"{k}h")
    pipe.xrevrange(f"{k}x", count=1)
    out += [pipe.execute(), c.pipeline().execute()]
    return out


@pytest.mark.parametrize("decode", [True, False])
def test_every_call_the_stores_make_answers_as_redis_py_does(redis_server, decode):
    py, lean = both(redis_server.url, decode_responses=decode, socket_timeout=5)
    raw = "ç\x00".encode() if decode else b"\xff\x00"
    expected = calls(py, "k:", raw)
    py.flushdb()
    assert calls(lean, "k:", raw) == expected
    lean.close()
    assert lean.get("k:s") == py.get("k:s")  # and again, on a new connection


def test_an_error_reply_is_raised_like_redis_pys_and_the_connection_goes_on(redis_server):
    py, lean = both(redis_server.url, decode_responses=True, socket_timeout=5)
    for c in (py, lean):
        c.set("str", "x")
        with pytest.raises((ReplyError, redis.ResponseError), match="WRONGTYPE"):
            c.hgetall("str")
        pipe = c.pipeline(transaction=False)
        pipe.set("after", "1")
        pipe.hset("str", "f", "v")
        with pytest.raises((ReplyError, redis.ResponseError), match="WRONGTYPE"):
            pipe.execute()
        assert c.get("after") == "1"  # the commands around the error ran
    with pytest.raises(ReplyError) as caught:
        lean.hgetall("str")
    assert isinstance(caught.value, OSError) and not refuses_writes(caught.value)


def test_a_redis_that_refuses_writes_is_told_apart(redis_server):
    py, lean = both(redis_server.url, decode_responses=True, socket_timeout=5)
    py.config_set("maxmemory", "1")
    try:
        for c in (py, lean):
            with pytest.raises((ReplyError, redis.OutOfMemoryError)) as caught:
                c.set("k", "v")
            assert refuses_writes(caught.value)
    finally:
        py.config_set("maxmemory", "0")


def test_pubsub_gets_what_is_published_and_waits_at_most_its_timeout(redis_server):
    py, lean = both(redis_server.url, decode_responses=True, socket_timeout=5)
    subs = [c.pubsub(ignore_subscribe_messages=True) for c in (py, lean)]
    for p in subs:
        p.subscribe("a", "b")
    deadline = time.monotonic() + 10
    while py.pubsub_numsub("a")[0][1] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    py.publish("b", "one")
    py.publish("a", "two")
    for p in subs:
        got = []
        while len(got) < 2:
            msg = p.get_message(timeout=5)
            if msg is not None:
                got.append((msg["type"], msg["channel"], msg["data"]))
        assert got == [("message", "b", "one"), ("message", "a", "two")]
        assert p.get_message(timeout=0.05) is None
        p.close()


def test_blocking_reads_wait_past_the_socket_timeout(redis_server):
    lean = LeanRedis.from_url(redis_server.url, decode_responses=True, socket_timeout=0.2)
    writer = redis.Redis.from_url(redis_server.url, decode_responses=True)
    threading.Timer(0.5, lambda: writer.lpush("later", "v")).start()
    assert lean.blpop(["later"], timeout=3) == ("later", "v")
    threading.Timer(0.5, lambda: writer.xadd("s", {"f": "v"}, id="5-0")).start()
    assert lean.xread({"s": "$"}, block=3000) == [["s", [("5-0", {"f": "v"})]]]


def test_a_password_and_a_database_in_the_url_are_used(redis_server):
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("requirepass", "s3cret")
    try:
        url = redis_server.url.replace("redis://", "redis://:s3cret@").removesuffix("/0") + "/3"
        lean = LeanRedis.from_url(url, decode_responses=True, socket_timeout=5)
        lean.set("k", "in three")
        assert redis.Redis.from_url(url, decode_responses=True).get("k") == "in three"
        wrong = LeanRedis.from_url(url.replace("s3cret", "nope"), socket_timeout=5)
        with pytest.raises(ReplyError, match="WRONGPASS|invalid password"):
            wrong.ping()
    finally:
        redis.Redis.from_url(redis_server.url.replace("redis://", "redis://:s3cret@")).config_set("requirepass", "")


def test_rediss_speaks_tls_and_checks_the_certificate_unless_told_not_to(tmp_path):
    from tests.support.redis_server import RedisServer

    tls = RedisServer(tmp_path / "tls", tls=True).start()
    try:
        lean = LeanRedis.from_url(tls.url, decode_responses=True, socket_timeout=5, ssl_cert_reqs=None)
        lean.set("k", "over tls")
        assert lean.get("k") == "over tls"
        strict = LeanRedis.from_url(tls.url, socket_timeout=5)  # its certificate is self-signed
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
            strict.ping()
    finally:
        tls.stop()


def test_a_redis_that_goes_away_is_an_oserror_and_the_next_call_connects_again():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    lean = LeanRedis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=5, socket_connect_timeout=5)

    def answer_then_hang_up(replies):
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(replies)
        conn.close()

    threading.Thread(target=answer_then_hang_up, args=(b"",), daemon=True).start()
    with pytest.raises(ConnectionError, match="closed the connection"):
        lean.ping()
    threading.Thread(target=answer_then_hang_up, args=(b"+PONG\r\n",), daemon=True).start()
    assert lean.ping() is True
    server.close()
    with pytest.raises(OSError):
        lean.ping()


def test_only_redis_urls_are_taken():
    with pytest.raises(ValueError, match="redis://, rediss:// or unix://"):
        LeanRedis.from_url("http://example.invalid/")
