"""Notification egress against the real server: a real redis-server that a line protocol must not
reach, real HTTP and SMTP receivers on 127.0.0.1 (allowed) and 127.0.0.2 (made forbidden with
NOTIFY_DENY_NETWORKS), redirects, templates, and a stalled receiver that must delay no one."""

import json
import threading
import time

import pytest
import redis

from tests.support.receivers import CountingListener, JsonReceiver
from tests.support.wsclient import Console
from tests.support.waiting import eventually

FAST = {"SAMPLE_INTERVAL": "0.25", "NOTIFY_GROUP_SECONDS": "0", "HOST_NAME": "web-1"}
FORBID = {**FAST, "NOTIFY_DENY_NETWORKS": "127.0.0.2/32"}


@pytest.fixture
def forbidden():
    listener = CountingListener("127.0.0.2")
    yield listener
    listener.close()


def test_crlf_in_an_irc_url_never_reaches_the_apps_redis(start_server, redis_server):
    server = start_server({**FAST, "REDIS_URL": redis_server.url, "NOTIFY_RAW_SCHEMES": "irc",
                           "SECRET_KEY": "shared-secret-of-the-dynos"})
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    r.zadd("dash:revoked", {"sess-canary": time.time() + 3600})
    op = Console(server.port)
    op.ok("status")
    before = r.xlen("dash:audit")
    inject = "%0d%0aSET%20egress-canary%20pwned%0d%0aZREM%20dash:revoked%20sess-canary%0d%0aXADD%20dash:audit%20*%20forged%201"
    port = redis_server.port
    for url in [f"irc://bot:pw{inject}@127.0.0.1:{port}/#ops", f"irc://bot@127.0.0.1:{port}/#ops?name=x{inject}",
                f"irc://127.0.0.1:{port}/#ops?nick=n{inject}", f"irc://127.0.0.1:{port}/#ops?nick=n{inject.replace('%', '%25')}"]:
        err = op.error(f"notify add {url}")
        assert err["code"] == "bad_args" and "control characters" in err["message"], err
        assert "egress-canary" not in json.dumps(err)
    # The scheme itself is allowed (named by NOTIFY_RAW_SCHEMES), the app's Redis is not, for any scheme.
    for url in [f"irc://bot@127.0.0.1:{port}/#ops", f"json://127.0.0.1:{port}/x", f"json://127.0.0.3:{port}/x"]:
        err = op.error(f"notify add {url}")
        assert err["code"] == "bad_args" and "Redis" in err["message"], err
    # Stored some other way (an older version, a hand edit): the send is refused, nothing is written.
    planted = f"irc://bot:pw{inject}@127.0.0.1:{port}/#ops"
    r.hset("dash:notify:channels", "planted", json.dumps({"name": "planted", "url": planted, "by": None,
                                                          "created": time.time()}))
    [[name, ok, error]] = op.ok("notify test planted")["rows"]
    assert name == "planted" and ok is False and "control characters" in error
    assert r.get("egress-canary") is None
    assert r.zscore("dash:revoked", "sess-canary") is not None
    records = r.xrange("dash:audit")
    assert len(records) > before and not any("forged" in fields for _id, fields in records)


def _channel(op, url, name):
    """Add the URL and send a test through it; (added?, the test's outcome or the refusal)."""
    added = op.request(f"notify add {url} --name {name}")
    if not added.get("ok"):
        assert added["error"]["code"] == "bad_args"
        return False, added["error"]["message"]
    [[_n, ok, error]] = op.ok(f"notify test {name}")["rows"]
    return True, (ok, error)


