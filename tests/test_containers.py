"""The containers collector on cgroup trees the test writes (v1, v2, hybrid), the engine socket's
choice, container alert rules and the console's parsing of them. Podman itself: test_containers_live.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dashboard.alerts.rules import Alerts, alert_event, check
from dashboard.console import commands
from dashboard.console.commands import Context
from dashboard.console.operator import Operator
from dashboard.sampling import container_cgroups as cg
from dashboard.sampling.containers import STAT_SECONDS, Containers
from dashboard.sampling.engine import socket_path
from dashboard.sampling.rates import Rates, percent

A = "a" * 64
B = "b" * 64
MiB = 1 << 20


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class Tree:
    """A cgroup tree and a /proc of the test's own, in one of three layouts."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root, self.kind = root, kind
        self.proc = root / "proc"
        self.v1 = {c: str(root / "cg" / c) for c in ("cpu", "cpuacct", "memory", "blkio", "pids")} if kind != "v2" else {}
        self.v2 = str(root / "cg" / ("unified" if kind == "hybrid" else "")) if kind != "v1" else None
        for d in self.v1.values():
            os.makedirs(d, exist_ok=True)
        if self.v2 is not None:
            # A hybrid host's unified hierarchy holds no controllers; a v2 host's holds them all.
            write(Path(self.v2) / "cgroup.controllers", "" if kind == "hybrid" else "cpu io memory pids\n")
        (self.proc / "self" / "ns").mkdir(parents=True)

    def layout(self) -> cg.Layout:
        return cg.layout_of(self.v1, self.v2)

    def folders(self, cid: str) -> list[Path]:
        rel = f"libpod_parent/libpod-{cid}" if self.kind != "v2" else f"system.slice/docker-{cid}.scope"
        return [Path(d) / rel for d in list(self.v1.values()) + ([self.v2] if self.v2 else [])]

    def put(self, cid: str, *, cpu_s: float, quota: float | None, mem: int, limit: int | None, inactive: int,
            read: int = 0, write_: int = 0, pids: int = 1, pid: int = 4242, rx: int = 0, tx: int = 0) -> None:
        rel = self.folders(cid)[0].relative_to(Path(next(iter(self.v1.values()), self.v2)))
        if self.kind == "v2":
            d = Path(self.v2) / rel
            write(d / "cpu.stat", f"usage_usec {int(cpu_s * 1e6)}\nuser_usec 1\nsystem_usec 1\n")
            write(d / "cpu.max", "max 100000\n" if quota is None else f"{int(quota * 100000)} 100000\n")
            write(d / "memory.current", f"{mem}\n")
            write(d / "memory.max", "max\n" if limit is None else f"{limit}\n")
            write(d / "memory.stat", f"anon {mem - inactive}\nfile {inactive}\ninactive_file {inactive}\n")
            write(d / "io.stat", f"8:0 rbytes={read} wbytes={write_} rios=1 wios=1\n")
            write(d / "pids.current", f"{pids}\n")
            write(d / "cgroup.procs", f"{pid}\n")
        else:
            g = {c: Path(m) / rel for c, m in self.v1.items()}
            write(g["cpuacct"] / "cpuacct.usage", f"{int(cpu_s * 1e9)}\n")
            write(g["cpu"] / "cpu.cfs_quota_us", "-1\n" if quota is None else f"{int(quota * 100000)}\n")
            write(g["cpu"] / "cpu.cfs_period_us", "100000\n")
            write(g["memory"] / "memory.usage_in_bytes", f"{mem}\n")
            write(g["memory"] / "memory.limit_in_bytes", f"{limit or 9223372036854771712}\n")
            write(g["memory"] / "memory.stat", f"cache {inactive}\nrss 1\ntotal_cache {inactive}\n"
                                               f"total_inactive_file {inactive}\n")
            write(g["blkio"] / "blkio.throttle.io_service_bytes_recursive",
                  f"8:0 Read {read}\n8:0 Write {write_}\n8:0 Total {read + write_}\nTotal {read + write_}\n")
            write(g["pids"] / "pids.current", f"{pids}\n")
            write(g["pids"] / "cgroup.procs", f"{pid}\n")
            if self.v2 is not None:
                (Path(self.v2) / rel).mkdir(parents=True, exist_ok=True)
        write(self.proc / str(pid) / "net" / "dev",
              "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
              f"    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: {rx} 5 0 0 0 0 0 0 {tx} 6 0 0 0 0 0 0\n")
        write(self.proc / str(pid) / "stat", f"{pid} (sh) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 500 0 0\n")

    def remove(self, cid: str) -> None:
        for d in self.folders(cid):
            shutil.rmtree(d, ignore_errors=True)


