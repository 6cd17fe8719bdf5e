"""`proc <pid>`: one process looked into, with its trail from the samples; the trails' bounds."""

import json
import subprocess
import sys
import time

import psutil
import pytest

from dashboard.console import commands
from dashboard.console.commands import CommandError, Context
from dashboard.console.operator import Operator
from dashboard.sampling.trails import Trails, summary

CHILD = """
import os, socket, sys, time
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen()
peer = socket.create_connection(listener.getsockname()); accepted, _ = listener.accept()
files = [open(sys.executable, "rb") for _ in range(3)]
if os.fork() == 0:
    time.sleep(60); os._exit(0)
print("ready", flush=True)
time.sleep(60)
"""
SECRET = "env-secret-that-must-never-show"


@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
                            env={"PATH": "/usr/bin:/bin", "API_KEY": SECRET})
    assert proc.stdout.readline().strip() == "ready"
    kids = psutil.Process(proc.pid).children()
    yield proc
    for kid in kids:
        try:
            kid.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()
    proc.wait()


def ctx_for(svc, role="operator"):
    return Context(Operator("alice", role, "sess-1", "127.0.0.1", "cookie"), svc.ops, connection="c1")


def run(ctx, line):
    cmd, values = commands.resolve(line, ctx.operator)
    result = commands.run(ctx, cmd, values)
    return json.loads(json.dumps(result))  # as it goes over the wire


def test_proc_shows_what_the_process_is_and_never_its_environment(svc, child):
    svc.sampler.tick()
    d = run(ctx_for(svc, "observer"), f"proc {child.pid}")
    assert d["pid"] == child.pid and d["name"].startswith("python")
    assert d["cmdline"].startswith(sys.executable) and "-c" in d["cmdline"]
    assert d["status"] in ("sleeping", "running") and d["user"]
    assert abs(d["started"] - time.time()) < 60
    assert d["threads"] >= 1 and isinstance(d["nice"], int)
    assert d["open_files"] >= 3 and d["fds"] >= 6  # three files, three sockets
    assert d["connections"] == {"ESTABLISHED": 2, "LISTEN": 1}
    assert d["children"]["total"] == 1 and d["children"]["rows"][0][1].startswith("python")
    assert SECRET not in json.dumps(d) and "environ" not in d
    assert d["kill"] is None  # an observer is not shown a way to signal it


def test_its_trail_starts_when_asked_and_grows_with_each_sample(svc, child):
    svc.sampler.tick()
    ctx = ctx_for(svc)
    first = run(ctx, f"proc {child.pid}")
    before = len(first["history"]["rows"])
    for _ in range(3):
        svc.sampler.tick()
    d = run(ctx, f"proc {child.pid}")
    assert d["history"]["columns"] == ["ts", "cpu", "rss"]
    assert len(d["history"]["rows"]) == before + 3
    ts = [row[0] for row in d["history"]["rows"]]
    assert ts == sorted(ts)
    assert d["watched"]["samples"] == len(ts) and d["watched"]["rss_min"] > 0
    assert d["rss"] == d["history"]["rows"][-1][2]


def test_kill_from_the_details_is_the_confirmed_kill(svc, child):
    ctx = ctx_for(svc)
    assert run(ctx, f"proc {child.pid}")["kill"] is None  # ALLOW_PROCESS_CONTROL is off
    svc.ops.process_control = True
    line = run(ctx, f"proc {child.pid}")["kill"]
    assert line == f"kill {child.pid}"
    with pytest.raises(CommandError) as err:
        run(ctx, line)
    assert err.value.code == "confirm_required"


def test_a_pid_that_is_not_there(svc, child):
    pid = child.pid
    child.kill()
    child.wait()
    with pytest.raises(CommandError) as err:
        run(ctx_for(svc), f"proc {pid}")
    assert err.value.code == "not_found" and str(pid) in err.value.message
    with pytest.raises(CommandError) as err:
        run(ctx_for(svc), "proc nine")
    assert err.value.code == "bad_args"


def test_ps_with_a_number_is_that_pid_only(svc):
    svc.sampler.tick()
    found = run(ctx_for(svc), "ps 1")
    assert [row[0] for row in found["rows"]] == [1]


def test_trails_are_bounded_and_forget_processes_that_exit():
    trails = Trails(points=5, processes=3)
    alive = {(p, 1.0) for p in range(10)}
    for i in range(8):
        trails.feed(float(i), {(1, 1.0): (1.0, 100 + i)}, alive)
    assert [p[2] for p in trails.of((1, 1.0))] == [103, 104, 105, 106, 107]  # the newest five
    for pid in range(2, 7):
        trails.feed(10.0, {(pid, 1.0): (None, 1)}, alive)
    assert len(trails) == 3  # the least recently shown went first
    trails.feed(11.0, {}, {(6, 1.0)})
    assert len(trails) == 1 and trails.of((1, 1.0)) == []
    trails.ask((6, 2.0))  # the pid again, but another process: not the one asked about
    assert summary(trails.of((6, 2.0))) is None
    s = summary([(1.0, None, 10), (2.0, 4.0, 30), (3.0, 2.0, 20)])
    assert s == {"since": 1.0, "samples": 3, "cpu_avg": 3.0, "cpu_max": 4.0, "rss_min": 10, "rss_max": 30}
