"""Every command through the registry, without sockets."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dashboard.console import commands
from dashboard.console.operator import ROLES, Operator
from dashboard.console.commands import CommandError, Context, process_control


@pytest.fixture
def operator():
    return Operator("alice", "operator", "sess-1", "127.0.0.1", "cookie")


@pytest.fixture
def ctx(svc, operator):
    svc.sampler.tick()
    return Context(operator, svc.ops, connection="c1")


def run(ctx, line):
    cmd, values = commands.resolve(line, ctx.operator)
    result = commands.run(ctx, cmd, values)
    json.dumps(result)  # every result goes over the wire as JSON
    return result


def fails(ctx, line, code):
    with pytest.raises(CommandError) as err:
        run(ctx, line)
    assert err.value.code == code, (err.value.code, err.value.message)
    return err.value


def test_every_command_has_help_usage_and_a_known_role():
    for cmd in commands.REGISTRY.values():
        assert cmd.help and cmd.usage.startswith(cmd.name)
        assert cmd.role in ROLES


def test_help_lists_what_the_role_may_run(ctx, svc):
    table = run(ctx, "help")
    assert table["columns"] == ["usage", "role", "help"]
    usages = [row[0] for row in table["rows"]]
    assert any(u.startswith("kill") for u in usages)
    observer = Context(Operator("bob", "observer", "s2", "x", "bearer"), svc.ops)
    assert not any(row[0].startswith("kill") for row in run(observer, "help")["rows"])
    assert run(ctx, "help alert set")["usage"] == "alert set <metric> <op> <value> [--for <seconds>] [--host <name>]"
    # A quoted blank names no command: the list, not a crash.
    assert run(ctx, "help ' '")["columns"] == ["usage", "role", "help"]


def test_unknown_commands_suggest_near_misses(ctx):
    err = fails(ctx, "stauts", "unknown_command")
    assert err.extra["suggestions"] == ["status"] and "did you mean 'status'" in err.message
    err = fails(ctx, "alert frobnicate", "unknown_command")
    assert "alert set" in err.message
    fails(ctx, "   ", "bad_request")
    assert fails(ctx, 'top "3', "bad_args").message.startswith("cannot split the line")


def test_observers_cannot_change_anything(svc):
    observer = Context(Operator("bob", "observer", "s2", "x", "bearer"), svc.ops)
    for line in ("interval 2", "pause", "resume", "broadcast hi", "alert set cpu > 1", "kill 5"):
        err = fails(observer, line, "forbidden")
        assert "operator role" in err.message
    assert run(observer, "status")["version"]


def test_status_whoami_clients(ctx):
    status = run(ctx, "status")
    assert status["sampler"]["interval"] == 1.0 and status["sampler"]["seq"] == 1
    assert status["viewers"] == 0 and status["consoles"] == 0
    who = run(ctx, "whoami")
    assert who == {"operator": "alice", "role": "operator", "via": "cookie", "session": "sess-1",
                   "addr": "127.0.0.1", "connection": "c1"}
    assert run(ctx, "clients")["rows"] == []


def test_top_and_ps_read_the_latest_sample_without_scanning(ctx, svc, monkeypatch):
    def no_scan(*a, **k):
        raise AssertionError("top/ps must not scan processes")

    monkeypatch.setattr("psutil.process_iter", no_scan)
    top = run(ctx, "top 3 --sort mem")
    assert top["columns"] == ["pid", "name", "user", "cpu", "rss"] and len(top["rows"]) == 3
    rss = [row[4] for row in top["rows"]]
    assert rss == sorted(rss, reverse=True)
    me = run(ctx, f"ps {os.getpid()}")
    assert me["rows"][0][0] == os.getpid()
    fails(ctx, "ps no-such-process-anywhere", "not_found")
    fails(ctx, "top 0", "bad_args")
    fails(ctx, "top 3 --sort disk", "bad_args")


def test_interval_pause_resume_change_the_sampler_and_publish_config(ctx, svc):
    assert run(ctx, "interval 0.5") == {"interval": 0.5, "paused": False}
    assert svc.sampler.interval == 0.5
    config = json.loads(svc.hub.head.wire.split(b"data: ")[1].split(b"\n")[0])
    assert svc.hub.head.type == "config" and config["by"] == "alice" and config["interval"] == 0.5
    err = fails(ctx, "interval 0.1", "bad_args")
    assert "between 0.25 and 60" in err.message and err.extra["usage"] == "interval <seconds>"
    fails(ctx, "interval soon", "bad_args")
    assert run(ctx, "pause") == {"paused": True, "changed": True}
    assert run(ctx, "pause") == {"paused": True, "changed": False}
    assert svc.sampler.paused
    assert run(ctx, "resume")["changed"] is True


def test_broadcast_takes_the_rest_of_the_line_verbatim(ctx, svc):
    assert run(ctx, "broadcast it's down, back at 5")["message"] == "it's down, back at 5"
    assert run(ctx, 'broadcast "two\nlines"')["message"] == "two\nlines"
    assert run(ctx, "broadcast <script>alert(1)</script>")["message"] == "<script>alert(1)</script>"
    fails(ctx, "broadcast", "bad_args")
    fails(ctx, "broadcast " + "x" * 1001, "bad_args")
    assert svc.hub.head.type == "notice"


def test_alert_rules_set_list_fire_and_clear(ctx, svc):
    rule = run(ctx, "alert set cpu >= 0 --for 0")
    assert rule["id"] == "a1" and rule["metric"] == "cpu"
    svc.sampler.tick()  # cpu has a value now: the rule fires
    assert svc.hub.head.type == "alert"
    assert run(ctx, "alert list")["rows"][0][2] == "firing"
    assert run(ctx, "status")["alerts_firing"] == 1
    fails(ctx, "alert set temperature > 5", "bad_args")
    fails(ctx, "alert set cpu => 5", "bad_args")
    fails(ctx, "alert clear a99", "not_found")
    assert run(ctx, "alert clear a1") == {"cleared": "a1", "rule": "cpu >= 0"}
    types = [f.type for f in svc.hub.frames()[-2:]]
    assert types == ["alert", "config"]  # resolved because cleared, then the new rule list


def test_audit_shows_the_latest_records(ctx, svc):
    from dashboard.store.audit import Record

    for i in range(3):
        svc.audit.append(Record("alice", "operator", "s", "a", "status", f"status {i}", "ok"))
    rows = run(ctx, "audit 2")["rows"]
    assert [r[4] for r in rows] == ["status 1", "status 2"]
    fails(ctx, "audit 501", "bad_args")


def test_kill_is_off_unless_enabled(ctx):
    err = fails(ctx, "kill 12345", "forbidden")
    assert "ALLOW_PROCESS_CONTROL" in err.message


@pytest.fixture
def control(ctx, svc):
    svc.ops.process_control = True
    return ctx


def test_kill_needs_a_one_time_confirmation(control):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        err = fails(control, f"kill {child.pid}", "confirm_required")
        code = err.extra["confirm"].split()[1]
        assert err.extra["target"]["pid"] == child.pid
        assert child.poll() is None  # nothing happened yet
        fails(control, "confirm WRONG1", "not_found")
        result = run(control, f"confirm {code.lower()}")
        assert result == {"pid": child.pid, "name": result["name"], "signal": "SIGTERM", "sent": True}
        assert child.wait(5) == -signal.SIGTERM
        fails(control, f"confirm {code}", "not_found")  # once only
    finally:
        child.kill()


def test_kill_with_another_signal_and_expiry(control, monkeypatch):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        code = fails(control, f"kill {child.pid} --signal KILL", "confirm_required").extra["confirm"].split()[1]
        real = time.time
        monkeypatch.setattr(process_control.time, "time", lambda: real() + 61)
        fails(control, f"confirm {code}", "not_found")  # expired
        monkeypatch.setattr(process_control.time, "time", real)
        code = fails(control, f"kill {child.pid} --signal kill", "confirm_required").extra["confirm"].split()[1]
        assert run(control, f"confirm {code}")["signal"] == "SIGKILL"
        assert child.wait(5) == -signal.SIGKILL
    finally:
        child.kill()


def test_kill_refuses_init_the_server_itself_and_unknown_pids(control):
    assert "pid 1" in fails(control, "kill 1", "forbidden").message
    assert "part of this server" in fails(control, f"kill {os.getpid()}", "forbidden").message
    fails(control, "kill 4000000", "not_found")
    fails(control, "kill -5", "bad_args")
    fails(control, "kill 12 --signal STOP", "bad_args")


def test_confirmation_is_checked_against_the_same_process(control):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code = fails(control, f"kill {child.pid}", "confirm_required").extra["confirm"].split()[1]
    child.kill()
    child.wait()
    assert "exited" in fails(control, f"confirm {code}", "not_found").message