class Clocked:
    """The collector and the shared Rates, driven by the test's clock."""

    def __init__(self, tree: Tree, socket: str = "/nonexistent/engine.sock") -> None:
        self.now = 1000.0
        self.rates = Rates()
        self.c = Containers(socket=socket, lay=tree.layout(), proc=str(tree.proc), clock=lambda: self.now)
        self.c.cpus, self.c.memory = 4, 8 * 1024 * MiB

    def sample(self, step: float = 1.0) -> dict:
        self.now += step
        self.rates.begin(self.now)
        out = self.c(self.rates)
        self.rates.end()
        self.c.wait_engine(10)
        return out

    def row(self, out: dict, cid: str) -> dict | None:
        return next((r for r in out["list"] if r["id"] == cid[:12]), None)


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_each_layout_gives_cpu_memory_io_net_and_pids_from_the_cgroup_files(tmp_path, kind):
    tree = Tree(tmp_path, kind)
    lay = tree.layout()
    assert lay.kind == kind and (lay.memory[0] == ("v2" if kind == "v2" else "v1"))
    tree.put(A, cpu_s=10, quota=0.5, mem=100 * MiB, limit=200 * MiB, inactive=20 * MiB, read=1000, write_=0,
             pids=3, rx=5000, tx=100)
    tree.put(B, cpu_s=1, quota=None, mem=10 * MiB, limit=None, inactive=0, pid=4343)
    s = Clocked(tree)
    first = s.sample()
    assert first["running"] == 2 and first["cgroup"] == kind and first["stopped"] is None
    a = s.row(first, A)
    assert a["name"] == A[:12] and a["cpu"] is None and a["rx_bps"] is None  # nothing to diff against yet
    assert a["cpu_limit"] == 0.5 and a["mem_limit"] == 200 * MiB and a["pids"] == 3
    assert a["mem"] == 80 * MiB and a["cache"] == 20 * MiB and a["mem_pct"] == 40.0  # cache counted apart
    assert s.row(first, B)["mem_limit"] is None and s.row(first, B)["cpu_limit"] is None

    tree.put(A, cpu_s=10.25, quota=0.5, mem=100 * MiB, limit=200 * MiB, inactive=20 * MiB, read=3000, write_=512,
             pids=4, rx=6000, tx=300)
    tree.put(B, cpu_s=3, quota=None, mem=10 * MiB, limit=None, inactive=0, pid=4343)
    second = s.sample(step=0.5)
    a, b = s.row(second, A), s.row(second, B)
    assert a["cpu"] == 12.5 and a["cpu_pct"] == 100.0  # 0.5 cores: an eighth of 4, all of its limit
    assert a["read_bps"] == 4000.0 and a["write_bps"] == 1024.0 and a["pids"] == 4
    assert a["rx_bps"] == 2000.0 and a["tx_bps"] == 400.0  # loopback left out
    assert b["cpu"] == 100.0 and b["cpu_pct"] == 100.0  # 4 cores of 4: no limit is the host's cores
    assert [r["id"] for r in second["list"]] == [B[:12], A[:12]] or b["cpu"] == a["cpu"]  # heaviest first
    assert "no engine socket at /nonexistent/engine.sock" in second["missing"]


