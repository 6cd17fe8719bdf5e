"""The notification egress policy and URL checks without a server: addresses, the guard on real
loopback sockets, the URL rules, the channel and silence limits (SQLite, and Redis with racing writers)."""

import contextvars
import ipaddress
import socket
import threading
import time

import pytest

from dashboard import create_app
from dashboard.alerts import egress, urls
from dashboard.console import commands
from dashboard.console.commands import CommandError, Context
from dashboard.console.operator import Operator
from dashboard.store.notify_redis import RedisNotifyStore
from dashboard.store.notify_sqlite import SqliteNotifyStore
from tests.conftest import TOKEN
from tests.support.receivers import CountingListener


def ip(text):
    return ipaddress.ip_address(text)


OPEN = egress.Policy()


@pytest.mark.parametrize("address", [
    "169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "100.100.100.200",
    "::ffff:169.254.169.254", "::ffff:100.100.100.200", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
    "::a9fe:a9fe", "0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
])
def test_metadata_link_local_unspecified_multicast_broadcast_are_always_refused(address):
    assert egress.refusal(ip(address), 80, OPEN)
    assert egress.refusal(ip(address), 80, egress.Policy(allow_private=False))


def test_private_addresses_follow_the_switch_and_public_ones_pass():
    private = ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "10.1.2.3", "192.168.1.1", "172.16.0.1",
               "fc00::1", "100.64.0.1", "::ffff:10.0.0.1"]
    closed = egress.Policy(allow_private=False)
    for address in private:
        assert egress.refusal(ip(address), 80, OPEN) is None, address
        assert "NOTIFY_ALLOW_PRIVATE=0" in egress.refusal(ip(address), 80, closed), address
    for address in ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]:
        assert egress.refusal(ip(address), 443, closed) is None, address


def test_the_apps_redis_is_refused_on_every_local_address_and_deny_networks_apply():
    def resolve(host, port, family, type_):
        assert host == "redis.internal"
        return [(socket.AF_INET, type_, 6, "", ("127.0.0.1", port))]

    policy = egress.make_policy(forbid_redis="redis://:pw@redis.internal:6390/0", resolve=resolve,
                                own_addresses=["10.9.8.7"], deny=["198.51.100.0/24", "127.0.0.9"])
    for address in ["127.0.0.1", "127.0.0.5", "::1", "::ffff:127.0.0.1", "10.9.8.7"]:
        assert "Redis" in egress.refusal(ip(address), 6390, policy), address
    assert egress.refusal(ip("127.0.0.1"), 6391, policy) is None
    assert egress.refusal(ip("10.1.1.1"), 6390, policy) is None  # another host's port 6390
    assert "NOTIFY_DENY_NETWORKS" in egress.refusal(ip("198.51.100.7"), 80, policy)
    assert "NOTIFY_DENY_NETWORKS" in egress.refusal(ip("::ffff:127.0.0.9"), 80, policy)
    remote = egress.make_policy(forbid_redis="rediss://r.example:7000", resolve=lambda h, p, f, t: [
        (socket.AF_INET, t, 6, "", ("203.0.113.5", p))])
    assert "Redis" in egress.refusal(ip("203.0.113.5"), 7000, remote)
    assert egress.refusal(ip("127.0.0.1"), 7000, remote) is None
    assert egress.redis_endpoints("", socket.getaddrinfo) == set()


@pytest.fixture
def forbidden():
    listener = CountingListener("127.0.0.2")
    yield listener
    listener.close()


def test_the_guard_refuses_inside_the_mark_only_resolves_once_and_follows_into_workers(forbidden):
    policy = egress.Policy(deny=(ipaddress.ip_network("127.0.0.2/32"),))
    with egress.confined(policy) as confinement:
        for target in [("127.0.0.2", forbidden.port), ("::ffff:127.0.0.2", forbidden.port)]:
            family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
            with socket.socket(family) as s, pytest.raises(egress.Refused):
                s.connect(target)
        with pytest.raises(egress.Refused):
            socket.create_connection(("127.0.0.2", forbidden.port), timeout=5)
        # A worker thread given a copy of the context (as Apprise hands a send to its pool) is marked too.
        caught = []
        ctx = contextvars.copy_context()
        worker = threading.Thread(target=lambda: ctx.run(_try_connect, forbidden.port, caught))
        worker.start()
        worker.join()
        assert isinstance(caught[0], egress.Refused)
        with socket.socket(socket.AF_UNIX) as s, pytest.raises(egress.Refused):
            s.connect("/tmp/nothing-here")
    assert len(confinement.refused) == 5
    assert forbidden.settled() == 0
    # Outside the mark nothing changes (the app's own connections, this test's listener).
    socket.create_connection(("127.0.0.2", forbidden.port), timeout=5).close()
    assert forbidden.settled() == 1


