"""Load client: many SSE viewers on raw sockets, in one asyncio process.

Run by the orchestrator (several of these processes when one would saturate a
core or run out of file descriptors), or by hand:

    python -m bench.load_client --port 8000 --viewers 500 --window 10

Each viewer is an `asyncio.Protocol` on its own TCP connection (sse_viewer.py):
it reads the response head, undoes chunked encoding, splits the stream into
events and reads only their `id:`, `"ts":` and `"seq":`.

Delivery delay is the client's `time.time()` when the bytes arrived minus the
event's `ts` (all processes run on this machine, so they share the clock). It
is counted for every event of every viewer whose `ts` falls in the measured
window, into a histogram with 0.1 ms steps below 100 ms and 1 ms steps up to
10 s, so several processes' results merge exactly.

Talking to the orchestrator (one JSON object per line):

    stdout  {"type": "connected", ...}   all viewers connected (or gave up)
    stdin   {"cmd": "measure", "start": t0, "end": t1, "grace": g}
    stdout  {"type": "result", ...}      after t1 + g; then the process exits

Every loop is bounded: viewers by count, connecting by a deadline, waiting
for the command and measuring by deadlines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from .client_process import LOOP, LoopLag, cpu_seconds, emit, measure_window, run_loop
from .sse_viewer import BODY, DELAY, HEAD, Stats, Viewer, request


async def connect_all(args, stats: Stats, viewers: list) -> float:
    """Open args.viewers streams, args.batch every args.every seconds; returns seconds taken."""
    loop = asyncio.get_running_loop()
    head = request(args.host, args.port, args.path)
    started = time.monotonic()
    deadline = started + args.connect_timeout

    async def one() -> None:
        viewer = Viewer(stats, head)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: viewer, args.host, args.port), args.connect_timeout
            )
        except (OSError, asyncio.TimeoutError) as exc:
            stats.error(f"connect: {type(exc).__name__}: {exc}"[:80])
            return
        viewers.append(viewer)

    opened = 0
    while opened < args.viewers and time.monotonic() < deadline:
        n = min(args.batch, args.viewers - opened)
        batch_start = time.monotonic()
        await asyncio.gather(*(one() for _ in range(n)))
        opened += n
        await asyncio.sleep(max(0.0, args.every - (time.monotonic() - batch_start)))
    # Wait (bounded) for every opened connection to get its response head.
    while time.monotonic() < deadline:
        pending = sum(1 for v in viewers if v.state == HEAD)
        if not pending:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def run(args) -> dict:
    loop = asyncio.get_running_loop()
    stats = Stats()
    viewers: list[Viewer] = []
    cpu0 = cpu_seconds()
    connect_seconds = await connect_all(args, stats, viewers)
    emit({
        "type": "connected",
        "pid": os.getpid(),
        "wanted": args.viewers,
        "connected": stats.connected,
        "errors": stats.errors,
        "seconds": round(connect_seconds, 3),
    })

    window = await measure_window(args.window, 0.2, args.grace, args.command_timeout)
    if window is None:
        return {"type": "result", "error": "no measure command"}
    t0, t1, grace = window
    stats.window = (t0, t1)
    lag = LoopLag(loop)
    gaps_before = stats.gaps
    disconnects_before = stats.disconnects

    await asyncio.sleep(max(0.0, t0 - time.time()))
    lag.start()
    cpu_start, wall_start = cpu_seconds(), time.monotonic()
    await asyncio.sleep(max(0.0, t1 - time.time()))
    cpu_window = cpu_seconds() - cpu_start
    wall_window = time.monotonic() - wall_start
    await asyncio.sleep(max(0.0, grace))  # late events with ts in the window
    lag.active = False
    stats.listening = False
    still_open = sum(1 for v in viewers if v.connected and v.state == BODY)
    per_viewer = sorted(v.in_window for v in viewers if v.connected)
    for v in viewers:
        if v.transport is not None:
            v.transport.abort()

    return {
        "type": "result",
        "pid": os.getpid(),
        "wanted": args.viewers,
        "connected": stats.connected,
        "open_at_end": still_open,
        "errors": stats.errors,
        "disconnects": stats.disconnects,
        "disconnects_in_window": stats.disconnects - disconnects_before,
        "disconnect_reasons": stats.disconnect_reasons,
        "window": [t0, t1],
        "events": stats.events,
        "events_total": stats.events_total,
        "other_events": stats.other_events,
        "event_bytes": stats.event_bytes,
        "gaps": stats.gaps,
        "window_seqs": sorted(stats.window_seqs),
        "window_ts": [stats.ts_min, stats.ts_max] if stats.events else None,
        "gaps_in_window": stats.gaps - gaps_before,
        "events_per_viewer_min": per_viewer[0] if per_viewer else 0,
        "events_per_viewer_max": per_viewer[-1] if per_viewer else 0,
        "hist": {str(k): v for k, v in stats.hist.items()},
        "cpu_seconds": round(cpu_window, 4),
        "cpu_percent": round(100.0 * cpu_window / wall_window, 2) if wall_window > 0 else None,
        "cpu_seconds_total": round(cpu_seconds() - cpu0, 3),
        "loop_lag": lag.summary(),
        "connect_seconds": round(connect_seconds, 3),
        "loop": LOOP[0],
    }


def summarize(result: dict) -> str:
    t0, t1 = result["window"]
    hist = {int(k): v for k, v in result["hist"].items()}
    n = max(1, result["connected"])
    return (
        f"viewers {result['connected']}/{result['wanted']}, "
        f"events/viewer/s {result['events'] / n / (t1 - t0):.3f}, "
        f"delay p50 {DELAY.percentile(hist, 50)} ms p99 {DELAY.percentile(hist, 99)} ms, "
        f"disconnects {result['disconnects']}, gaps {result['gaps']}, errors {result['errors']}, "
        f"client CPU {result['cpu_percent']}%"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/events")
    p.add_argument("--viewers", type=int, default=100)
    p.add_argument("--batch", type=int, default=100, help="viewers opened per step")
    p.add_argument("--every", type=float, default=0.1, help="seconds between steps")
    p.add_argument("--connect-timeout", type=float, default=60.0)
    p.add_argument("--command-timeout", type=float, default=900.0)
    p.add_argument("--window", type=float, default=0.0,
                   help="measure this many seconds right after connecting (by hand); "
                        "otherwise wait for the orchestrator's command on stdin")
    p.add_argument("--grace", type=float, default=1.5)
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop: uvloop when installed (auto), else asyncio's own")
    args = p.parse_args(argv)
    if args.viewers < 0 or args.batch < 1:
        p.error("--viewers must be >= 0 and --batch >= 1")
    result = run_loop(run(args), args.loop)
    if args.window:
        print(summarize(result), file=sys.stderr)
    emit(result)
    sys.stdout.flush()
    os._exit(0)  # skip tearing down thousands of transports one by one


if __name__ == "__main__":
    sys.exit(main())
