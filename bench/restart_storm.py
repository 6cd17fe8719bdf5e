"""A deploy under load: how fast viewers hit the next server, with and without the slow drain.

    python -m bench.restart_storm [--viewers 5000] [--drain 20] [--opens 200] [--retry-ms 1000] [--in-place]

It models a platform that starts the new instance first and then moves the
traffic (Heroku's preboot, Render): server B is started, N EventSource-like
viewers (asyncio, raw sockets: they honour `retry:` and resume with
Last-Event-ID) watch server A; then the "router" sends every new connection
to B and A gets SIGTERM. With --in-place, a restart where it stands (bin/run,
a VM, a container restarted): A gets SIGTERM, and once it has exited B starts
on the same port and the same DATA_DIR; the viewers retry that port, and a
`seq` is compared across the two processes (B must number on from what A
kept, with none skipped or repeated). Run twice: A and B as before the drain (DRAIN_SECONDS
0, no admission limit), then with the drain and the admission of the
settings given. For each it reports: how A's streams ended (first to last,
seconds after SIGTERM), B's opened streams per second (peak over any one
second, from B's own log), answers that deferred a stream after SIGTERM, samples skipped or
repeated within each server over every reconnect (by `seq`, per viewer), seconds until
every viewer had an event from B, B's CPU seconds over that time, and the
delivery delay (p99, a sample's `ts` to its arrival) of the viewers already live
on B (there over 2 s) while the rest storm in, and over the 5 s after. The
last line is one JSON object, with the run with the drain judged against the
targets: at most viewers/20 opens in any second, everyone back within 30 s,
no sample skipped or repeated (`bin/bench --storm` runs it beside the CPU per
stream open against Node's, bench/open_cost.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

from .servers import Server


_SEQ = re.compile(rb'"seq":\s*([0-9]+)')
_TS = re.compile(rb'"ts":\s*([0-9.]+)')
SETTLED = 2.0  # seconds on B after which a viewer counts as live (past its resume's catch-up)


class Viewer:
    __slots__ = ("last_id", "ends", "on_b", "deferred", "last_seq", "seq_port", "gaps", "repeats", "delays")

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.ends: list[float] = []  # monotonic, each stream's end
        self.on_b: float | None = None  # monotonic, first event from B
        self.deferred: list[float] = []  # monotonic, each answer that deferred a stream
        # The last sample seen from one server, across reconnects to it. A and B
        # share nothing (no Redis), so each numbers its own samples: seq is
        # compared within a server, over every deferral and resume.
        self.last_seq: int | None = None
        self.seq_port: int | None = None
        self.gaps = 0  # samples skipped (a seq more than one past the last)
        self.repeats = 0  # samples whose seq was not past the last (shown twice, or two samples one seq)
        # (monotonic, seconds from the sample's ts to its arrival) of each new sample while live on B.
        self.delays: list[tuple[float, float]] = []


class Crowd:
    """Viewers that connect to whatever port `target` says when they (re)connect."""

    def __init__(self, n: int, port: int, token: str) -> None:
        self.viewers = [Viewer() for _ in range(n)]
        self.target = port
        self.b_port: int | None = None
        self.token = token
        self.stopping = False
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        tasks = []
        for i, v in enumerate(self.viewers):
            tasks.append(asyncio.create_task(self._viewer(v)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)
        while not self.stopping:
            await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _viewer(self, v: Viewer) -> None:
        retry = 1.0
        while not self.stopping:
            try:
                retry = await self._once(v, self.target) or retry
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            await asyncio.sleep(retry)

    async def _once(self, v: Viewer, port: int) -> float | None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            head = f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
            if v.last_id:
                head += f"Last-Event-ID: {v.last_id}\r\n"
            writer.write((head + "\r\n").encode())
            if v.seq_port != port:
                v.last_seq, v.seq_port = None, port
            status = await reader.readuntil(b"\r\n\r\n")
            if b"transfer-encoding: chunked" not in status.lower():
                v.deferred.append(time.monotonic())  # a short answer: retry: and nothing else
                return _retry(await reader.read(4096))
            retry = None
            buf = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    v.ends.append(time.monotonic())
                    return retry
                buf += (await reader.readexactly(size + 2))[:-2]
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    retry = _retry(block) or retry
                    if b"\nevent: metrics\n" in b"\n" + block + b"\n" and (m := _SEQ.search(block)):
                        seq = int(m.group(1))
                        now = time.monotonic()
                        if (port == self.b_port and v.on_b is not None and now - v.on_b > SETTLED
                                and (v.last_seq is None or seq > v.last_seq) and (t := _TS.search(block))):
                            v.delays.append((now, time.time() - float(t.group(1))))
                        if v.last_seq is not None:
                            v.gaps += max(0, seq - v.last_seq - 1)
                            v.repeats += seq <= v.last_seq
                        v.last_seq = seq if v.last_seq is None else max(seq, v.last_seq)
                    for line in block.split(b"\n"):
                        if line.startswith(b"id: "):
                            v.last_id = line[4:].decode()
                            if port == self.b_port and v.on_b is None:
                                v.on_b = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            v.ends.append(time.monotonic())
            raise
        finally:
            writer.close()


def _p99_ms(delays: list[float]) -> float | None:
    return round(1000 * delays[min(len(delays) - 1, int(0.99 * len(delays)))], 1) if delays else None


def _retry(block: bytes) -> float | None:
    for line in block.split(b"\n"):
        if line.startswith(b"retry: "):
            return int(line[7:]) / 1000
    return None


def _opens_per_second(log: str) -> list[float]:
    """Times (the server's clock) of the streams B opened, from its JSON request log."""
    out = []
    for line in log.splitlines():
        if '"stream": "opened"' in line:
            try:
                out.append(json.loads(line)["ts"])
            except ValueError:
                pass
    return sorted(out)


def _peak(times: list[float]) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


def run_one(label: str, viewers: int, env: dict[str, str], home: Path, in_place: bool = False) -> dict:
    common = {"SSE_RETRY_MS": env.pop("SSE_RETRY_MS"), "SAMPLE_INTERVAL": "1", "LOG_FORMAT": "json"}
    a = Server("ours", home, home, env={**common, **env}).start()
    # B: the same operator token, as one app's instances share; in place, A's port and so its DATA_DIR.
    b = Server("ours", home, home, env={**common, **env, "OPERATOR_TOKEN": a.token},
               port=a.port if in_place else None)
    b.token = a.token
    if not in_place:
        b.start()
    crowd = Crowd(viewers, a.port, a.token)
    crowd.b_port = None if in_place else b.port
    crowd.thread.start()
    try:
        deadline = time.monotonic() + 120
        while sum(1 for v in crowd.viewers if v.last_id) < viewers and time.monotonic() < deadline:
            time.sleep(0.2)
        start = time.monotonic()
        if in_place:
            a.proc.send_signal(signal.SIGTERM)
            a.proc.wait(120)
            b.start()  # the viewers have been retrying this port since A closed it
            crowd.b_port = b.port  # every event on it from now on is B's
            cpu0 = b.cpu_seconds()
        else:
            cpu0 = b.cpu_seconds()
            crowd.target = b.port  # the router sends new connections to B...
            a.proc.send_signal(signal.SIGTERM)  # ...and A is told to go
        deadline = start + 180
        while any(v.on_b is None for v in crowd.viewers) and time.monotonic() < deadline:
            time.sleep(0.1)
        back = max((v.on_b or deadline) for v in crowd.viewers) - start
        cpu = b.cpu_seconds() - cpu0
        time.sleep(5)  # the live viewers' delivery once everyone is back, to set beside the storm's
        a.proc.wait(60)
    finally:
        crowd.stopping = True
        crowd.thread.join(15)
        a.stop()
        b.stop()
    ends = sorted(v.ends[0] - start for v in crowd.viewers if v.ends and v.ends[0] >= start)
    # Delivery to the viewers already live on B: while the rest storm in, and over the 5 s after.
    storm = sorted(d for v in crowd.viewers for t, d in v.delays if t <= start + back)
    after = sorted(d for v in crowd.viewers for t, d in v.delays if start + back < t <= start + back + 5)
    opened = _opens_per_second(b.log())
    result = {"label": label, "viewers": viewers, "ends_first": round(ends[0], 2) if ends else None,
              "ends_last": round(ends[-1], 2) if ends else None, "peak_opens_per_s": _peak(opened),
              "deferred": sum(1 for v in crowd.viewers for t in v.deferred if t >= start),
              "seq_gaps": sum(v.gaps for v in crowd.viewers), "seq_repeats": sum(v.repeats for v in crowd.viewers),
              "all_back_s": round(back, 2),
              "b_cpu_s": round(cpu, 2), "missing": sum(1 for v in crowd.viewers if v.on_b is None),
              "live_p99_ms_storm": _p99_ms(storm), "live_p99_ms_after": _p99_ms(after), "live_events": len(storm)}
    return result


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=5000)
    parser.add_argument("--drain", type=float, default=20.0, help="DRAIN_SECONDS (the default's)")
    parser.add_argument("--opens", type=int, help="STREAM_OPENS_PER_SECOND (default: viewers/25, as the "
                        "deploy guide advises for a crowd that size)")
    parser.add_argument("--retry-ms", type=int, default=1000)
    parser.add_argument("--in-place", action="store_true",
                        help="B on A's port and DATA_DIR once A has exited, not beside it (a restart in place)")
    args = parser.parse_args(argv)
    if args.opens is None:
        args.opens = max(1, args.viewers // 25)
    runs = [("all at once", {"DRAIN_SECONDS": "0", "STREAM_OPENS_PER_SECOND": "0"}),
            (f"drain {args.drain:g} s, {args.opens}/s",
             {"DRAIN_SECONDS": str(args.drain), "STREAM_OPENS_PER_SECOND": str(args.opens),
              "GRACEFUL_TIMEOUT": str(int(args.drain) + 5)})]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, env in runs:
            env["SSE_RETRY_MS"] = str(args.retry_ms)
            results.append(run_one(label, args.viewers, env, Path(tmp), args.in_place))
    summary = {"viewers": args.viewers, "drain": args.drain, "opens": args.opens, "in_place": args.in_place,
               "runs": results,
               "targets": targets(results[-1], args.viewers)}
    print(table(summary))
    print(json.dumps(summary))
    return summary


def targets(run: dict, viewers: int) -> list[dict]:
    """The deploy targets, judged on the run with the drain and the admission."""
    return [
        {"target": "peak opens a second", "goal": f"<= {viewers // 20} (viewers/20)",
         "measured": run["peak_opens_per_s"], "met": run["peak_opens_per_s"] <= viewers // 20},
        {"target": "every viewer back", "goal": "<= 30 s", "measured": f"{run['all_back_s']} s",
         "met": not run["missing"] and run["all_back_s"] <= 30},
        {"target": "samples skipped or repeated", "goal": "0 and 0",
         "measured": f"{run['seq_gaps']} and {run['seq_repeats']}",
         "met": run["seq_gaps"] == 0 and run["seq_repeats"] == 0},
        # The admission is there to keep the viewers already back served while the rest come.
        {"target": "live viewers' delivery p99 during the storm", "goal": "<= 2x the p99 after it",
         "measured": f"{run.get('live_p99_ms_storm')} ms against {run.get('live_p99_ms_after')} ms",
         "met": None if not (run.get("live_p99_ms_storm") and run.get("live_p99_ms_after"))
         else run["live_p99_ms_storm"] <= 2 * run["live_p99_ms_after"]},
    ]


def table(summary: dict) -> str:
    how = ", B on A's port and DATA_DIR once A exited" if summary.get("in_place") else ", B started beside A"
    lines = [f"Restart storm, {summary['viewers']:,} viewers{how} (bench/restart_storm.py):",
             f"{'':24} {'ends (s after SIGTERM)':>24} {'peak opens/s':>13} {'deferred':>9} "
             f"{'all back (s)':>13} {'B CPU (s)':>10} {'seq gaps':>9} {'repeats':>8} {'live p99 ms: storm/after':>25}"]
    for r in summary["runs"]:
        ends = f"{r['ends_first']}-{r['ends_last']}"
        lines.append(f"{r['label']:24} {ends:>24} {r['peak_opens_per_s']:>13} {r['deferred']:>9} "
                     f"{r['all_back_s']:>13} {r['b_cpu_s']:>10} {r['seq_gaps']:>9} {r['seq_repeats']:>8} "
                     f"{str(r.get('live_p99_ms_storm')) + ' / ' + str(r.get('live_p99_ms_after')):>25}"
                     + (f"  ({r['missing']} never back)" if r["missing"] else ""))
    for t in summary["targets"]:
        verdict = "n/a (not measured)" if t["met"] is None else "PASS" if t["met"] else "FAIL"
        lines.append(f"  {t['target']}: {t['measured']} (goal {t['goal']}): {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