def _try_connect(port, caught):
    try:
        socket.create_connection(("127.0.0.2", port), timeout=5).close()
    except OSError as exc:
        caught.append(exc)


def test_a_name_is_resolved_once_and_the_checked_address_is_the_one_connected():
    policy = egress.Policy()
    confinement = egress.Confinement(policy)
    assert egress.checked(socket.AF_INET, socket.SOCK_STREAM, ("localhost", 80), confinement) == ("127.0.0.1", 80)
    assert egress.checked(socket.AF_INET, socket.SOCK_STREAM, ("2130706433", 80), confinement) == ("127.0.0.1", 80)
    for trick in ["2852039166", "0251.0376.0251.0376"]:  # the metadata address as numbers
        with pytest.raises(egress.Refused, match="metadata"):
            egress.checked(socket.AF_INET, socket.SOCK_STREAM, (trick, 80), confinement)
    for name in ["no-such-host.invalid", "169.254.169.254."]:  # what does not resolve is not connected to
        with pytest.raises(egress.Refused, match="cannot resolve"):
            egress.checked(socket.AF_INET, socket.SOCK_STREAM, (name, 80), confinement)
    with pytest.raises(egress.Refused, match="link-local"):
        egress.checked(socket.AF_INET6, socket.SOCK_STREAM, ("fe80::1%lo", 80, 0, 1), confinement)


RAW = ("irc",)


@pytest.mark.parametrize("url", [
    "irc://bot:pw%0d%0aQUIT@127.0.0.1:6667/#ops",
    "irc://bot@127.0.0.1:6667/#ops?name=x%0D%0ADEL%20dash:audit",
    "irc://127.0.0.1:6667/#ops?nick=a%0aFLUSHALL",
    "irc://127.0.0.1:6667/#ops?nick=a%250d%250aFLUSHALL",  # encoded twice
    "json://127.0.0.1:9/x%00y", "json://127.0.0.1:9/x\r\ny", "json://127.0.0.1:9/x?to=%2525250A",
])
def test_control_characters_are_refused_however_encoded_without_echoing_the_url(url):
    with pytest.raises(ValueError, match="control characters") as err:
        urls.check_url(url, OPEN, RAW)
    assert "127.0.0.1" not in str(err.value) and "FLUSHALL" not in str(err.value)


def test_schemes_by_allowlist_raw_socket_ones_only_when_named():
    with pytest.raises(ValueError, match="NOTIFY_RAW_SCHEMES"):
        urls.check_url("irc://bot@127.0.0.1:6667/#ops", OPEN, ())
    assert urls.check_url("irc://bot@127.0.0.1:6667/#ops", OPEN, RAW)
    for url in ["rsyslog://127.0.0.1", "mqtt://127.0.0.1/topic", "bogus://x"]:
        with pytest.raises(ValueError, match="not allowed"):
            urls.check_url(url, OPEN, RAW)
    for url in ["json://127.0.0.1:9/x", "ntfy://127.0.0.1:9/topic", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnl/#ops",
                "mailto://127.0.0.1:25?from=a@example.com&to=b@example.com"]:
        assert urls.check_url(url, OPEN, ()) == url


def test_the_policy_refuses_the_apps_redis_for_any_scheme():
    policy = egress.make_policy(forbid_redis="redis://127.0.0.1:6399/0")
    for url in ["json://127.0.0.1:6399/x", "irc://bot@127.0.0.1:6399/#ops", "json://127.0.0.7:6399/x",
                "mailto://127.0.0.1:25?smtp=127.0.0.1:6399&from=a@example.com&to=b@example.com"]:
        with pytest.raises(ValueError, match="Redis"):
            urls.check_url(url, policy, RAW)


def test_file_templates_are_refused_alike_whether_or_not_the_file_exists(tmp_path):
    there = tmp_path / "template.json"
    there.write_text("{}")
    answers = set()
    for path in [str(there), str(tmp_path / "not-there.json")]:
        for url in [f"discord://1234/abcd?template=file://{path}", f"discord://1234/abcd?template={path}",
                    f"slack://T1/A1/T2/?template=file%3A%2F%2F{path}", f"json://127.0.0.1:9/x?x=file:{path}"]:
            with pytest.raises(ValueError) as err:
                urls.check_url(url, OPEN, ())
            assert path not in str(err.value)
            answers.add(str(err.value).split(";")[0])
    assert len(answers) == 2  # per form, never per file: the answer says nothing of the file
    with pytest.raises(ValueError, match="http"):
        urls.check_url("discord://1234/abcd?template=ftp://127.0.0.1/t.json", OPEN, ())
    with pytest.raises(ValueError, match="redirects"):
        urls.check_url("json://127.0.0.1:9/x?redirect=yes", OPEN, ())
    assert urls.check_url("json://127.0.0.1:9/x?redirect=no", OPEN, ())