@pytest.mark.parametrize("kind", ["v1", "v2"])
def test_the_reclaimable_cache_is_read_again_when_the_charge_moves_and_every_stat_seconds(tmp_path, kind):
    # memory.stat is the dearest file: read again only when memory.current (usage_in_bytes) moves,
    # and at least every STAT_SECONDS for the kernel's ageing of pages under a still charge.
    tree = Tree(tmp_path, kind)
    figures = dict(cpu_s=1, quota=None, limit=None)
    tree.put(A, mem=100 * MiB, inactive=20 * MiB, **figures)
    s = Clocked(tree)
    assert s.row(s.sample(), A)["cache"] == 20 * MiB
    tree.put(A, mem=100 * MiB, inactive=30 * MiB, **figures)  # the same charge, pages aged
    row = s.row(s.sample(), A)
    assert row["cache"] == 20 * MiB and row["mem"] == 80 * MiB  # not read: the split stands
    tree.put(A, mem=101 * MiB, inactive=30 * MiB, **figures)  # the charge moved
    row = s.row(s.sample(), A)
    assert row["cache"] == 30 * MiB and row["mem"] == 71 * MiB
    tree.put(A, mem=101 * MiB, inactive=40 * MiB, **figures)
    assert s.row(s.sample(), A)["cache"] == 30 * MiB
    assert s.row(s.sample(step=STAT_SECONDS), A)["cache"] == 40 * MiB  # at least every STAT_SECONDS


def test_v1_block_io_sums_the_read_and_write_lines_of_every_device_and_nothing_else(tmp_path):
    tree = Tree(tmp_path, "v1")
    lay = tree.layout()

    def io(cid: str, text: str) -> tuple:
        tree.put(cid, cpu_s=1, quota=None, mem=MiB, limit=None, inactive=0)
        blkio = next(d for d in tree.folders(cid) if "/blkio/" in str(d))
        write(blkio / "blkio.throttle.io_service_bytes_recursive", text)
        u = cg.read_usage(lay, str(blkio.relative_to(tree.v1["blkio"])))
        return u.read_bytes, u.write_bytes

    two_devices = ("8:0 Read 4096\n8:0 Write 12288\n8:0 Sync 12288\n8:0 Async 4096\n8:0 Discard 0\n"
                   "8:0 Total 16384\n253:0 Read 100\n253:0 Write 7\n253:0 Sync 7\n253:0 Async 100\n"
                   "253:0 Discard 0\n253:0 Total 107\n8:16 Read 12 more\nTotal 16491\n")
    assert io(A, two_devices) == (4196, 12295)  # a line of another shape is not counted
    assert io(B, "Total 0\n") == (0, 0)  # one that did no I/O


def test_the_percentages_follow_rates_percent_rule(tmp_path):
    # Written out in the collector: None without a part or a whole, rounded to 0.1 %.
    tree = Tree(tmp_path, "v2")
    tree.put(A, cpu_s=1, quota=0.3, mem=100 * MiB, limit=None, inactive=0)
    s = Clocked(tree)
    s.c.memory = 0  # no whole to take a share of (no limit, no memory known)
    first = s.row(s.sample(), A)
    assert first["cpu"] is None and first["cpu_pct"] is None and first["mem_pct"] is None
    tree.put(A, cpu_s=1.1, quota=0.3, mem=100 * MiB, limit=None, inactive=0)
    row = s.row(s.sample(), A)
    assert row["cpu"] == percent(0.1, 4) == 2.5 and row["cpu_pct"] == percent(0.1, 0.3) == 33.3
    s.c.memory = 300 * MiB
    assert s.row(s.sample(), A)["mem_pct"] == percent(100, 300) == 33.3


def test_a_container_vanishing_mid_read_or_between_samples_breaks_nothing(tmp_path):
    tree = Tree(tmp_path, "hybrid")
    tree.put(A, cpu_s=1, quota=1, mem=MiB, limit=None, inactive=0)
    tree.put(B, cpu_s=1, quota=1, mem=MiB, limit=None, inactive=0, pid=4343)
    s = Clocked(tree)
    s.sample()
    # Listed (its memory folder is there) but its other controllers' folders already went.
    for d in tree.folders(B):
        if "/memory/" not in str(d):
            shutil.rmtree(d)
    tree.put(A, cpu_s=2, quota=1, mem=MiB, limit=None, inactive=0)
    out = s.sample()
    assert [r["id"] for r in out["list"]] == [A[:12]] and s.row(out, A)["cpu"] == 25.0
    tree.remove(B)
    tree.remove(A)
    assert s.sample()["list"] == [] and s.c.known == {}
    # The same id back (a restart): its counters start again, and no rate is made of the two lives.
    tree.put(A, cpu_s=0.1, quota=1, mem=MiB, limit=None, inactive=0, rx=10)
    back = s.row(s.sample(), A)
    assert back["cpu"] is None and back["rx_bps"] is None


