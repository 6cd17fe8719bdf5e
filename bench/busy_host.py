"""Process sampling on a busy host: CPU per sample with about 100, 1,000 and 3,000 processes.

The process table is the one collector whose cost grows with the host. This
adds cheap idle processes until the host has about each count (none when it
already has that many; the real count is reported) and, at each count, in
this one process and in alternating rounds so that noise on the machine hits
all alike, times with time.process_time():

  (a) a plain psutil scan of the fields the table needs: process_iter() and,
      inside oneshot(), cpu_times, memory_info, create_time and name (the name
      kept per process lifetime, as the app did before), i.e. the app's scan
      before it read /proc itself;
  (b) our ProcessTable collector alone, the one the sampler of (c) calls (what
      it reads on this system: /proc on Linux, psutil elsewhere);
  (c) our whole sampler.sample(): every collector of the app's own Instance,
      built as bench/sampler_bench.py builds it;
  (d) after a sample of (b), the full table as a console `ps` or `top` reads
      it (ProcessTable.rows(latest)): what such a command adds to the sample
      it answers from (the /proc table makes every row then, statm included).

It prints medians with min-max per count, the ratios (b)/(a) and (c)/(a), a
verdict for the target "(c) at 1,000 processes <= 0.3x (a)", and one JSON
object as the last line, with the stat files the table keeps open.

The extra processes are `cat`s reading one pipe whose only writer is this
process: they use no CPU, and they all end when it ends, however it ends
(closing the pipe is their EOF; a SIGKILLed benchmark closes it too). They
are also in one process group, killed and reaped in a `finally`. They are
started with posix_spawn: about 1 ms each.

    python -m bench.busy_host [--counts 100,1000,3000] [--rounds 3] [--samples 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import sys
import tempfile
import time

TARGET_RATIO = 0.3  # (c)/(a), from issue 16
TARGET_COUNT = 1000
MARGIN = 200  # processes (and threads) left free under every system limit


def count_processes() -> int:
    import psutil

    return len(psutil.pids())


class Sleepers:
    """Idle child processes, all ended and reaped on close()."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self._read, self._write = os.pipe()  # not inheritable: only the dup2 below reaches a child
        self._group = 0  # the first child's pid, once there is one: the others join its group
        self._cat = shutil.which("cat") or "/bin/cat"

    def __len__(self) -> int:
        return len(self.pids)

    def add(self, n: int) -> None:
        # posix_spawn (a vfork underneath) rather than subprocess: about 1 ms a child instead of 4,
        # which is most of this benchmark's time at 3,000 processes.
        actions = [(os.POSIX_SPAWN_DUP2, self._read, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_DUP2, 1, 2)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
        for _ in range(n):
            pid = os.posix_spawn(self._cat, [self._cat], env, file_actions=actions, setpgroup=self._group)
            self._group = self._group or pid
            self.pids.append(pid)

    def close(self) -> None:
        for fd in (self._write, self._read):  # EOF for every cat: they exit by themselves
            try:
                os.close(fd)
            except OSError:
                pass
        if self._group:
            try:
                os.killpg(self._group, signal.SIGKILL)
            except OSError:
                pass  # all gone already
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids = []

    def __enter__(self) -> "Sleepers":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def limits() -> dict:
    """What bounds how many processes this benchmark may add."""
    def read(path: str) -> int | None:
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return {
        "nproc": None if nproc == resource.RLIM_INFINITY else nproc,
        "nproc_enforced": os.geteuid() != 0,  # root is not held to RLIMIT_NPROC
        "nofile": None if nofile == resource.RLIM_INFINITY else nofile,
        "pid_max": read("/proc/sys/kernel/pid_max"),
        "threads_max": read("/proc/sys/kernel/threads-max"),
        "cgroup_pids_max": read("/sys/fs/cgroup/pids.max"),
    }


def _my_threads() -> int:
    """Threads of every process of this user: what RLIMIT_NPROC counts."""
    import psutil

    me, total = os.getuid(), 0
    for proc in psutil.process_iter():
        try:
            if proc.uids().real == me:
                total += proc.num_threads()
        except psutil.Error:
            continue
    return total


def room(lim: dict, processes: int) -> tuple[int, str | None]:
    """How many processes may be added, and which limit says so (None when nothing is near)."""
    caps = []
    for name in ("pid_max", "threads_max", "cgroup_pids_max"):
        if lim.get(name):
            caps.append((lim[name] - processes - MARGIN, name))
    if lim["nproc"] is not None and lim["nproc_enforced"]:
        caps.append((lim["nproc"] - _my_threads() - MARGIN, "ulimit -u"))
    if not caps:
        return sys.maxsize, None
    n, name = min(caps)
    return max(0, n), name


def psutil_scan(names: dict) -> int:
    """(a): the app's process scan before it read /proc, with psutil's own calls."""
    import psutil

    seen = 0
    for proc in psutil.process_iter():
        try:
            with proc.oneshot():
                proc.cpu_times()
                proc.memory_info()
                key = (proc.pid, proc.create_time())
                if key not in names:
                    names[key] = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        seen += 1
    return seen


def _stats(ms: list[float]) -> dict:
    return {"median_ms": round(statistics.median(ms), 3), "min_ms": round(min(ms), 3),
            "max_ms": round(max(ms), 3), "n": len(ms)}


def measure_count(methods: dict, rounds: int, samples: int, spacing: float, warmup: int) -> dict:
    """CPU ms per call of each method, rounds outermost, the order rotating per round."""
    for fn in methods.values():
        for _ in range(warmup):  # new processes: psutil objects, names, first rates
            fn()
    spent: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for rnd in range(rounds):
        k = rnd % len(order)
        for name in order[k:] + order[:k]:
            fn = methods[name]
            for _ in range(samples):
                t = time.process_time()
                fn()
                spent[name].append(1000 * (time.process_time() - t))
                time.sleep(spacing)
    return {name: _stats(ms) for name, ms in spent.items()}


def full_table(table, sample, calls: int, spacing: float) -> dict:
    """(d): CPU ms of table.rows(table.latest) right after a sample, as `ps` and `top` read it."""
    table.rows(table.latest)  # owners of every process: looked up once per process lifetime
    spent = []
    for _ in range(calls):
        sample()
        t = time.process_time()
        table.rows(table.latest)
        spent.append(1000 * (time.process_time() - t))
        time.sleep(spacing)
    return _stats(spent)


def run(counts: list[int], rounds: int, samples: int, spacing: float, warmup: int) -> dict:
    from dashboard.sampling.rates import Rates

    from .sampler_bench import build_services

    lim = limits()
    out: dict = {"rounds": rounds, "samples": samples, "spacing_s": spacing, "limits": lim, "counts": []}
    with tempfile.TemporaryDirectory(prefix="bench-busy-") as scratch, Sleepers() as extra:
        svc = build_services(scratch)
        try:
            # (b) calls the sampler's own table, as (c) does: one table, as in the app, whose kept stat
            # files stay within the process's budget (procfs.FD_CACHE) at 3,000 processes too.
            table = svc.processes
            out["backend"] = getattr(table, "backend", "psutil")
            out["sampler_backend"] = getattr(svc.processes, "backend", "psutil")
            rates = Rates()

            def table_alone():
                rates.begin(time.monotonic())
                table(rates)
                rates.end()

            names: dict = {}

            def plain_psutil():
                psutil_scan(names)

            methods = {"psutil_scan": plain_psutil, "table": table_alone, "sample": svc.sampler.sample}
            for want in sorted(counts):
                row: dict = {"target": want}
                have = count_processes()
                add = max(0, want - have)
                allowed, limit = room(lim, have)
                if add > allowed:
                    row["capped"] = f"{limit} leaves room for {allowed} more processes, not {add}"
                    add = allowed
                t = time.monotonic()
                extra.add(add)
                row["spawn_s"] = round(time.monotonic() - t, 1)
                row["processes_before"] = count_processes()
                row.update(measure_count(methods, rounds, samples, spacing, warmup))
                row["full_table"] = full_table(table, table_alone, samples, spacing)
                reader = getattr(table, "_reader", None)
                row["kept_files"] = reader.kept if reader is not None else 0
                row["processes"] = count_processes()
                row["extra"] = len(extra)
                base = row["psutil_scan"]["median_ms"]
                row["table_ratio"] = round(row["table"]["median_ms"] / base, 3) if base else None
                row["sample_ratio"] = round(row["sample"]["median_ms"] / base, 3) if base else None
                out["counts"].append(row)
                print(line(row), file=sys.stderr, flush=True)
        finally:
            svc.shutdown("benchmark finished")
    out["target"] = verdict(out["counts"])
    return out


def verdict(rows: list[dict]) -> dict:
    at = next((r for r in rows if r["target"] == TARGET_COUNT), None)
    ratio = at["sample_ratio"] if at else None
    return {"what": f"whole sample (c) at {TARGET_COUNT:,} processes <= {TARGET_RATIO}x the plain psutil scan (a)",
            "processes": at["processes"] if at else None, "ratio": ratio,
            "pass": None if ratio is None or at.get("capped") else ratio <= TARGET_RATIO}


def _cell(s: dict) -> str:
    return f"{s['median_ms']:.2f} ({s['min_ms']:.2f}-{s['max_ms']:.2f})"


def line(row: dict) -> str:
    full = _cell(row["full_table"]) if "full_table" in row else "-"
    return (f"{row['processes']:>9}  {row['extra']:>5}  {_cell(row['psutil_scan']):>22}  {_cell(row['table']):>22}  "
            f"{_cell(row['sample']):>22}  {row['table_ratio']:>7}  {row['sample_ratio']:>7}  {full:>22}")


def render(result: dict) -> str:
    """The printed table of a result (bench/__main__.py prints it too)."""
    if "error" in result:
        return f"Busy host: failed: {result['error']}"
    target = result.get("target") or {}
    lines = [
        f"Busy host (process sampling, CPU ms per sample: median (min-max) of {result['rounds']} rounds x "
        f"{result['samples']} samples; table reads via {result.get('backend', '?')}):",
        f"{'processes':>9}  {'extra':>5}  {'(a) psutil scan':>22}  {'(b) our table':>22}  "
        f"{'(c) whole sample':>22}  {'(b)/(a)':>7}  {'(c)/(a)':>7}  {'(d) ps/top full table':>22}  target",
    ]
    for row in result["counts"]:
        mark = ""
        if row["target"] == TARGET_COUNT:
            ok = target.get("pass")
            mark = f"  <= {TARGET_RATIO}x: " + ("pass" if ok else "FAIL" if ok is False else "not judged")
        lines.append(line(row) + mark + (f"  (capped: {row['capped']})" if row.get("capped") else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Process sampling CPU with 100, 1,000 and 3,000 processes on the host")
    p.add_argument("--counts", default="100,1000,3000", help="processes on the host, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per count (default 3)")
    p.add_argument("--samples", type=int, default=5, help="timed calls of each method per round (default 5)")
    p.add_argument("--spacing", type=float, default=0.05, help="seconds between timed calls")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls of each method per count")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    # A SIGTERM ends the run through the same finally as Ctrl-C: the extra processes go with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = run(counts, max(1, args.rounds), max(1, args.samples), max(0.0, args.spacing), max(0, args.warmup))
    except KeyboardInterrupt:
        print(f"interrupted; the extra processes are gone ({count_processes()} on the host)", file=sys.stderr)
        return 130
    print(render(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