@pytest.mark.parametrize("url", [
    "json://x@127.0.0.1:9@127.0.0.2:9/h",  # userinfo holding an @: Apprise and urlsplit disagree
    "json:///127.0.0.2:9/h",  # an empty authority, the host in the path
    "json://127.0.0.2.:9/h",  # a trailing dot
    "json://2130706434:9/h",  # 127.0.0.2 as a number
    "json://no-such-host.invalid:9/h",  # does not resolve
    "json://100.100.100.200/h",
    "mailto://127.0.0.1:25?smtp=127.0.0.2:2525&from=a@example.com&to=b@example.com",
])
def test_every_url_form_is_judged_by_what_apprise_will_connect_to(url):
    policy = egress.Policy(deny=(ipaddress.ip_network("127.0.0.2/32"),))
    with pytest.raises(ValueError) as err:
        urls.check_url(url, policy, ())
    assert "127.0.0.2:9" not in str(err.value) and "no-such-host" not in str(err.value)


# ---- limits -----------------------------------------------------------------------------------


def test_the_sqlite_store_stops_at_its_limits(tmp_path):
    store = SqliteNotifyStore(str(tmp_path / "n.sqlite3"))
    assert store.add_channel("a", "json://127.0.0.1:9/a", None, limit=2)
    assert store.add_channel("b", "json://127.0.0.1:9/b", None, limit=2)
    assert store.add_channel("c", "json://127.0.0.1:9/c", None, limit=2) is None
    assert [c["name"] for c in store.channels()] == ["a", "b"]
    now = time.time()
    assert store.add_silence({"rule": "all", "until": now - 1}, limit=1)  # already over: does not count
    assert store.add_silence({"rule": "all", "until": now + 60}, limit=1)
    assert store.add_silence({"rule": "a1", "until": now + 60}, limit=1) is None
    assert len(store.silences()) == 1


def test_the_redis_limits_hold_when_writers_race(store):
    stores = [RedisNotifyStore(store) for _ in range(8)]
    added, silenced = [], []

    def race(i, s):
        for j in range(5):
            if s.add_channel(f"c{i}-{j}", "json://127.0.0.1:9/x", None, limit=7):
                added.append(1)
            if s.add_silence({"rule": "all", "until": time.time() + 60}, limit=5):
                silenced.append(1)

    threads = [threading.Thread(target=race, args=(i, s)) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(added) == 7 and len(stores[0].channels()) == 7
    assert len(silenced) == 5 and len(stores[0].silences()) == 5
    with pytest.raises(ValueError):
        stores[1].add_channel(stores[0].channels()[0]["name"], "json://127.0.0.1:9/y", None, limit=100)


@pytest.fixture
def small(tmp_path):
    app = create_app({"TESTING": True, "OPERATOR_TOKEN": TOKEN, "SECRET_KEY": "test-secret-key-of-length",
                      "AUDIT_DB": str(tmp_path / "audit.sqlite3"), "DATA_DIR": str(tmp_path / "data"),
                      "MAX_NOTIFY_CHANNELS": 2, "MAX_SILENCES": 2, "NOTIFY_URLS": ("json://127.0.0.1:9/env",)})
    svc = app.extensions["dashboard"]
    svc.sampler.tick()
    yield Context(Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")
    svc.shutdown("test finished")


def run(ctx, line):
    cmd, values = commands.resolve(line, ctx.operator)
    return commands.run(ctx, cmd, values)


def test_the_channel_and_silence_past_the_limit_are_refused_with_bad_args(small):
    run(small, "notify add json://127.0.0.1:9/a")
    run(small, "notify add json://127.0.0.1:9/b")
    with pytest.raises(CommandError) as err:
        run(small, "notify add json://127.0.0.1:9/c")
    assert err.value.code == "bad_args" and "MAX_NOTIFY_CHANNELS" in err.value.message
    run(small, "notify remove json")
    run(small, "notify add json://127.0.0.1:9/c --name c")  # room again
    run(small, "silence all 10m")
    run(small, "silence all 20m")
    with pytest.raises(CommandError) as err:
        run(small, "silence all 30m")
    assert err.value.code == "bad_args" and "MAX_SILENCES" in err.value.message


def test_the_setting_reaches_the_check(tmp_path):
    app = create_app({"TESTING": True, "OPERATOR_TOKEN": TOKEN, "SECRET_KEY": "test-secret-key-of-length",
                      "AUDIT_DB": str(tmp_path / "audit.sqlite3"), "DATA_DIR": str(tmp_path / "data"),
                      "NOTIFY_ALLOW_PRIVATE": False})
    svc = app.extensions["dashboard"]
    try:
        ctx = Context(Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")
        with pytest.raises(CommandError) as err:
            run(ctx, "notify add json://127.0.0.1:9/x")
        assert err.value.code == "bad_args" and "NOTIFY_ALLOW_PRIVATE=0" in err.value.message
    finally:
        svc.shutdown("test finished")
