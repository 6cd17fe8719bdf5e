"""Asks to another host's sampler over a real redis-server: answered once by the lease holder,
refused when stale, ignored when malformed, and the asker gives up in its time; what a host
does with an ask (restart a container) decided by that host's own settings."""

import json
import threading
import time

import pytest

from dashboard.control.build import host_asks
from dashboard.fleet.asks import Asks, NoAnswer
from dashboard.store.redis_store import RedisStore


class FakeContainers:
    def __init__(self, fail=None):
        self.restarted = []
        self.fail = fail

    def find(self, name):
        if name != "web":
            raise LookupError(f"no running container named {name!r} on this host; see 'containers'")
        return "abcdef0123456789"

    def restart(self, cid, wait):
        if self.fail:
            raise self.fail
        self.restarted.append((cid, wait))


@pytest.fixture
def pair(redis_server):
    store = RedisStore(redis_server.url, "t")
    holding = {"edge": True}
    seen = []

    def act(ask):
        seen.append(ask)
        return {"ok": True, "did": ask["do"]}

    edge = Asks(store, "edge", act, lambda: holding["edge"])
    edge.read_ms = 200
    runner = threading.Thread(target=edge.run, daemon=True)  # sockets here are not gevent's
    runner.start()
    time.sleep(0.3)  # its first blocking read is waiting
    yield Asks(store, "front", None, lambda: True), edge, holding, seen, store
    edge.stopped = True
    runner.join(10)
    store.close()


def test_an_ask_is_answered_by_the_host_holding_the_lease_and_not_by_others(pair):
    asker, edge, holding, seen, store = pair
    assert asker.ask("edge", {"do": "ping", "by": "alice"}, timeout=5) == {"ok": True, "did": "ping"}
    assert seen[0]["by"] == "alice" and len(seen[0]["id"]) == 16
    holding["edge"] = False  # another process samples edge now: this one stays quiet
    with pytest.raises(NoAnswer, match="edge did not answer within 1 s"):
        asker.ask("edge", {"do": "ping"}, timeout=1)
    assert len(seen) == 1
    with pytest.raises(NoAnswer):
        asker.ask("nowhere", {"do": "ping"}, timeout=1)


def test_a_stale_or_malformed_ask_is_never_acted_on(pair):
    asker, edge, holding, seen, store = pair
    old = {"do": "ping", "id": "0123456789abcdef", "at": time.time() - 60}
    assert edge.answer(json.dumps(old))["code"] == "stale"
    assert json.loads(store.r.lpop(store.key("reply", old["id"])))["code"] == "stale"
    for bad in ("{", "[]", json.dumps({"id": "../../x", "at": time.time()}), json.dumps({"at": time.time()}), None):
        assert edge.answer(bad) is None
    assert seen == []


def test_an_act_that_fails_is_a_reply_and_the_loop_goes_on(pair, redis_server):
    asker, edge, holding, seen, store = pair
    edge.act = lambda ask: 1 / 0
    assert asker.ask("edge", {"do": "ping"}, timeout=5)["code"] == "internal"
    edge.act = lambda ask: {"ok": True}
    assert asker.ask("edge", {"do": "ping"}, timeout=5) == {"ok": True}


def test_a_host_restarts_only_what_its_own_settings_allow(redis_server):
    store = RedisStore(redis_server.url, "t")
    now = time.time()
    ask = {"do": "container restart", "name": "web", "wait": 3, "by": "alice", "at": now}
    containers = FakeContainers()
    act = host_asks(store, "edge", containers, True, lambda: True).act
    assert act(ask) == {"ok": True, "id": "abcdef012345", "name": "web", "restarted": True}
    assert containers.restarted == [("abcdef0123456789", 3)]
    refused = host_asks(store, "edge", containers, False, lambda: True).act(ask)
    assert refused["code"] == "forbidden" and "ALLOW_PROCESS_CONTROL=0 there" in refused["message"]
    assert act({**ask, "name": "db"})["code"] == "not_found"
    for bad in ({**ask, "wait": 61}, {**ask, "wait": "3"}, {**ask, "wait": True}, {**ask, "name": ""}):
        assert act(bad)["code"] == "bad_args"
    assert act({**ask, "do": "rm -rf"})["code"] == "bad_args"
    engine_down = host_asks(store, "edge", FakeContainers(fail=OSError("no socket")), True, lambda: True).act
    assert engine_down(ask)["code"] == "unavailable"
    assert len(containers.restarted) == 1
    store.close()
