"""What every load client process shares: its event loop, its orders on stdin,
its JSON lines on stdout, and the figures about itself (CPU time, loop lag).

The orchestrator starts clients as child processes (children.py reads them);
a client answers with one JSON object per line and takes commands the same
way on stdin.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time


def cpu_seconds() -> float:
    """This process's user + system CPU time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class LoopLag:
    """How late a 100 ms timer fires: a saturated client shows here first."""

    def __init__(self, loop) -> None:
        self.loop = loop
        self.lags: list[float] = []
        self.active = False
        self._due = 0.0

    def start(self) -> None:
        self.active = True
        self._due = self.loop.time() + 0.1
        self.loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        self.lags.append(max(0.0, now - self._due) * 1000.0)
        if self.active and len(self.lags) < 100_000:
            self._due = now + 0.1
            self.loop.call_at(self._due, self._tick)

    def summary(self) -> dict:
        lags = sorted(self.lags)
        if not lags:
            return {"p50_ms": None, "max_ms": None}
        return {"p50_ms": round(lags[len(lags) // 2], 2), "max_ms": round(lags[-1], 2)}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def measure_window(seconds: float, delay: float, grace: float,
                         timeout: float) -> tuple[float, float, float] | None:
    """(start, end, grace) of the window to measure: `seconds` from `delay` on
    when run by hand, else the orchestrator's measure command; None if none came."""
    if seconds:
        t0 = time.time() + delay
        return t0, t0 + seconds, grace
    command = await read_command(timeout)
    if command is None:
        return None
    return float(command["start"]), float(command["end"]), float(command["grace"])


async def read_command(timeout: float) -> dict | None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = sys.stdin.fileno()
    buf = bytearray()

    def readable() -> None:
        chunk = os.read(fd, 4096)
        if not chunk:
            if not fut.done():
                fut.set_result(None)
            return
        buf.extend(chunk)
        if b"\n" in buf and not fut.done():
            fut.set_result(json.loads(buf.split(b"\n", 1)[0]))

    loop.add_reader(fd, readable)
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)


# The event loop this process runs on, named in its result (set by run_loop).
LOOP = ["?"]


def run_loop(coro, which: str = "auto"):
    """Run coro on uvloop when available (it costs the client a third of the CPU
    per event that asyncio's own loop does), else on asyncio's loop."""
    if which != "asyncio":
        try:
            import uvloop
        except ImportError:
            if which == "uvloop":
                raise
        else:
            LOOP[0] = f"uvloop {uvloop.__version__}"
            return uvloop.run(coro)
    LOOP[0] = "asyncio"
    return asyncio.run(coro)