def test_a_restart_under_the_same_id_between_samples_shows_no_bogus_rate(tmp_path):
    tree = Tree(tmp_path, "v1")
    tree.put(A, cpu_s=50, quota=1, mem=MiB, limit=None, inactive=0, rx=10**9)
    s = Clocked(tree)
    s.sample()
    shutil.rmtree(tree.proc / "4242")  # its init is gone...
    tree.put(A, cpu_s=0.2, quota=1, mem=MiB, limit=None, inactive=0, pid=5000, rx=100)  # ...a new one, from zero
    row = s.row(s.sample(), A)
    assert row["cpu"] is None and row["rx_bps"] is None  # counters went back: no rate this round
    tree.put(A, cpu_s=0.7, quota=1, mem=MiB, limit=None, inactive=0, pid=5000, rx=300)
    row = s.row(s.sample(), A)
    assert row["cpu"] == 12.5 and row["rx_bps"] == 200.0


def test_containers_off_and_no_cgroups_are_reported_missing_not_errors(tmp_path):
    from dashboard.sampling.collectors import Unavailable

    with pytest.raises(Unavailable, match="CONTAINERS=off"):
        Containers("off", lay=None)(Rates())
    with pytest.raises(Unavailable, match="no cgroup"):
        Containers(lay=None)(Rates())
    assert cg.layout(str(tmp_path / "no-mountinfo")) is None


def test_the_engine_socket_is_the_setting_then_docker_host_then_the_defaults(tmp_path):
    sock = tmp_path / "engine.sock"
    sock.write_text("")
    assert socket_path(f"unix://{sock}", {}) == (str(sock), "")
    assert socket_path("", {"DOCKER_HOST": str(sock)}) == (str(sock), "")
    path, why = socket_path("", {"DOCKER_HOST": "tcp://10.0.0.1:2375"})
    assert path is None and "not a unix socket" in why
    path, why = socket_path(str(tmp_path / "none.sock"), {})
    assert path is None and why == f"no engine socket at {tmp_path / 'none.sock'}"
    path, why = socket_path("", {})
    assert (path in ("/var/run/docker.sock", "/run/podman/podman.sock")) or "DOCKER_HOST unset" in why


def test_mountinfo_tells_v1_v2_and_hybrid_apart(tmp_path):
    hybrid = ("30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
              "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
              "32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n")
    v1, v2 = cg._mounts(hybrid)
    assert v1 == {"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct",
                  "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"} and v2 == "/sys/fs/cgroup/unified"
    assert cg._mounts("30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n") == ({}, "/sys/fs/cgroup")


# ---- container alert rules ---------------------------------------------------------------------

def sample(ts, *rows):
    return {"ts": ts, "containers": {"list": [{"name": n, "id": n, "cpu_pct": c, "mem_pct": m} for n, c, m in rows]}}


def test_a_container_rule_fires_and_resolves_once_per_container_with_its_figures():
    alerts = Alerts()
    every = alerts.add("container:* memory", ">", 90, 0, "ops")
    web = alerts.add("container:web cpu", ">", 80, 2, "ops")
    seen = []
    for ts, s in [(0, sample(0, ("web", 90, 95), ("db", 10, 50))), (1, sample(1, ("web", 90, 95), ("db", 10, 95))),
                  (2, sample(2, ("web", 90, 95), ("db", 10, 95))), (3, sample(3, ("web", 90, 50), ("db", 10, 95))),
                  (4, sample(4, ("web", 10, 50))), (5, {"ts": 5})]:
        seen += [(ts, r.id, change, alert_event(r, st, change, "h1").payload())
                 for r, st, change in alerts.evaluate(s, "h1")]
    assert [(ts, rid, ch, p["host"]) for ts, rid, ch, p in seen] == [
        (0, every.id, "firing", "h1/web"), (1, every.id, "firing", "h1/db"), (2, web.id, "firing", "h1/web"),
        (3, every.id, "resolved", "h1/web"), (4, every.id, "resolved", "h1/db"), (4, web.id, "resolved", "h1/web")]
    gone = seen[4][3]
    assert gone["container"]["name"] == "db" and gone["container"]["gone"] and "(container gone)" in gone["message"]
    assert seen[0][3]["container"]["mem_pct"] == 95 and "h1/web: container:* memory > 90" in seen[0][3]["message"]


