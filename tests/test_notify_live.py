"""Alert notifications against the real server and real receivers (an HTTP server, an SMTP server)."""

import json
import sqlite3
import time
import urllib.request

import pytest
import redis

from tests.conftest import TOKEN
from tests.support.receivers import JsonReceiver, SmtpReceiver
from tests.support.wsclient import Console
from tests.support.waiting import eventually

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FAST = {"SAMPLE_INTERVAL": "0.25", "NOTIFY_GROUP_SECONDS": "0", "HOST_NAME": "web-1"}


def api(server, path):
    req = urllib.request.Request(server.base + path, headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read()
    return json.loads(body) if path.startswith("/api") else body.decode()


def wait_until(predicate, timeout=20.0, step=0.1):
    """predicate()'s first truthy value within timeout, else its last value (the caller asserts on it)."""
    try:
        return eventually(predicate, timeout, step)
    except AssertionError:
        return predicate()


def outbox_left(server, redis_url: str | None = None) -> int:
    """Entries still waiting in the notification outbox. An entry leaves it only once its send is
    over, so when it is empty and no rule can change any more, nothing else can be sent: a
    duplicate would be at the receiver already. (Instead of sleeping "long enough".)"""
    if redis_url:
        return redis.Redis.from_url(redis_url).hlen("dash:notify:outbox")
    db = sqlite3.connect(server.tmp / f"data-{server.name}" / "notify.sqlite3")
    try:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    finally:
        db.close()


def settled(server, redis_url: str | None = None) -> None:
    eventually(lambda: outbox_left(server, redis_url) == 0, 30, 0.1, what="the outbox emptied",
               ignoring=(sqlite3.OperationalError,))  # the app writing its file at that moment


def titles(receiver):
    return [p["json"]["title"] for p in receiver.posts]


def delivered(receiver):
    """Every transition the receiver was told of: one per message, or each line of a grouped one."""
    out = []
    for post in receiver.posts:
        title, body = post["json"]["title"], post["json"]["message"]
        if "CHANGES]" not in title:
            out.append(title)
            continue
        for line in body.split("\n\n")[0].splitlines()[1:]:
            out.append(line.split("  ", 1)[1])
    return out


@pytest.fixture
def hook():
    receiver = JsonReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def mailbox():
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


def test_firing_and_resolved_reach_a_webhook_and_a_mailbox_once_each_with_the_evidence(start_server, hook, mailbox):
    server = start_server({**FAST, "NOTIFY_URLS": f"{hook.url()} , {mailbox.url()}",
                           "PUBLIC_URL": "https://dash.example.com/"})
    op = Console(server.port)
    rid = op.ok("alert set memory > 0")["id"]
    assert op.wait_push("alert")["state"] == "firing"
    [fired] = hook.wait(1)
    assert mailbox.wait(1)
    op.ok(f"alert clear {rid}")
    hook.wait(2)
    mailbox.wait(2)
    settled(server)  # the rule is gone: nothing more can come
    assert titles(hook) == ["[FIRING] memory > 0 % on web-1", "[RESOLVED] memory > 0 % on web-1"]
    assert [m["Subject"] for m in mailbox.messages] == titles(hook)
    # What was sent is what was kept: the top processes of the sample that fired it.
    history = api(server, "/api/alerts")["transitions"]
    assert [t["state"] for t in history] == ["resolved", "firing"]
    kept = history[1]
    assert len(kept["evidence"]["top_cpu"]) == 5 and len(kept["evidence"]["top_mem"]) == 5
    body = fired["json"]["message"]
    mail = SmtpReceiver.text(mailbox.messages[0])
    for proc in kept["evidence"]["top_cpu"] + kept["evidence"]["top_mem"]:
        assert proc["name"][:24] in body and proc["name"][:24] in mail
    assert "Value: " in body and "(threshold > 0 %)" in body and "Since: " in body
    assert f"Dashboard: https://dash.example.com/?alert={kept['id']}#t=" in body
    assert "rule cleared" in hook.posts[1]["json"]["message"]
    listing = {row[0]: row for row in op.ok("notify list")["rows"]}
    assert listing["env1"][5] == 2 and listing["env2"][5] == 2 and listing["env1"][4] == "-"
    metrics = api(server, "/metrics")
    assert 'dashboard_notifications_total{outcome="sent"} 4.0' in metrics
    assert 'dashboard_notifications_total{outcome="recorded"} 2.0' in metrics


def test_a_receiver_that_is_down_gets_the_message_once_it_is_back(start_server):
    hook = JsonReceiver()  # its port is chosen, nothing listens yet
    server = start_server({**FAST, "NOTIFY_URLS": hook.url()})
    op = Console(server.port)
    op.ok("alert set memory > 0")
    assert wait_until(lambda: op.ok("notify list")["rows"][0][4] != "-")  # an attempt failed
    hook.start()
    try:
        assert titles(hook) == [] or titles(hook) == ["[FIRING] memory > 0 % on web-1"]
        hook.wait(1, timeout=30)
        settled(server)  # the rule keeps firing: no new transition, so nothing more can come
        assert titles(hook) == ["[FIRING] memory > 0 % on web-1"]
        [row] = op.ok("notify list")["rows"]
        assert row[3] != "-" and row[5] == 1 and row[6] >= 1  # last ok, sent once, failed before
    finally:
        hook.stop()


def test_a_pending_message_survives_a_restart_of_the_app(start_server, tmp_path):
    hook = JsonReceiver()
    env = {**FAST, "NOTIFY_URLS": hook.url()}
    server = start_server(env)
    op = Console(server.port)
    op.ok("alert set memory > 0")
    assert wait_until(lambda: op.ok("notify list")["rows"][0][4] != "-")
    op.ws.close()
    server.stop()
    again = start_server(env, port=server.port)  # same DATA_DIR: the same outbox
    hook.start()
    try:
        hook.wait(1, timeout=30)
        settled(again)
        # The rule itself did not survive (rules live in memory without Redis): the message did.
        assert titles(hook) == ["[FIRING] memory > 0 % on web-1"]
        assert api(again, "/api/alerts")["transitions"][0]["state"] == "firing"
    finally:
        hook.stop()


def test_a_burst_of_flapping_becomes_one_message(start_server, hook):
    # The window sets the test's length, so not huge; but a burst that outgrew it would be split in
    # two messages, and the burst takes under 1 s (with three busy loops on 2 cores too), so 12 s
    # leaves room for a machine many times busier.
    window = 12.0
    server = start_server({**FAST, "NOTIFY_GROUP_SECONDS": str(window), "NOTIFY_URLS": hook.url()})
    op = Console(server.port)
    started = time.monotonic()
    for _ in range(3):
        rid = op.ok("alert set memory > 0")["id"]
        assert op.wait_push("alert")["state"] == "firing"
        op.ok(f"alert clear {rid}")
        assert op.wait_push("alert")["state"] == "resolved"
    took = time.monotonic() - started
    # Not a speed test: a precondition (the window opens at the first change, after `started`).
    assert took < window, f"the burst took {took:.1f} s, more than the {window:g} s group window it must fit in"
    hook.wait(1, timeout=window + 30)
    # No second message can follow, shown without waiting "long enough": all six transitions were
    # recorded, the one message was sent, and the delivery loop has since found the outbox empty
    # (the gauge is refreshed each round; it read 6 before the send). No rule is left to make a seventh.
    settled = ['dashboard_notifications_total{outcome="sent"} 1.0', "dashboard_notifications_pending 0.0"]
    metrics = wait_until(lambda: (lambda m: m if all(s in m for s in settled) else "")(api(server, "/metrics")))
    metrics = metrics or api(server, "/metrics")  # (what it was, for the message)
    notes = [line for line in metrics.splitlines() if line.startswith("dashboard_notifications")]
    assert all(s in notes for s in settled) and 'dashboard_notifications_total{outcome="recorded"} 6.0' in notes, notes
    assert len(api(server, "/api/alerts")["transitions"]) == 6 and op.ok("alert list")["rows"] == []
    [post] = hook.posts
    assert post["json"]["title"] == "[6 CHANGES] 3 firing, 3 resolved on web-1"
    assert post["json"]["message"].count("[FIRING] memory > 0 % on web-1") >= 3
    [row] = op.ok("notify list")["rows"]
    assert row[5] == 1  # the channel was sent to once


def test_a_silenced_rule_sends_nothing_but_is_recorded(start_server, hook):
    server = start_server({**FAST, "NOTIFY_URLS": hook.url()})
    op = Console(server.port)
    rid = op.ok("alert set memory > 0")["id"]
    hook.wait(1)
    silence = op.ok(f"silence {rid} 1h planned load test")
    op.ok(f"alert clear {rid}")
    op.ok("silence all 10m")
    other = op.ok("alert set cpu >= 0")["id"]
    while not (lambda p: p["rule"]["id"] == other and p["state"] == "firing")(op.wait_push("alert")):
        pass
    op.ok(f"alert clear {other}")
    wait_until(lambda: len(api(server, "/api/alerts")["transitions"]) == 4)
    settled(server)  # silenced entries leave the outbox unsent
    assert titles(hook) == ["[FIRING] memory > 0 % on web-1"]
    history = api(server, "/api/alerts")["transitions"]
    assert [t["silenced"] is not None for t in history] == [True, True, True, False]
    assert history[2]["silenced"] == {"id": silence["id"], "reason": "planned load test", "until": silence["until"]}
    assert [row[1] for row in op.ok("silence list")["rows"]] == [rid, "all"]


def test_no_secret_in_the_log_the_audit_or_notify_list(start_server, hook, tmp_path):
    down = JsonReceiver()
    password, key, token = "pw-Zq81xKp", "key-Hh27Yq3m", "tok-Jr55Wq1n"
    server = start_server({**FAST, "LOG_LEVEL": "debug",
                           "NOTIFY_URLS": down.url(auth=f"ops:{token}@", path="/env")})
    op = Console(server.port)
    good = hook.url(auth=f"ops:{password}@", query=f"?+X-Api-Key={key}")
    shown = op.ok(f"notify add {good} --name hook")["url"]
    assert shown.startswith(f"json://***@127.0.0.1:{hook.port}/***?+X-Api-Key=***#fp:")
    err = op.error(f"notify add json://ops:{password}@169.254.169.254/x")
    assert err["code"] == "bad_args" and password not in json.dumps(err)
    op.ok("alert set memory > 0")
    [post] = hook.wait(1)
    assert post["headers"]["X-Api-Key"] == key  # the real URL was used
    assert wait_until(lambda: op.ok("notify list")["rows"][0][4] != "-")  # env1 failed, its error kept
    op.ok("notify test")
    seen = json.dumps(op.ok("notify list")) + json.dumps(op.ok("audit 50")) + json.dumps(op.ok("notify test hook"))
    audit_db = (tmp_path / "audit-app.sqlite3").read_bytes()
    wait_until(lambda: "notified hook" in server.log())
    log = server.log()
    for secret in (password, key, token):
        assert secret not in seen
        assert secret.encode() not in audit_db
        assert secret not in log
    assert f"notify add {shown} --name hook" in seen  # the audit line: the same mask, same fingerprint


def test_two_dynos_on_redis_send_exactly_one_message_per_transition(start_server, redis_server, hook):
    shared = {**FAST, "REDIS_URL": redis_server.url, "SECRET_KEY": "shared-secret-of-the-dynos", "SAMPLER_LEASE_SECONDS": "2",
              "NOTIFY_URLS": hook.url()}
    a = start_server({**shared, "HOST_NAME": "dyno-a", "WEB_CONCURRENCY": "2"}, name="a")
    b = start_server({**shared, "HOST_NAME": "dyno-b", "WEB_CONCURRENCY": "2"}, name="b")
    assert len(a.workers()) == 2 and len(b.workers()) == 2
    wait_until(lambda: {h["name"] for h in api(a, "/api/hosts")["hosts"]} >= {"dyno-a", "dyno-b"})
    op = Console(b.port)
    rid = op.ok("alert set memory > 0")["id"]
    wait_until(lambda: len(delivered(hook)) >= 2)
    settled(a, redis_server.url)  # four processes, each with a delivery loop, one shared outbox
    # Both hosts fire (each by its own sampler); both may share one message when due together.
    assert sorted(delivered(hook)) == ["[FIRING] memory > 0 % on dyno-a", "[FIRING] memory > 0 % on dyno-b"]
    Console(a.port).ok(f"alert clear {rid}")
    wait_until(lambda: len(delivered(hook)) >= 4)
    settled(a, redis_server.url)
    assert sorted(delivered(hook)) == ["[FIRING] memory > 0 % on dyno-a", "[FIRING] memory > 0 % on dyno-b",
                                       "[RESOLVED] memory > 0 % on dyno-a", "[RESOLVED] memory > 0 % on dyno-b"]
    # Every process reads the same history, with the evidence of the host that fired.
    history = api(b, "/api/alerts")["transitions"]
    assert sorted((t["host"], t["state"]) for t in history) == [
        ("dyno-a", "firing"), ("dyno-a", "resolved"), ("dyno-b", "firing"), ("dyno-b", "resolved")]
    assert all(len(t["evidence"]["top_cpu"]) == 5 for t in history if t["state"] == "firing")
    [row] = Console(a.port).ok("notify list")["rows"]
    assert row[5] == len(hook.posts)  # the channel's status is shared too


def test_a_receiver_that_never_answers_times_out_and_holds_up_no_one(start_server, hook):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (the kernel does) and never answers
    try:
        port = silent.getsockname()[1]
        # A timeout long enough that the healthy channel, sent side by side, is done well before
        # it on a busy machine too (the order below is the proof).
        server = start_server({**FAST, "NOTIFY_TIMEOUT": "3",
                               "NOTIFY_URLS": f"json://127.0.0.1:{port}/hang {hook.url()}"})
        op = Console(server.port)
        op.ok("alert set memory > 0")
        hook.wait(1)
        assert titles(hook) == ["[FIRING] memory > 0 % on web-1"]
        # Channels are sent to side by side: the hung one's attempt ends on its own time.
        rows = wait_until(lambda: (lambda r: r if r["env1"][4] != "-" else None)(
            {row[0]: row for row in op.ok("notify list")["rows"]}))
        assert rows["env1"][4] == "timed out after 3 s" and rows["env1"][5] == 0
        assert rows["env2"][5] == 1
        # Held up by no one, shown by order, not by a clock: sent one after the other (env1 first, as
        # listed), the healthy message could only go once the hung attempt had timed out; side by
        # side, it is sent (and its sending logged) while the hung one still waits out its 3 s (under
        # Apprise's own 4 s read timeout, which would end it first).
        sent, failed = "notified env2", "notification to env1 failed"
        log = wait_until(lambda: (lambda text: text if sent in text and failed in text else "")(server.log()))
        order = [line for line in log.splitlines() if sent in line or failed in line][:2]
        assert 0 <= log.find(sent) < log.find(failed), ("the healthy channel waited for the hung one", order)
        assert op.ok("status")["uptime"] >= 0  # the server kept serving meanwhile
    finally:
        silent.close()
