"""Notifications without a server: messages, URL checks, masking, the store, the commands, one delivery loop."""

import json
import time

import pytest

from dashboard.alerts import notify, urls
from dashboard.alerts.delivery import Notifier
from dashboard.alerts.rules import Rule, RuleState
from dashboard.console import commands
from dashboard.console.commands import CommandError, Context
from dashboard.console.operator import Operator
from dashboard.store.notify_sqlite import SqliteNotifyStore
from tests.conftest import TOKEN
from tests.support.receivers import JsonReceiver

SECRET_URL = "json://hookuser:pw-Zq81xKp@127.0.0.1:{port}/hook?+X-Api-Key=key-Hh27Yq3m"
SAMPLE = {
    "ts": 1795000000.0, "seq": 7, "host": "web-1",
    "processes": {"count": 3,
                  "top_cpu": [{"pid": i, "name": f"burner{i}", "user": "u", "cpu": 99.0 - i, "rss": i * 2**20}
                              for i in range(1, 8)],
                  "top_mem": [{"pid": 100 + i, "name": f"hog{i}", "user": "u", "cpu": 1.0, "rss": (9 - i) * 2**30}
                              for i in range(1, 8)]},
}


def rule():
    return Rule("a1", "cpu", ">", 90, 30, "alice")


def test_the_title_value_threshold_since_and_top_five_of_the_triggering_sample():
    t = notify.transition(rule(), RuleState("firing", 1794999970.0, 97.5), "firing", "web-1", SAMPLE)
    assert t["title"] == "[FIRING] cpu > 90 % for 30 s on web-1"
    assert [p["name"] for p in t["evidence"]["top_cpu"]] == [f"burner{i}" for i in range(1, 6)]
    assert [p["pid"] for p in t["evidence"]["top_mem"]] == [101, 102, 103, 104, 105]
    t["link"] = notify.link("https://dash.example.com/", "t4", t["ts"])
    title, body = notify.compose([t])
    assert title == t["title"]
    assert "Value: 97.5 % (threshold > 90 %)" in body
    assert "Since: 2026-11-18 11:06:10 UTC; firing at 2026-11-18 11:06:40 UTC" in body
    assert "burner5" in body and "burner6" not in body and "hog5" in body and "hog6" not in body
    assert "Dashboard: https://dash.example.com/?alert=t4#t=1795000000" in body


def test_a_group_is_one_message_naming_every_transition():
    ts = [notify.transition(rule(), RuleState("firing", 1.0, 95), s, "web-1", {**SAMPLE, "ts": 1795000000.0 + i})
          for i, s in enumerate(["firing", "resolved"] * 3)]
    title, body = notify.compose(ts)
    assert title == "[6 CHANGES] 3 firing, 3 resolved on web-1"
    assert body.count("[FIRING] cpu > 90 % for 30 s on web-1") >= 3
    assert body.count("[RESOLVED]") >= 3


@pytest.mark.parametrize("url", [
    "json://169.254.169.254/latest/meta-data", "json://[fd00:ec2::254]/x", "json://2852039166/x",
    "mailto://127.0.0.1?smtp=169.254.169.254&from=a@example.com&to=b@example.com",
    "json://[fe80::1]/x", "json://[::ffff:169.254.169.254]/x",
])
def test_link_local_and_metadata_addresses_are_refused(url):
    with pytest.raises(ValueError, match="refused: .* is a (link-local|cloud metadata) address"):
        notify.check_url(url)


@pytest.mark.parametrize("url", ["json://127.0.0.1:9/x", "json://10.1.2.3/x", "json://[::1]:9/x",
                                 "mailto://127.0.0.1:25?from=a@example.com&to=b@example.com"])
def test_loopback_and_private_addresses_are_allowed(url):
    assert notify.check_url(url) == url


def test_unknown_schemes_are_refused_without_echoing_the_url():
    with pytest.raises(ValueError) as err:
        notify.check_url("bogus://secret-token-abc@x")
    assert "secret-token-abc" not in str(err.value)


def test_masking_hides_passwords_tokens_and_header_values():
    url = SECRET_URL.format(port=8080)
    shown = notify.mask(url)
    assert "pw-Zq81xKp" not in shown and "key-Hh27Yq3m" not in shown and "127.0.0.1:8080" in shown
    assert "123456789" not in notify.mask("tgram://123456789:AAHsecretbottoken/42/")
    assert notify.scrub("posting with pw-Zq81xKp and key-Hh27Yq3m failed", [url]) == "posting with *** and *** failed"
    assert commands.masked(f"notify add {url} --name x") == f"notify add {shown} --name x"
    assert commands.masked("notify add bogus://tok-1234@h").startswith("notify add bogus://***@***#fp:")
    assert "tok-1234" not in commands.masked("notify add bogus://tok-1234@h")
    assert commands.masked("status") == "status"
    assert "pw-Zq81xKp" not in commands.masked(f"NOTIFY add {url}")
    assert "pw-Zq81xKp" not in commands.masked(f"notify ad {url}")


