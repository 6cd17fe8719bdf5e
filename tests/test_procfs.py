"""The /proc reader against psutil, on this machine's real processes and on children made for it."""

import errno
import gc
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest

from dashboard.sampling import processes, procfs
from dashboard.sampling.rates import Rates
from tests.support.waiting import eventually

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


def busy(start, seconds: float = 0.3) -> subprocess.Popen:
    """A child that has used some CPU (its ticks are not 0) and goes on spinning until stopped."""
    code = ("import time\n"
            f"end = time.process_time() + {seconds}\n"
            "while time.process_time() < end: pass\n"
            "print('ready', flush=True)\n"
            "while True: pass\n")
    proc = start([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def held_still(start) -> list[subprocess.Popen]:
    """Children of the test's own, stopped (SIGSTOP) so that none of their figures moves while it reads.

    Only these are compared between two reads: the suite's other processes
    start, exec and end theirs meanwhile, and with pid_max at 32768 a pid read
    twice can be two processes."""
    mine = [sleeper(start) for _ in range(3)] + [named(start, "two words (x)"), busy(start)]
    for child in mine:
        child.send_signal(signal.SIGSTOP)
    for child in mine:
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_STOPPED)
    return mine


def wait_for(check, timeout: float = 10.0) -> None:
    eventually(check, timeout, 0.01, ignoring=(psutil.NoSuchProcess,))


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


def test_the_reader_agrees_with_psutil_on_processes_held_still(children):
    mine = held_still(children)
    rows = by_pid(procfs.Reader().scan())
    boot = psutil.boot_time()
    assert os.getpid() in rows and len(rows) > len(mine)
    for child in mine:
        proc = psutil.Process(child.pid)
        _, comm, start, cpu, rss = rows[child.pid]
        assert comm == os.fsencode(proc.name())[:15]
        assert procfs.created(start, boot) == proc.create_time()  # exactly: it is half of every key
        assert cpu == pytest.approx(sum(proc.cpu_times()[:2]), abs=1e-9)  # stopped: to the tick, both ways
        assert rss == proc.memory_info().rss > 0
    assert rows[mine[-1].pid][3] >= 0.3 - TICK  # the busy one's CPU is there


def test_scan_and_sample_read_every_process_of_a_proc_and_nothing_else(fake):
    """Every process, once, with its own figures; on a /proc the test controls, so that none comes or goes
    unless the test says so."""
    (fake.root / "self").symlink_to(str(os.getpid()))
    given(fake, 500)
    for pid in range(400, 520):
        fake.put(pid, f"p{pid}", start=pid * 10, ticks=pid % 7, pages=pid, statm_pages=pid + 1)
    reader = procfs.Reader(root=str(fake.root))
    try:
        first = reader.sample()
        scanned = by_pid(reader.scan())
        assert sorted(int(p) for p in first.pids) == sorted(scanned) == list(range(400, 520))
        for pid, (_, comm, start, cpu, rss) in scanned.items():
            assert (comm, start, cpu, rss) == (b"p%d" % pid, pid * 10, (pid % 7) * TICK, (pid + 1) * procfs.PAGE_SIZE)
            data, started, ticks, pages, _ = first.state[b"%d" % pid]
            assert (procfs.comm(data), int(started), ticks, pages) == (comm, start, pid % 7, pid)
        assert all(first.used(i) == -1 for i in range(len(first.pids)))  # nothing to compare with yet
        for pid in range(400, 460):
            fake.put(pid, f"p{pid}", start=pid * 10, ticks=pid % 7 + 3, pages=pid)
        fake.reap(519)
        fake.put(600, "new", start=6000)
        given(fake, 600)
        second = reader.sample()
        assert len(second.pids) == len(set(second.pids)) == 120
        assert b"519" not in second.pids and b"600" in second.pids
        used = {int(n): second.used(i) for i, n in enumerate(second.pids)}
        assert used == {**{pid: 3 for pid in range(400, 460)}, **{pid: 0 for pid in range(460, 519)}, 600: -1}
        assert reader.kept == 120 and set(kept(reader)) == set(second.pids)
    finally:
        reader.close()
    assert reader.kept == 0


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
    mine = held_still(children)[:4]
    pids = {c.pid for c in mine}
    tables = {kind: processes.ProcessTable(top_n=5, backend=kind) for kind in ("psutil", "procfs")}
    rates = {kind: Rates() for kind in tables}
    for round_no in range(2):  # the second round has CPU rates
        for kind, table in tables.items():
            out = table_round(table, rates[kind])
            if kind == "procfs" and round_no == 0:
                # The /proc scan built psutil objects only for the rows it showed (their owners). What it
                # showed is its answer: the full table, made later, reads statm later, and the host's
                # other processes may have moved by then.
                shown = {r["pid"] for r in out["top_cpu"] + out["top_mem"]}
                built = {p.pid for p in table._made.values() if p._proc is not None}
                assert built and built <= shown
            time.sleep(0.05)
    rows = {kind: [p for p in t.latest if p.pid in pids] for kind, t in tables.items()}
    assert [p.pid for p in rows["procfs"]] == [p.pid for p in rows["psutil"]] == sorted(pids)
    for old, new in zip(rows["psutil"], rows["procfs"]):
        assert (new.pid, new.name, new.created, new.rss) == (old.pid, old.name, old.created, old.rss)
        assert new.cpu == old.cpu == 0.0  # stopped
    shown = {kind: tables[kind].rows(r) for kind, r in rows.items()}
    assert [r["user"] for r in shown["procfs"]] == [r["user"] for r in shown["psutil"]] == [psutil.Process().username()] * 4
    assert [p.pid for p in processes.matching(rows["procfs"], "two words")] == [mine[-1].pid]
    assert [p.pid for p in processes.matching(rows["psutil"], "two words")] == [mine[-1].pid]
    assert [p.pid for p in processes.top(rows["procfs"], 4, "mem")] == [p.pid for p in processes.top(rows["psutil"], 4, "mem")]
    assert all(p.proc.pid == p.pid and p.proc.create_time() == p.created for p in rows["procfs"])


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


# ---- kept stat files (Reader.sample) -------------------------------------------------------------

@pytest.fixture(autouse=True)
def no_readers_left():
    """Readers of earlier tests, gone but not yet collected, would hold part of the process's budget."""
    gc.collect()
    yield


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself holds


def kept(reader: procfs.Reader) -> dict:
    return dict(reader._fds)


def held(reader: procfs.Reader) -> int:
    """Descriptors the reader holds: its kept stat files and /proc/loadavg's."""
    return reader.kept + len(reader._aux)


def test_a_kept_stat_file_refuses_a_reaped_process_with_esrch(children):
    """What the kept files rest on: a read of a reaped process's open stat fails, it never reads another's."""
    child = sleeper(children)
    fd = os.open(f"/proc/{child.pid}/stat", os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 0).startswith(b"%d (sleep)" % child.pid)
        child.kill()
        child.wait()
        with pytest.raises(ProcessLookupError):
            os.pread(fd, 4096, 0)
    finally:
        os.close(fd)


def test_sample_agrees_with_scan_and_psutil_on_processes_held_still(children):
    mine = held_still(children)
    reader = procfs.Reader()
    try:
        first = reader.sample()
        scanned = by_pid(reader.scan())
        second = reader.sample()
        boot = psutil.boot_time()
        for tick in (first, second):
            assert len(tick.pids) == len(set(tick.pids))
        assert all(u == -1 for u in map(first.used, range(len(first.pids))))  # nothing to compare with yet
        for child in mine:
            name = b"%d" % child.pid
            for tick in (first, second):
                data, start, ticks, pages, _ = tick.state[name]
                assert int(start) == scanned[child.pid][2] and procfs.comm(data) == scanned[child.pid][1]
                assert ticks * TICK == pytest.approx(scanned[child.pid][3], abs=1e-9)  # stopped: the same ticks
            assert second.used(second.pids.index(name)) == 0
            stat_rss = second.state[name][3] * procfs.PAGE_SIZE  # stat's own field: near statm's, not equal
            assert abs(stat_rss - scanned[child.pid][4]) <= procfs.RSS_SLACK * procfs.PAGE_SIZE
            assert procfs.created(int(second.state[name][1]), boot) == psutil.Process(child.pid).create_time()
            assert reader.rss_of(name, second.state[name][0]) == psutil.Process(child.pid).memory_info().rss
        assert reader.kept == len(second.pids) and set(kept(reader)) == set(second.pids)
    finally:
        reader.close()
    assert reader.kept == 0


def test_the_files_of_processes_that_exit_are_closed(children):
    base = open_fds()
    reader = procfs.Reader()
    try:
        mine = [sleeper(children) for _ in range(5)]
        reader.sample()
        files = kept(reader)
        assert all(b"%d" % c.pid in files for c in mine)
        assert open_fds() == base + held(reader)
        for child in mine[:3]:  # two reaped, one a zombie (still a process: still kept)
            child.kill()
        for child in mine[:2]:
            child.wait()
        wait_for(lambda: psutil.Process(mine[2].pid).status() == psutil.STATUS_ZOMBIE)
        tick = reader.sample()
        files = kept(reader)
        assert [b"%d" % c.pid in files for c in mine] == [False, False, True, True, True]
        assert b"%d" % mine[0].pid not in tick.state and b"%d" % mine[2].pid in tick.state
        assert open_fds() == base + held(reader)
    finally:
        reader.close()
    assert open_fds() == base


def test_no_file_leaks_over_many_samples_with_processes_coming_and_going(children):
    base = open_fds()
    reader = procfs.Reader()
    table = processes.ProcessTable(top_n=3, backend="procfs")
    table._reader.close()
    table._reader = reader
    rates = Rates()
    short, started, gone = shutil.which("sleep") or "/bin/sleep", [], set()
    try:
        for round_no in range(25):
            for _ in range(3):
                started.append(children([short, "0.%d" % (1 + round_no % 3)]))  # each lives 0.1 to 0.3 s
            gone |= {p.pid for p in started if p.poll() is not None}  # exited and reaped: /proc has them no more
            if round_no % 5 == 4:
                [p.pid for p in table.latest]  # a console command now and then
            table_round(table, rates)
            assert open_fds() == base + held(reader)
            time.sleep(0.05)
        tick = table._tick
        assert len(gone) > 40 and not {b"%d" % pid for pid in gone} & set(kept(reader))
        assert set(kept(reader)) <= set(tick.pids)
        assert reader.kept >= len(tick.pids) - 10  # all but those that went while it read
    finally:
        reader.close()
    assert open_fds() == base


def test_beyond_the_cap_processes_are_read_without_keeping_a_file(children):
    mine = [sleeper(children) for _ in range(3)]
    base = open_fds()
    reader = procfs.Reader(cap=5)
    try:
        for _ in range(3):
            before = {b"%d" % r[0] for r in reader.scan()}
            tick = reader.sample()
            after = {b"%d" % r[0] for r in reader.scan()}
            assert reader.kept == 5 and open_fds() == base + held(reader) == base + 5 + 1
            assert before & after <= set(tick.pids)  # every process read, kept file or not
        for child in mine:  # idle, and known from the tick before, whether kept or not
            assert tick.used(tick.pids.index(b"%d" % child.pid)) == 0
        assert len(tick.pids) > 5 + len(mine)
    finally:
        reader.close()
    assert open_fds() == base


def test_all_readers_of_a_process_share_one_budget_and_a_collected_one_gives_its_files_back(children,
                                                                                           monkeypatch):
    [sleeper(children) for _ in range(3)]
    base, others = open_fds(), procfs._kept
    monkeypatch.setattr(procfs, "_budget", others + 8)
    first, second = procfs.Reader(), procfs.Reader()
    first.sample()
    tick = second.sample()
    assert (first.kept, second.kept) == (8, 0) and open_fds() == base + held(first) + held(second)
    assert len(tick.pids) > 8  # the second reads every process all the same
    first.close()
    second.sample()
    assert (first.kept, second.kept) == (0, 8)
    del second
    gc.collect()
    assert open_fds() == base and procfs._kept == others
    first.sample()
    assert first.kept == 8
    first.close()


def test_the_cap_follows_a_low_open_files_limit():
    assert procfs.fd_cap(20000) == procfs.FD_CACHE == 4096
    assert procfs.fd_cap(1024) == 256
    import resource

    assert procfs.fd_cap(resource.RLIM_INFINITY) == procfs.FD_CACHE


def test_worker_connections_leave_room_for_the_kept_stat_files(monkeypatch):
    import resource

    from dashboard import setting_kinds

    for soft in (1024, 4096, 20000, 65536, 10**6, resource.RLIM_INFINITY):
        monkeypatch.setattr(setting_kinds.resource, "getrlimit", lambda _which, soft=soft: (soft, soft))
        limit = 65536 if soft == resource.RLIM_INFINITY else soft
        assert setting_kinds.default_worker_connections() == max(100, min(limit - 256 - procfs.fd_cap(soft), 50000))
    monkeypatch.setattr(setting_kinds.resource, "getrlimit", lambda _which: (20000, 20000))
    assert setting_kinds.default_worker_connections() == 20000 - 256 - 4096


def test_out_of_descriptors_the_reader_gives_its_files_back(children, monkeypatch):
    sleeper(children)
    base = open_fds()
    reader = procfs.Reader()
    try:
        before = len(reader.sample().pids)
        assert reader.kept > 3
        for name in list(kept(reader))[:2]:  # files of two processes closed under it: opened again next time
            procfs.drop_file(reader._fds, name)
        real_open, refused = os.open, []

        def emfile_once(path, flags, *args):
            if not refused and path.endswith(b"/stat"):
                refused.append(path)
                raise OSError(errno.EMFILE, "Too many open files")
            return real_open(path, flags, *args)

        monkeypatch.setattr(procfs.os, "open", emfile_once)
        tick = reader.sample()
        assert refused and reader.kept == 0 and reader.cap == 0 and open_fds() == base + held(reader)
        assert len(tick.pids) >= before - 5  # still every process, with open, read, close
        assert len(reader.sample().pids) >= before - 5 and reader.kept == 0
    finally:
        reader.close()


# ---- a /proc of our own making: pid reuse, lagging RSS ---------------------------------------------

def stat_line(pid: int, comm: str, start: int, ticks: int = 0, pages: int = 100, flags: int = 0x400100) -> bytes:
    fields = ["S", "1", str(pid), str(pid), "0", "-1", str(flags), "0", "0", "0", "0", str(ticks), "0", "0", "0",
              "20", "0", "1", "0", str(start), "1000000", str(pages)] + ["0"] * 30
    return f"{pid} ({comm}) {' '.join(fields)}\n".encode()


class FakeProc:
    """A directory that reads like /proc: <pid>/stat and statm files; os.pread of a stat file that was
    removed (its process reaped) fails with ESRCH, as the kernel's does."""

    def __init__(self, root) -> None:
        self.root = root

    def put(self, pid: int, comm: str, start: int, ticks: int = 0, pages: int = 100, statm_pages: int | None = None):
        """A process, or (same pid, start) new figures for one: written into the same files."""
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        (d / "stat").write_bytes(stat_line(pid, comm, start, ticks, pages))
        (d / "statm").write_bytes(b"5000 %d 50 10 0 200 0\n" % (pages if statm_pages is None else statm_pages))

    def reap(self, pid: int) -> None:
        """The process is gone: its files too (a kept one then reads ESRCH)."""
        shutil.rmtree(self.root / str(pid))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    real = os.pread

    def pread(fd, size, offset):
        if os.fstat(fd).st_nlink == 0:
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return real(fd, size, offset)

    monkeypatch.setattr(procfs.os, "pread", pread)
    return FakeProc(tmp_path)


def test_a_reused_pid_is_another_process_and_its_file_is_opened_again(fake):
    fake.put(4242, "first", start=1000, ticks=50)
    fake.put(4243, "other", start=1001)
    base = open_fds()
    reader = procfs.Reader(root=str(fake.root))
    try:
        reader.sample()
        fd = kept(reader)[b"4242"]
        fake.put(4242, "first", start=1000, ticks=80)  # the same process, 30 ticks on
        tick = reader.sample()
        assert tick.used(tick.pids.index(b"4242")) == 30 and kept(reader)[b"4242"] == fd  # the same file
        fake.reap(4242)
        fake.put(4242, "second", start=2000, ticks=5)  # exited, reaped; the number given to a new process
        tick = reader.sample()
        i = tick.pids.index(b"4242")
        assert tick.state[b"4242"][1] == b"2000" and procfs.comm(tick.state[b"4242"][0]) == b"second"
        assert tick.used(i) == -1  # new: no CPU rate from the old one's ticks
        assert os.fstat(kept(reader)[b"4242"]).st_ino == os.stat(fake.root / "4242" / "stat").st_ino  # opened again
        assert open_fds() == base + 2  # and the old one closed
        fake.reap(4243)
        tick = reader.sample()
        assert tick.pids == [b"4242"] and set(kept(reader)) == {b"4242"} and open_fds() == base + 1
    finally:
        reader.close()
    assert open_fds() == base


def test_a_new_process_on_a_reused_pid_gets_its_own_row(fake):
    fake.put(4242, "first", start=1000, pages=300)
    table = fake_table(fake, top_n=1)
    rates = Rates()
    table_round(table, rates)
    old = table.latest[0]
    fake.reap(4242)
    fake.put(4242, "second", start=2000, pages=400)
    out = table_round(table, rates)
    new = table.latest[0]
    assert (old.name, new.name) == ("first", "second") and new.created > old.created and new.cpu is None
    assert out["top_mem"][0]["name"] == "second" and out["top_mem"][0]["rss"] == 400 * procfs.PAGE_SIZE


def fake_table(fake: FakeProc, top_n: int) -> processes.ProcessTable:
    table = processes.ProcessTable(top_n=top_n, backend="procfs")
    table._reader.close()
    table._reader = procfs.Reader(root=str(fake.root))
    return table


def test_the_top_by_memory_is_statm_s_though_stat_lags(fake):
    """stat's RSS may be off by RSS_SLACK pages: the table ranks by it but shows and orders by statm's."""
    slack = procfs.RSS_SLACK
    fake.put(101, "big", start=10, pages=100_000, statm_pages=100_000)
    fake.put(102, "lagging", start=11, pages=50_000 - slack, statm_pages=50_000 + slack // 2)  # stat under
    fake.put(103, "ahead", start=12, pages=50_000 + slack // 2, statm_pages=50_000 - slack)  # stat over
    fake.put(104, "small", start=13, pages=50_000 - 3 * slack, statm_pages=50_000 - 3 * slack)
    for pid in range(200, 240):
        fake.put(pid, "tiny", start=pid, pages=10 + pid)
    table = fake_table(fake, top_n=2)
    rates = Rates()
    for _ in range(2):
        out = table_round(table, rates)
        assert [r["name"] for r in out["top_mem"]] == ["big", "lagging"]
        assert [r["rss"] for r in out["top_mem"]] == [100_000 * procfs.PAGE_SIZE, (50_000 + slack // 2) * procfs.PAGE_SIZE]
        assert out["count"] == 44 and len(table._made) < 44  # rows for those that may be shown, not all
    assert [p.name for p in processes.top(table.latest, 2, "mem")] == ["big", "lagging"]
    assert len(table._made) == 44
    by_name = {p.name: p.rss for p in table.latest}
    assert by_name["ahead"] == (50_000 - slack) * procfs.PAGE_SIZE  # the full table has statm's too


def test_the_top_by_cpu_is_by_ticks_then_statm_s_rss(fake):
    for pid, pages in ((301, 500), (302, 900), (303, 700)):
        fake.put(pid, "p%d" % pid, start=pid, ticks=0, pages=pages, statm_pages=pages)
    table = fake_table(fake, top_n=2)
    rates = Rates()
    out = table_round(table, rates)
    assert [r["pid"] for r in out["top_cpu"]] == [302, 303] and all(r["cpu"] is None for r in out["top_cpu"])
    fake.put(301, "p301", start=301, ticks=3, pages=500)
    fake.put(303, "p303", start=303, ticks=0, pages=900 + procfs.RSS_SLACK // 2, statm_pages=600)  # stat over 302's
    time.sleep(0.1)
    out = table_round(table, rates)
    assert [r["pid"] for r in out["top_cpu"]] == [301, 302]
    assert out["top_cpu"][0]["cpu"] > 0 and out["top_cpu"][1]["cpu"] == 0.0
    assert [r["rss"] for r in out["top_cpu"]] == [500 * procfs.PAGE_SIZE, 900 * procfs.PAGE_SIZE]


# ---- the table's rows are psutil's for what it shows ---------------------------------------------

def test_the_rows_shown_and_the_full_table_have_psutil_s_rss(children):
    code = "import sys, time\nx = b'1' * (%d << 20)\nprint('ready', flush=True)\ntime.sleep(600)\n"
    big = []
    for mb in (600, 620, 640):  # written, so resident: more than anything else here, browsers included
        proc = children([sys.executable, "-c", code % mb], stdout=subprocess.PIPE, text=True)
        big.append(proc)
    for proc in big:
        assert proc.stdout.readline().strip() == "ready"
    still = held_still(children)
    for proc in big:
        proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED)
    table, rates = processes.ProcessTable(top_n=3, backend="procfs"), Rates()
    table_round(table, rates)
    time.sleep(0.05)
    out = table_round(table, rates)
    assert {r["pid"] for r in out["top_mem"]} == {p.pid for p in big}  # the biggest on this host
    assert [r["pid"] for r in out["top_mem"]] == [p.pid for p in reversed(big)]
    assert [r["rss"] for r in out["top_mem"]] == [psutil.Process(p.pid).memory_info().rss for p in reversed(big)]
    rows = by_pid(table.latest)  # every row, made now: statm's RSS, as psutil reads it
    assert out["count"] == len(rows)
    for proc in still + big:  # the processes that hold still; the host's others may move between two reads
        assert rows[proc.pid].rss == psutil.Process(proc.pid).memory_info().rss > 0


# ---- listing /proc only when a pid was given ---------------------------------------------------

def test_a_new_process_moves_loadavg_s_last_pid_and_is_in_the_next_sample(children):
    reader = procfs.Reader()
    try:
        for _ in range(3):  # long enough quiet for the reader to stop listing, if nothing forks meanwhile
            reader.sample()
        given = open("/proc/loadavg").read().split()[4]
        child = sleeper(children)
        assert open("/proc/loadavg").read().split()[4] != given
        assert b"%d" % child.pid in reader.sample().pids
        for _ in range(2):
            reader.sample()
        child.kill()
        child.wait()
        assert b"%d" % child.pid not in reader.sample().pids
        assert b"%d" % child.pid not in kept(reader)
    finally:
        reader.close()


@pytest.fixture
def listings(monkeypatch):
    calls = []
    real = os.listdir

    def listdir(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(procfs.os, "listdir", listdir)
    return calls


def given(fake: FakeProc, pid: int) -> None:
    (fake.root / "loadavg").write_text(f"0.10 0.20 0.30 1/99 {pid}\n")


def test_while_no_pid_is_given_the_reader_reads_the_processes_it_knows(fake, listings):
    (fake.root / "self").symlink_to(str(os.getpid()))
    given(fake, 500)
    fake.put(401, "a", start=1)
    fake.put(402, "b", start=2)
    reader = procfs.Reader(root=str(fake.root))
    try:
        reader.sample()
        reader.sample()  # the pid stood still since the first: listed once more, then trusted
        assert len(listings) == 2
        fake.put(401, "a", start=1, ticks=7)
        tick = reader.sample()
        assert len(listings) == 2 and tick.used(tick.pids.index(b"401")) == 7
        fake.reap(402)  # gone: its read fails, no listing needed
        assert sorted(reader.sample().pids) == [b"401"] and set(kept(reader)) == {b"401"} and len(listings) == 2
        fake.put(403, "c", start=3)  # comes, and the pid is given
        given(fake, 403)
        assert sorted(reader.sample().pids) == [b"401", b"403"] and len(listings) == 3
        reader.sample()  # once more after the pid moved
        reader.sample()
        assert len(listings) == 4
    finally:
        reader.close()


def test_the_reader_lists_every_list_every_and_stops_trusting_a_pid_that_did_not_move(fake, listings, monkeypatch):
    (fake.root / "self").symlink_to(str(os.getpid()))
    given(fake, 500)
    fake.put(401, "a", start=1)
    reader = procfs.Reader(root=str(fake.root))
    try:
        for _ in range(3):
            reader.sample()
        assert len(listings) == 2
        fake.put(404, "unannounced", start=4)  # came without moving the pid: an emulated /proc
        assert sorted(reader.sample().pids) == [b"401"]
        monkeypatch.setattr(procfs, "LIST_EVERY", 0.0)
        assert sorted(reader.sample().pids) == [b"401", b"404"] and len(listings) == 3
        monkeypatch.setattr(procfs, "LIST_EVERY", 1e9)
        fake.put(405, "more", start=5)
        assert sorted(reader.sample().pids) == [b"401", b"404", b"405"] and len(listings) == 4  # listed every time now
        reader.sample()
        assert len(listings) == 5 and reader._aux == {}
    finally:
        reader.close()


def test_a_proc_of_another_pid_namespace_is_always_listed(fake, listings):
    (fake.root / "self").symlink_to("1")  # not this process: /proc is another namespace's
    given(fake, 500)
    fake.put(401, "a", start=1)
    reader = procfs.Reader(root=str(fake.root))
    try:
        for _ in range(4):
            reader.sample()
        assert len(listings) == 4 and reader._aux == {}
    finally:
        reader.close()