def test_container_rules_are_checked_like_others():
    check("container:web cpu", ">", 80)
    for metric, op, value in (("container:web disk", ">", 1), ("container: cpu", ">", 1),
                              ("container:web cpu", ">", 150), ("container:web memory", "<", 0)):
        with pytest.raises(ValueError):
            check(metric, op, value)


def test_alert_set_takes_a_container_rule_as_typed(svc):
    ctx = Context(Operator("alice", "operator", "s", "127.0.0.1", "cookie"), svc.ops)
    cmd, values = commands.resolve("alert set container:web cpu > 80 --for 60", ctx.operator)
    rule = commands.run(ctx, cmd, values)
    assert (rule["metric"], rule["op"], rule["threshold"], rule["hold"]) == ("container:web cpu", ">", 80, 60)
    cmd, values = commands.resolve("alert set container:* memory > 90", ctx.operator)
    assert commands.run(ctx, cmd, values)["metric"] == "container:* memory"
    with pytest.raises(commands.CommandError) as err:
        commands.run(ctx, *commands.resolve("alert set container:web disk > 5", ctx.operator))
    assert err.value.code == "bad_args" and "container:<name|pattern> cpu" in err.value.message


def test_the_table_holds_containers_shown_at_most_the_heaviest_and_the_count_all(tmp_path):
    tree = Tree(tmp_path, "v2")
    tree.put(A, cpu_s=1, quota=None, mem=10 * MiB, limit=None, inactive=0)
    tree.put(B, cpu_s=1, quota=None, mem=10 * MiB, limit=None, inactive=0, pid=4343)
    s = Clocked(tree)
    s.c.shown = 1  # CONTAINERS_SHOWN
    s.sample()
    tree.put(A, cpu_s=1.1, quota=None, mem=10 * MiB, limit=None, inactive=0)
    tree.put(B, cpu_s=3, quota=None, mem=10 * MiB, limit=None, inactive=0, pid=4343)
    out = s.sample()
    assert out["running"] == 2 and [r["id"] for r in out["list"]] == [B[:12]]


def test_the_folders_are_listed_again_only_when_their_link_counts_move(tmp_path, monkeypatch):
    # On cgroup mounts (keep: what layout() finds) a folder's link count is 2 plus its subfolders;
    # this test's tree of ordinary folders counts the same way on most file systems.
    probe = tmp_path / "probe"
    probe.mkdir()
    before = probe.stat().st_nlink
    (probe / "sub").mkdir()
    if probe.stat().st_nlink != before + 1:
        pytest.skip("this file system does not count subfolders in a folder's link count")
    tree = Tree(tmp_path / "t", "v1")
    tree.put(A, cpu_s=1, quota=1, mem=MiB, limit=None, inactive=0)
    s = Clocked(tree)
    s.c.layout = cg.Layout(**{**tree.layout().__dict__, "keep": True})
    s.c.known.clear()
    listings = []
    real_find = cg.find
    monkeypatch.setattr(cg, "find", lambda *a, **kw: listings.append(a[1]) or real_find(*a, **kw))
    s.sample()  # the whole tree, then its parents from the next sample on
    s.sample()
    assert listings == [None, cg.parents_of({A: f"libpod_parent/libpod-{A}"})]
    for _ in range(3):
        assert [r["id"] for r in s.sample()["list"]] == [A[:12]]
    assert len(listings) == 2  # nothing made or removed: not listed again
    tree.put(B, cpu_s=1, quota=1, mem=MiB, limit=None, inactive=0, pid=4343)
    out = s.sample()
    assert len(listings) == 3 and sorted(r["id"] for r in out["list"]) == [A[:12], B[:12]]  # in that very sample