def test_masks_show_scheme_host_query_key_names_and_a_keyed_fingerprint_never_path_secrets():
    hook = "json://127.0.0.1:8080/hooks/T0PS3CR3T-path?+X-Api-Key=key-Hh27Yq3m&to=ops"
    shown = notify.mask(hook)
    assert shown.startswith("json://127.0.0.1:8080/***?+X-Api-Key=***&to=***#fp:")
    assert "T0PS3CR3T" not in shown and "hooks" not in shown and "key-Hh27Yq3m" not in shown
    # An ntfy topic is a secret, as host (ntfy://topic) or path (ntfy://host/topic); so are service tokens.
    assert "my-secret-topic" not in notify.mask("ntfy://my-secret-topic")
    assert notify.mask("ntfys://ntfy.example.com/my-secret-topic").startswith("ntfys://ntfy.example.com/***#fp:")
    assert "TokenA" not in notify.mask("slack://TokenA/TokenB/TokenC/#ops")
    assert "AAHsecret" not in notify.mask("tgram://123456789:AAHsecret/42/")
    # The fingerprint tells two URLs apart (same host, other path), is stable, and depends on the key.
    other = hook.replace("T0PS3CR3T", "another")
    assert notify.mask(other) != shown and notify.mask(hook) == shown
    urls.set_fingerprint_key("a-different-secret-key")
    try:
        assert notify.mask(hook) != shown
    finally:
        urls.set_fingerprint_key(TOKEN)
    line = commands.masked(f"notify add {hook} --name x")
    assert "T0PS3CR3T" not in line and line.endswith(" --name x")
    assert notify.scrub("POST /hooks/T0PS3CR3T-path failed", [hook]) == "POST /***/*** failed"


def test_durations():
    assert notify.parse_duration("90") == 90 and notify.parse_duration("15m") == 900
    assert notify.parse_duration("2h") == 7200 and notify.parse_duration("1d") == 86400
    for bad in ("0", "31d", "soon", "-5m"):
        with pytest.raises(ValueError):
            notify.parse_duration(bad)


def test_the_sqlite_store_keeps_everything_across_reopening(tmp_path):
    path = str(tmp_path / "d" / "notify.sqlite3")
    store = SqliteNotifyStore(path)
    store.add_channel("hook", "json://127.0.0.1:9/x", "alice")
    with pytest.raises(ValueError):
        store.add_channel("hook", "json://127.0.0.1:9/y", "bob")
    t = store.record({"ts": 5.0, "state": "firing", "rule": {"id": "a1"}}, ["hook"])
    store.add_silence({"rule": "a1", "until": time.time() + 60, "reason": "deploy"})
    store.note("hook", False, "down")
    store.close()
    store = SqliteNotifyStore(path)
    assert [c["name"] for c in store.channels()] == ["hook"]
    assert store.history(5)[0]["id"] == t["id"] == "t1"
    [entry] = store.outbox()
    assert entry["transition"]["id"] == "t1" and entry["channel"] == "hook"
    assert store.silences()[0]["reason"] == "deploy"
    assert store.status()["hook"]["last_error"] == "down"
    store.reschedule([entry["id"]], 3, 99.0)
    assert store.outbox()[0]["attempts"] == 3
    store.done([entry["id"]])
    assert store.outbox() == []
    assert store.remove_channel("hook")["url"] == "json://127.0.0.1:9/x"
    assert store.clear_silence("s1")["rule"] == "a1" and store.clear_silence("s1") is None


def test_the_loop_groups_retries_and_gives_up(tmp_path):
    receiver = JsonReceiver()  # not started yet: down
    store = SqliteNotifyStore(str(tmp_path / "n.sqlite3"))
    n = Notifier(store, env_urls=[receiver.url()], group_seconds=5, retry_hours=1, timeout=5)
    base = time.time()
    for i, change in enumerate(["firing", "resolved", "firing"]):
        n.record(rule(), RuleState("firing", base, 95), change, "web-1", {**SAMPLE, "ts": base + i})
    n.step(now=base + 3)  # the group is still open
    assert store.outbox()[0]["attempts"] == 0
    n.step(now=base + 6)  # sent, but the receiver is down
    assert {e["attempts"] for e in store.outbox()} == {1}
    assert n.channels()[0]["last_error"]
    receiver.start()
    try:
        n.step(now=base + 6.5)  # backoff not over
        assert receiver.posts == []
        n.step(now=base + 8)
        [post] = receiver.wait(1)
        assert post["json"]["title"].startswith("[3 CHANGES]")
        assert store.outbox() == [] and n.channels()[0]["last_ok"] is not None
        n.record(rule(), RuleState("firing", base, 95), "resolved", "web-1", SAMPLE)
        n.step(now=time.time() + 3 * 3600)  # older than NOTIFY_RETRY_HOURS
        assert store.outbox() == [] and n.counts["given_up"] == 1 and len(receiver.posts) == 1
    finally:
        receiver.stop()


