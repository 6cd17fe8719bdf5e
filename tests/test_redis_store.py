"""The Redis layer against a real redis-server."""

import json
import time

from dashboard.store.audit import Record, RedisAuditLog
from dashboard.store.redis_trouble import redacted
from tests.support.waiting import eventually


def test_samples_and_events_share_one_ordered_stream_per_host(store):
    id1 = store.add_sample("h1", '{"seq": 1}', "[]", {"role": "web", "interval": 1})
    ids = store.add_event(["h1", "h2"], "notice", '{"message": "hi"}')
    entries = store.backfill("h1")
    assert [e[0] for e in entries] == [id1, ids["h1"]]
    assert [e[1]["t"] for e in entries] == ["metrics", "notice"]
    assert [e[1]["t"] for e in store.backfill("h2")] == ["notice"]
    assert store.last_seq("h1") == 1
    assert store.hosts()["h1"]["role"] == "web" and store.hosts()["h1"]["last_seen"] > 0
    read = store.read({"h1": id1}, block_ms=10)
    assert [(store.host_of(k), [e[0] for e in v]) for k, v in read] == [("h1", [ids["h1"]])]


def test_streams_are_trimmed_to_the_history(store):
    store.resume_ms = 100
    store.add_event(["h"], "notice", "{}")
    time.sleep(0.25)
    store.add_event(["h"], "notice", "{}")
    assert len(store.backfill("h")) == 1


def test_a_lease_is_held_by_one_and_expires(store):
    assert store.acquire("h", "a", 0.3)
    assert not store.acquire("h", "b", 0.3)
    assert not store.renew("h", "b", 0.3)
    assert store.renew("h", "a", 0.3)
    assert not store.release("h", "b") and store.holder("h") == "a"
    time.sleep(0.4)
    assert store.acquire("h", "b", 5) and store.holder("h") == "b"
    assert store.release("h", "b") and store.holder("h") is None


def test_state_rules_and_pushes(store):
    pubsub = store.pubsub()
    store.set_state(interval=0.5, paused=True)
    assert store.state() == {"interval": 0.5, "paused": True}
    rule = store.add_rule({"metric": "cpu", "op": ">", "threshold": 90, "hold": 0, "by": "a"})
    assert rule["id"] == "a1" and store.rules()["a1"]["metric"] == "cpu"
    store.save_alert_state("a1", "h", {"state": "firing", "since": 1.0, "value": 95.0})
    assert store.alert_states() == {("a1", "h"): {"state": "firing", "since": 1.0, "value": 95.0}}
    store.push('{"type": "notice"}')
    seen = []

    def three_messages():
        msg = pubsub.get_message(timeout=0.2)
        if msg:
            seen.append(msg["channel"].split(":")[-1])
        return len(seen) >= 3

    eventually(three_messages, interval=0, what="three messages on the channels")
    assert seen == ["control", "control", "pushes"]
    assert store.remove_rule("a1")["metric"] == "cpu"
    assert store.rules() == {} and store.alert_states() == {}
    assert store.remove_rule("a1") is None
    pubsub.close()


def test_audit_records_and_their_outcomes(store):
    log = RedisAuditLog(store)
    first = log.append(Record("alice", "operator", "s1", "1.2.3.4", "interval", "interval 2", "pending"))
    log.settle(first, "ok")
    log.append(Record("bob", "observer", "s2", "1.2.3.5", "status", "status", "ok"))
    rows = log.latest(10)
    assert [(r["operator"], r["line"], r["outcome"]) for r in rows] == [
        ("alice", "interval 2", "ok"), ("bob", "status", "ok")]
    assert log.latest(1)[0]["operator"] == "bob"
    log.revoke("sess", time.time() + 60)
    log.revoke("old", time.time() - 1)
    assert log.is_revoked("sess") and not log.is_revoked("old") and not log.is_revoked("other")


def test_passwords_never_reach_the_log():
    assert redacted("rediss://h:s3cret@host:6380/0") == "rediss://h:***@host:6380/0"
    assert redacted("redis://localhost:6379") == "redis://localhost:6379"
    assert "s3cret" not in redacted("redis://:s3cret@host")
    json.dumps(redacted("redis://:x@h"))


def test_the_holder_writes_the_full_process_table_at_most_every_table_seconds(monkeypatch):
    from types import SimpleNamespace

    from dashboard.alerts.rules import Alerts
    from dashboard.fleet import lease

    written = []
    store = SimpleNamespace(add_sample=lambda host, data, procs, info, also=None: written.append(procs),
                            history_seconds=3600)
    built = []
    sampling = lease.HostSampling(store, "h1", SimpleNamespace(interval=1.0, paused=False), Alerts(),
                                  lease_seconds=5, role="web", publish_event=lambda e: None,
                                  table_rows=lambda: built.append(1) or [{"pid": 1}])
    now = [100.0]
    monkeypatch.setattr(lease.time, "monotonic", lambda: now[0])
    for _ in range(5):  # five samples a second apart: one table
        sampling.publish({"seq": 1}, '{"seq": 1}')
        now[0] += 1.0
    assert written == ['[{"pid":1}]', None, None, None, None] and len(built) == 1
    sampling.publish({"seq": 2}, '{"seq": 2}')  # TABLE_SECONDS later: the next one
    assert written[-1] == '[{"pid":1}]' and len(built) == 2