def test_url_forms_that_parsers_disagree_on_never_reach_a_forbidden_receiver(start_server, forbidden):
    allowed = JsonReceiver().start()
    try:
        server = start_server(FORBID)
        op = Console(server.port)
        bad, ok_port = forbidden.port, allowed.port
        forms = {
            "userinfo": f"json://x@127.0.0.1:{ok_port}@127.0.0.2:{bad}/h",
            "userinfo2": f"json://x@127.0.0.2:{bad}@127.0.0.1:{ok_port}/h",
            "noauthority": f"json:///127.0.0.2:{bad}/h",
            "trailingdot": f"json://127.0.0.2.:{bad}/h",
            "number": f"json://2130706434:{bad}/h",
            "zone": f"json://[::ffff:127.0.0.2%25lo]:{bad}/h",
            "mapped": f"json://[::ffff:127.0.0.2]:{bad}/h",
            "smtpport": f"mailto://127.0.0.1:{ok_port}?smtp=127.0.0.2:{bad}&from=a@example.com&to=b@example.com"
                        "&mode=insecure",
            "smtphost": f"mailtos://u:p@127.0.0.2:{bad}?from=a@example.com&to=b@example.com",
            "unresolvable": f"json://no-such-host.invalid:{bad}/h",
            "aliyun": "json://100.100.100.200/latest/meta-data",
        }
        outcomes = {name: _channel(op, url, name) for name, url in forms.items()}
        assert forbidden.settled() == 0, outcomes
        for name, (added, outcome) in outcomes.items():
            assert not added or outcome[0] is False or allowed.posts, (name, outcome)
            assert str(bad) not in json.dumps(outcome), (name, outcome)  # errors never echo the URL
        assert not outcomes["aliyun"][0] and "metadata" in outcomes["aliyun"][1]
        assert not outcomes["unresolvable"][0]
    finally:
        allowed.stop()


def test_redirects_and_templates_never_lead_to_a_forbidden_receiver(start_server, forbidden, tmp_path):
    target = f"http://127.0.0.2:{forbidden.port}/stolen"
    bouncer = JsonReceiver(redirect_to=target).start()
    try:
        server = start_server(FORBID)
        op = Console(server.port)
        for status in (301, 302, 307, 308):
            [[_n, ok, _e]] = [op.ok(f"notify add json://127.0.0.1:{bouncer.port}/{status} --name r{status}") and
                              op.ok(f"notify test r{status}")["rows"][0]]
            assert ok is False
        assert len(bouncer.posts) == 4  # each was asked, none was followed
        assert forbidden.settled() == 0
        assert op.error(f"notify add json://127.0.0.1:{bouncer.port}/307?redirect=yes")["code"] == "bad_args"
        # A template fetched over HTTP obeys the same policy as the message.
        op.ok(f"notify add discord://1234/abcd?template={target}.json --name tpl")
        [[_n, ok, error]] = op.ok("notify test tpl")["rows"]
        assert ok is False
        assert forbidden.settled() == 0
        # file: templates are refused with one answer whether the file exists or not.
        there = tmp_path / "t.json"
        there.write_text('{"content": "{{app_body}}"}')
        answers = {op.error(f"notify add discord://1234/abcd?template=file://{p}")["message"]
                   for p in (there, tmp_path / "absent.json")}
        assert len(answers) == 1 and str(tmp_path) not in answers.pop()
    finally:
        bouncer.stop()


def test_a_stalled_channel_delays_no_other(start_server):
    release = threading.Event()
    stall = JsonReceiver(hold=release).start()
    hook = JsonReceiver().start()
    try:
        # The stalled receiver's own read timeout (rto) and NOTIFY_TIMEOUT are long: its attempt is
        # still under way when the other channel's message must already have arrived.
        server = start_server({**FAST, "NOTIFY_TIMEOUT": "90",
                               "NOTIFY_URLS": f"{stall.url(query='?rto=120')} {hook.url()}"})
        op = Console(server.port)
        op.ok("alert set memory > 0")
        eventually(lambda: stall.held >= 1, 30, what="the stalled channel's attempt started")
        assert stall.held == 1
        [post] = hook.wait(1, timeout=30)
        assert post["json"]["title"] == "[FIRING] memory > 0 % on web-1"
        assert not release.is_set() and stall.posts == []  # the stalled one is still held meanwhile
        # notify test goes to every channel at once too: the hook answers while the stall is held.
        started = len(hook.posts)
        waiter = threading.Thread(target=lambda: Console(server.port).ok("notify test"), daemon=True)
        waiter.start()
        assert len(hook.wait(started + 1, timeout=30)) == started + 1
        assert stall.posts == []
    finally:
        release.set()
        stall.stop()
        hook.stop()