def test_an_attempt_that_ends_while_the_outbox_is_read_is_not_sent_again(tmp_path, monkeypatch):
    """Two dynos once got one RESOLVED twice: a round read the outbox, the attempt under way for
    the channel ended meanwhile (marking its entry done), and the round sent the entry again."""
    import gevent

    store = SqliteNotifyStore(str(tmp_path / "n.sqlite3"))
    n = Notifier(store, env_urls=["json://127.0.0.1:9/x"], group_seconds=0)
    sent = []
    monkeypatch.setattr(n, "send", lambda url, title, body: (sent.append(title), (True, None))[1])
    n.record(rule(), RuleState("firing", 1.0, 95), "resolved", "web-1", {**SAMPLE, "ts": time.time()})
    n.step(wait=False)  # the attempt is spawned, not run yet
    read = store.outbox

    def slow_read():
        rows = read()
        gevent.sleep(0)  # the read yields: the attempt runs to its end meanwhile
        return rows

    monkeypatch.setattr(store, "outbox", slow_read)
    n.step(wait=True)
    gevent.sleep(0)
    assert sent == ["[RESOLVED] cpu > 90 % for 30 s on web-1"] and read() == []


def test_a_silenced_rule_is_recorded_but_not_queued(tmp_path):
    store = SqliteNotifyStore(str(tmp_path / "n.sqlite3"))
    n = Notifier(store, env_urls=["json://127.0.0.1:9/x"], group_seconds=0)
    n.add_silence("a1", 60, "maintenance", "alice")
    t = n.record(rule(), RuleState("firing", 1.0, 95), "firing", "web-1", SAMPLE)
    assert t["silenced"]["reason"] == "maintenance" and store.outbox() == []
    assert store.history(1)[0]["silenced"]["id"] == "s1"


# ---- the commands, through the registry ----------------------------------------------------


