"""The /proc reader against psutil, on this machine's real processes and on children made for it."""

import os
import shutil
import subprocess
import sys
import time

import psutil
import pytest

from dashboard.sampling import processes, procfs
from dashboard.sampling.rates import Rates

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc: Linux only")

TICK = 1.0 / procfs.CLK_TCK


@pytest.fixture
def children():
    """Start processes for a test; all are killed and reaped after it."""
    started: list[subprocess.Popen] = []

    def start(argv, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, close_fds=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def named(start, name: str) -> subprocess.Popen:
    """A Python child that renames itself (its comm, as prctl(PR_SET_NAME) does) and says when done."""
    code = ("import sys, time\n"
            f"open('/proc/self/comm', 'w').write({name!r})\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")
    proc = start([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def sleeper(start) -> subprocess.Popen:
    proc = start([shutil.which("sleep") or "/bin/sleep", "600"])
    wait_for(lambda: psutil.Process(proc.pid).name() == "sleep")  # exec'd: the image and name are sleep's
    return proc


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except psutil.NoSuchProcess:
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def table_round(table: processes.ProcessTable, rates: Rates) -> dict:
    rates.begin(time.monotonic())
    try:
        return table(rates)
    finally:
        rates.end()


def by_pid(rows) -> dict:
    return {r[0] if isinstance(r, tuple) else r.pid: r for r in rows}


def test_parse_cuts_the_name_at_the_last_parenthesis():
    line = b"4242 (a) b (c) d) S 1 4242 4242 0 -1 4194560 12 0 0 0 7 3 0 0 20 0 1 0 987654 1 2 3\n"
    comm, state, ppid, flags, utime, stime, start = procfs.parse_stat(line)
    assert (comm, state, ppid, flags) == (b"a) b (c) d", b"S", 1, 4194560)
    assert (utime, stime, start) == (7, 3, 987654)
    with pytest.raises((ValueError, IndexError)):
        procfs.parse_stat(b"")


def test_the_reader_agrees_with_psutil_on_every_live_process(children):
    mine = [sleeper(children) for _ in range(3)]
    listed = time.time()
    before = {p.pid: p for p in psutil.process_iter()}
    cpu_before = {}
    for pid, p in before.items():
        try:
            cpu_before[pid] = sum(p.cpu_times()[:2])
        except psutil.Error:
            pass
    rows = by_pid(procfs.Reader().scan())
    boot = psutil.boot_time()
    after = set(psutil.pids())
    stable = set(before) & after
    assert stable <= set(rows), "a process alive before and after the scan is missing from it"
    for pid in set(rows) - set(before) - after:  # churn: only a process that came and went in between
        assert procfs.created(rows[pid][2], boot) >= listed - 0.02, f"the scan made up pid {pid}"
    checked = 0
    for pid in stable:
        proc = before[pid]
        try:
            created, cpu_after, rss = proc.create_time(), sum(proc.cpu_times()[:2]), proc.memory_info().rss
        except psutil.Error:
            continue  # exited (or became unreadable) since the scan
        _, comm, start, cpu, rss_read = rows[pid]
        assert procfs.created(start, boot) == created, pid  # exactly: it is half of every key
        if pid in cpu_before:
            assert cpu_before[pid] - TICK <= cpu <= cpu_after + TICK, pid  # read in between, to the tick
        checked += 1
    assert checked >= len(mine)
    for child in mine:  # idle since they started: their memory stands still
        assert rows[child.pid][1] == b"sleep"
        assert rows[child.pid][4] == psutil.Process(child.pid).memory_info().rss > 0


def test_kernel_threads_and_zombies_are_in_the_table_as_with_psutil(children):
    zombie = children(["true"])
    wait_for(lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE)  # exited, not reaped
    rows = by_pid(procfs.Reader().scan())
    assert zombie.pid in rows and rows[zombie.pid][4] == 0
    old = {p.pid: p for p in psutil.process_iter()}
    assert old[zombie.pid].memory_info().rss == 0  # the psutil path showed it too, with no memory
    kthreads = [pid for pid in rows if _flags(pid) & 0x00200000]
    for pid in kthreads:  # none where the pid namespace hides them (in a container)
        assert rows[pid][4] == 0 == old[pid].memory_info().rss


def _flags(pid: int) -> int:
    try:
        return procfs.parse_stat(procfs.Reader().read(pid, "stat"))[3]
    except OSError:
        return 0


def test_a_name_with_spaces_and_parentheses_is_read_whole(children):
    odd = named(children, "a b) (c) d")
    row = by_pid(procfs.Reader().scan())[odd.pid]
    assert row[1] == b"a b) (c) d"
    assert procfs.created(row[2], psutil.boot_time()) == psutil.Process(odd.pid).create_time()
    table = processes.ProcessTable(backend="procfs")
    table_round(table, Rates())
    assert [p.name for p in table.latest if p.pid == odd.pid] == ["a b) (c) d"]


def test_a_name_the_kernel_cut_gets_its_full_name_once_per_lifetime(children, tmp_path, monkeypatch):
    link = tmp_path / "a-rather-long-process-name"
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    long = children([str(link), "600"])
    wait_for(lambda: psutil.Process(long.pid).name() == "a-rather-long-process-name")
    assert by_pid(procfs.Reader().scan())[long.pid][1] == b"a-rather-long-p"  # 15 characters in stat
    asked = []
    real = processes.same_process
    monkeypatch.setattr(processes, "same_process", lambda pid, *a: asked.append(pid) or real(pid, *a))
    table, rates = processes.ProcessTable(top_n=0, backend="procfs"), Rates()  # no owners to look up
    for _ in range(3):
        table_round(table, rates)
        assert [p.name for p in table.latest if p.pid == long.pid] == ["a-rather-long-process-name"]
    assert asked.count(long.pid) == 1


def test_a_process_that_exits_between_listing_and_reading_is_left_out(children, monkeypatch):
    gone_before_open, gone_after_open, gone_before_statm = (sleeper(children) for _ in range(3))
    gone_before_open.kill()
    gone_before_open.wait()  # reaped: its /proc directory is no more
    real_listdir, real_open = os.listdir, os.open

    def listdir(path):
        return real_listdir(path) + [b"%d" % gone_before_open.pid]

    def open_then_exit(path, flags, *args, **kwargs):
        if path == b"/proc/%d/statm" % gone_before_statm.pid and gone_before_statm.poll() is None:
            gone_before_statm.kill()  # its stat was read; it ends before statm is opened
            gone_before_statm.wait()
        fd = real_open(path, flags, *args, **kwargs)
        if path == b"/proc/%d/stat" % gone_after_open.pid and gone_after_open.poll() is None:
            gone_after_open.kill()  # open, then the process ends before the read
            gone_after_open.wait()
        return fd

    monkeypatch.setattr(procfs.os, "listdir", listdir)
    monkeypatch.setattr(procfs.os, "open", open_then_exit)
    rows = by_pid(procfs.Reader().scan())
    assert os.getpid() in rows and len(rows) > 3
    for child in (gone_before_open, gone_after_open, gone_before_statm):
        assert child.pid not in rows


def test_both_backends_give_the_same_rows_for_our_children(children):
    mine = [sleeper(children) for _ in range(3)] + [named(children, "two words (x)")]
    pids = {c.pid for c in mine}
    tables = {kind: processes.ProcessTable(top_n=5, backend=kind) for kind in ("psutil", "procfs")}
    rates = {kind: Rates() for kind in tables}
    for round_no in range(2):  # the second round has CPU rates
        for kind, table in tables.items():
            table_round(table, rates[kind])
            time.sleep(0.05)
        if round_no == 0:
            # The /proc scan built psutil objects only for the rows it showed (their owners).
            built = {p.pid for p in tables["procfs"].latest if p._proc is not None}
            assert built and built <= _shown(tables["procfs"])
    rows = {kind: [p for p in t.latest if p.pid in pids] for kind, t in tables.items()}
    assert [p.pid for p in rows["procfs"]] == [p.pid for p in rows["psutil"]] == sorted(pids)
    for old, new in zip(rows["psutil"], rows["procfs"]):
        assert (new.pid, new.name, new.created, new.rss) == (old.pid, old.name, old.created, old.rss)
        assert new.cpu is not None and old.cpu is not None and abs(new.cpu - old.cpu) < 5.0
    shown = {kind: tables[kind].rows(r) for kind, r in rows.items()}
    assert [r["user"] for r in shown["procfs"]] == [r["user"] for r in shown["psutil"]] == [psutil.Process().username()] * 4
    assert [p.pid for p in processes.matching(rows["procfs"], "two words")] == [mine[-1].pid]
    assert [p.pid for p in processes.matching(rows["psutil"], "two words")] == [mine[-1].pid]
    assert [p.pid for p in processes.top(rows["procfs"], 4, "mem")] == [p.pid for p in processes.top(rows["psutil"], 4, "mem")]
    assert all(p.proc.pid == p.pid and p.proc.create_time() == p.created for p in rows["procfs"])


def _shown(table: processes.ProcessTable) -> set[int]:
    return {p.pid for p in processes.top(table.latest, table.top_n, "cpu") + processes.top(table.latest, table.top_n, "mem")}


def test_the_lazy_psutil_object_refuses_a_reused_pid(children):
    child = sleeper(children)
    table = processes.ProcessTable(top_n=0, backend="procfs")  # shows no row, so builds no psutil object
    table_round(table, Rates())
    row = next(p for p in table.latest if p.pid == child.pid)
    assert all(p._proc is None for p in table.latest)
    with pytest.raises(psutil.NoSuchProcess):
        processes.same_process(child.pid, row.created + 1.0, row.start + processes.procfs.CLK_TCK)
    child.kill()
    child.wait()
    with pytest.raises(psutil.NoSuchProcess):
        row.proc
    assert table.owners.of(row) == "?"  # gone before anyone asked: as username() on a gone process


def test_without_a_readable_proc_the_table_uses_psutil(monkeypatch):
    monkeypatch.setattr(procfs.sys, "platform", "darwin")
    assert procfs.open_reader() is None
    monkeypatch.undo()
    monkeypatch.setattr(procfs, "open_reader", lambda: None)
    table = processes.ProcessTable(top_n=3)
    assert table.backend == "psutil"
    out = table_round(table, Rates())
    assert out["count"] == len(table.latest) > 1 and all(p._proc is not None for p in table.latest)
    with pytest.raises(RuntimeError):
        processes.ProcessTable(backend="procfs")