@pytest.fixture
def ctx(svc):
    svc.sampler.tick()
    return Context(Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")


def run(ctx, line):
    cmd, values = commands.resolve(line, ctx.operator)
    result = commands.run(ctx, cmd, values)
    json.dumps(result)
    return result


def fails(ctx, line, code):
    with pytest.raises(CommandError) as err:
        run(ctx, line)
    assert err.value.code == code, (err.value.code, err.value.message)
    return err.value


def test_notify_commands(ctx, svc):
    url = SECRET_URL.format(port=9)
    added = run(ctx, f"notify add {url} --name hook")
    assert added == {"name": "hook", "url": notify.mask(url)}
    assert run(ctx, "notify add json://127.0.0.1:9/other")["name"] == "json"
    fails(ctx, f"notify add {url} --name hook", "bad_args")
    fails(ctx, "notify add json://169.254.169.254/x", "bad_args")
    fails(ctx, "notify add json://127.0.0.1:9/x --name 'bad name'", "bad_args")
    listing = json.dumps(run(ctx, "notify list"))
    assert "pw-Zq81xKp" not in listing and "key-Hh27Yq3m" not in listing and "hook" in listing
    [[name, ok, error]] = run(ctx, "notify test hook")["rows"]
    assert name == "hook" and ok is False and "pw-Zq81xKp" not in error
    fails(ctx, "notify test nosuch", "not_found")
    assert run(ctx, "notify remove hook")["removed"]["name"] == "hook"
    fails(ctx, "notify remove hook", "not_found")
    observer = Context(Operator("bob", "observer", "s2", "x", "bearer"), svc.ops)
    fails(observer, "notify add json://127.0.0.1:9/x", "forbidden")
    assert run(observer, "notify list")["columns"][0] == "name"


def test_silence_and_history_commands(ctx, svc):
    rid = run(ctx, "alert set cpu >= 0")["id"]
    svc.sampler.tick()
    s = run(ctx, f"silence {rid} 15m deploy in progress")
    assert s["rule"] == rid and s["reason"] == "deploy in progress" and s["until"] > time.time() + 890
    fails(ctx, "silence a999 15m", "not_found")
    fails(ctx, f"silence {rid} forever", "bad_args")
    assert run(ctx, "silence list")["rows"][0][:2] == [s["id"], rid]
    svc.sampler.tick()
    run(ctx, f"alert clear {rid}")
    history = run(ctx, "alert history 5")
    states = [row[2] for row in history["rows"]]
    assert states[:2] == ["resolved", "firing"] and history["rows"][0][6] == "yes"
    assert run(ctx, f"silence clear {s['id']}")["cleared"] == s["id"]
    fails(ctx, f"silence clear {s['id']}", "not_found")
    fails(ctx, "alert history 0", "bad_args")


def test_api_alerts_lists_transitions_with_their_evidence(client, svc, ctx):
    run(ctx, "alert set memory > 0")
    svc.sampler.tick()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = client.get("/api/alerts", headers=headers).get_json()
    [t] = body["transitions"]
    assert t["state"] == "firing" and t["title"].startswith("[FIRING] memory > 0 %")
    assert t["evidence"]["top_cpu"] and len(t["evidence"]["top_mem"]) <= 5
    assert body["rules"][0]["firing"] == [svc.host]
    assert client.get("/api/alerts?n=0", headers=headers).status_code == 400
    assert client.get("/api/alerts?n=x", headers=headers).get_json()["error"]["code"] == "bad_request"


def test_the_redis_store_keeps_the_same_and_lets_one_process_deliver(store):
    from dashboard.store.notify_redis import RedisNotifyStore

    one, two = RedisNotifyStore(store), RedisNotifyStore(store)
    one.add_channel("hook", "json://127.0.0.1:9/x", "alice")
    with pytest.raises(ValueError):
        two.add_channel("hook", "json://127.0.0.1:9/y", "bob")
    t = one.record({"ts": 5.0, "state": "firing", "rule": {"id": "a1"}}, ["hook"])
    assert two.history(5)[0]["id"] == t["id"] and two.outbox()[0]["transition"]["id"] == t["id"]
    assert one.claim_delivery("p1", 30) and one.claim_delivery("p1", 30)  # renews its own
    assert not two.claim_delivery("p2", 30)
    two.release_delivery("p2")  # not its lease: nothing happens
    assert not two.claim_delivery("p2", 30)
    one.release_delivery("p1")
    assert two.claim_delivery("p2", 30)
    [entry] = two.outbox()
    two.reschedule([entry["id"]], 2, 50.0)
    assert one.outbox()[0]["attempts"] == 2
    two.note("hook", True)
    assert one.status()["hook"]["sent"] == 1
    s = one.add_silence({"rule": "all", "until": time.time() + 60})
    assert [x["id"] for x in two.silences()] == [s["id"]]
    assert two.clear_silence(s["id"])["rule"] == "all" and one.silences() == []
    assert one.remove_channel("hook")["name"] == "hook" and two.outbox() == [] and two.channels() == []


def test_an_agent_queues_for_the_channels_the_deliverer_announces_without_their_urls(redis_server):
    """The delivering web process names its NOTIFY_URLS channels in Redis; an agent (its own client,
    no NOTIFY_URLS) records a transition for them and the console's, and the web process sends it."""
    from dashboard.alerts.recording import Recorder
    from dashboard.store.notify_redis import RedisNotifyStore
    from dashboard.store.redis_store import RedisStore

    receiver = JsonReceiver().start()
    try:
        web = RedisNotifyStore(RedisStore(redis_server.url, "t"))
        web.add_channel("hook", "json://127.0.0.1:9/x", "alice")
        agent = RedisNotifyStore(RedisStore(redis_server.url, "t", lean=True))
        recorder = Recorder(agent, agent.announced_env)
        n = Notifier(web, env_urls=[receiver.url()], group_seconds=0)
        early = recorder.record(rule(), RuleState("firing", 1.0, 95), "firing", "db-1", {**SAMPLE, "ts": time.time()})
        assert early["channels"] == ["hook"]  # nothing announced yet: the shared channels only
        web.done([e["id"] for e in web.outbox()])
        n.step()  # the deliverer's round: it announces env1
        assert agent.announced_env() == ["env1"]
        t = recorder.record(rule(), RuleState("firing", 1.0, 95), "resolved", "db-1", {**SAMPLE, "ts": time.time()})
        assert t["channels"] == ["env1", "hook"]
        n.step()
        [post] = receiver.wait(1)
        assert post["json"]["title"] == "[RESOLVED] cpu > 90 % for 30 s on db-1"
    finally:
        receiver.stop()
