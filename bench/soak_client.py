"""Soak load: viewers and consoles that come and go at random, for a fixed time.

    python -m bench.soak_client --port 8000 --viewers 300 --consoles 20 --seconds 3600

One asyncio process (uvloop when installed) keeps `--viewers` viewer slots and
`--consoles` console slots busy until `--seconds` have passed. A slot holds
one connection at a time; when it ends, the slot opens the next one after a
short gap (at most half a second, a second for a resume), so the number of
open connections stays close to the number of slots all the time.

Viewers (`GET /events`, raw sockets; soak_viewer.py, the parsing of sse_viewer.Viewer):

- lifetime: 10% leave within a second (some before the response head), the
  rest live log-uniformly between 2 s and `--viewer-max-lifetime` seconds;
- 70% leave with a FIN (the socket closed normally), 30% abruptly with a
  reset (SO_LINGER 0: no FIN, no end of anything);
- 30% of the next connections of a slot resume with `Last-Event-ID` (the last
  id the previous connection saw): their first `metrics` event must carry the
  next `seq` (a skipped one is a gap, a repeated one a duplicate).

Consoles (`/console`, bearer token from $OPERATOR_TOKEN; soak_console.py, on
ws_frames.py's framing, answering pings at once):

- lifetime log-uniform between 3 s and `--console-max-lifetime` seconds;
- one request at a time, the next after the reply and a random pause of 0.3 to
  2 s (at most about 3 requests a second, far below CONSOLE_RATE's default of
  20): `status`, `ping`, `top 5`, `ps python`, `help`, `whoami`, `clients`,
  `audit 5`, `alert list`, `hosts`, and about one in 200 a `broadcast`;
- 50% leave with a close handshake (close frame 1000, then wait for the
  server's), 25% close the socket without a close frame (FIN), 25% reset it.

Every reply must be `ok: true`; anything else, a reply that does not come in
10 s, a close the client did not ask for, a stream the server ended, a status
other than 200 or 101, a resync, a gap or a duplicate is counted under
`anomalies` in the result.

Talking to the orchestrator (one JSON object per line):

    stdout  {"type": "started", ...}    every slot started
    stdin   {"cmd": "status"}           -> stdout {"type": "status", ...}
    stdout  {"type": "result", ...}     after --seconds, every connection closed

Closing stdin ends the run early. Every loop is bounded: slots by the end
time and a count of cycles, each connection by its lifetime and the end time,
every wait by a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time

from . import sse_viewer
from .client_process import LOOP, cpu_seconds, emit, run_loop
from .soak_conn import CONNECT_TIMEOUT, REPLY_TIMEOUT, Counts, reset
from .soak_console import SoakConsole
from .soak_viewer import SoakViewer

MIN_CYCLE = 0.05  # every cycle of a slot sleeps at least this long

# (line, weight): what a console sends. `broadcast` gets a message appended.
COMMANDS = (
    ("status", 30), ("ping", 25), ("top 5", 25), ("ps python", 20), ("help", 20),
    ("whoami", 15), ("clients", 15), ("audit 5", 15), ("alert list", 15), ("hosts", 19),
    ("broadcast", 1),
)


def _loguniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(max(hi, lo * 1.01))))


class Load:
    """The slots, what they saw, and the run: start them, answer status, end in time."""

    def __init__(self, args) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.counts = Counts()
        self.vstats = sse_viewer.Stats()  # the viewers' shared counters (connected, errors) for the base class
        self.vstats.listening = False  # its own disconnect counting is replaced
        self.started = time.monotonic()
        self.deadline = self.started + args.seconds
        self.stopping = False
        self.viewers_open = 0
        self.consoles_open = 0
        self.reply_ms: list[float] = []  # since the last status
        self.max_cycles = int(args.seconds / MIN_CYCLE) + 10
        self.broadcasts = 0
        self.slowest: dict[str, float] = {}  # verb -> slowest reply (ms)
        self.lines = [line for line, _ in COMMANDS]
        self.weights = [w for _, w in COMMANDS]

    def running(self) -> bool:
        return not self.stopping and time.monotonic() < self.deadline

    def left(self) -> float:
        return 0.0 if self.stopping else max(0.0, self.deadline - time.monotonic())

    async def sleep(self, seconds: float) -> None:
        """Sleep, but not past the end of the run."""
        await asyncio.sleep(max(0.0, min(seconds, self.left())))

    # ---- viewers ----

    async def viewer_slot(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        rng, c = self.rng, self.counts
        await asyncio.sleep(rng.uniform(0, min(2.0, self.args.seconds / 4)))  # spread the first connects
        last_id: bytes | None = None
        last_seq: int | None = None
        for _ in range(self.max_cycles):
            if not self.running():
                break
            resume = last_id is not None and rng.random() < 0.3
            head = sse_viewer.request(self.args.host, self.args.port, "/events", last_id if resume else None)
            v = SoakViewer(self.vstats, c, head, last_seq if resume else None, last_id if resume else None)
            c.add("viewer connections")
            if resume:
                c.add("viewer resumes (Last-Event-ID)")
            try:
                await asyncio.wait_for(loop.create_connection(lambda: v, self.args.host, self.args.port),
                                       CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                c.anomaly(f"viewer: connect failed: {type(exc).__name__}: {exc}"[:120])
                await self.sleep(1.0)
                continue
            if rng.random() < 0.1:
                lifetime = rng.uniform(0.0, 1.0)
            else:
                lifetime = _loguniform(rng, 2.0, self.args.viewer_max_lifetime)
            counted = False
            t_end = time.monotonic() + min(lifetime, self.left())
            # Wait for the head (to count the viewer as open), then for the end of
            # its lifetime or of the stream, whichever comes first.
            while not v.done.done() and time.monotonic() < t_end and not self.stopping:  # bounded by t_end
                if not counted and v.connected:
                    counted = True
                    self.viewers_open += 1
                wait = 0.05 if not counted else 1.0
                try:
                    await asyncio.wait_for(asyncio.shield(v.done), max(0.0, min(wait, t_end - time.monotonic())))
                except asyncio.TimeoutError:
                    pass
            if not v.done.done():
                v.leaving = True
                if v.state == sse_viewer.HEAD:
                    c.add("viewer left before the response head")
                if rng.random() < 0.3:
                    c.add("viewer left abruptly (reset)")
                    reset(v.transport)
                else:
                    c.add("viewer left (FIN)")
                    v.transport.close()
                try:
                    await asyncio.wait_for(asyncio.shield(v.done), 5.0)
                except asyncio.TimeoutError:
                    c.anomaly("viewer: transport not closed within 5 s")
            if counted:
                self.viewers_open -= 1
            if v.last_id:
                last_id, last_seq = v.last_id, v.last_seq
            await self.sleep(rng.uniform(MIN_CYCLE, 1.0 if resume else 0.5))

    # ---- consoles ----

    async def console_slot(self, index: int) -> None:
        rng, c = self.rng, self.counts
        await asyncio.sleep(rng.uniform(0, min(2.0, self.args.seconds / 4)))
        for cycle in range(self.max_cycles):
            if not self.running():
                break
            con = SoakConsole(self, f"soak-{index}-{cycle}")
            c.add("console connections")
            if not await con.open():
                await self.sleep(1.0)
                continue
            self.consoles_open += 1
            try:
                lifetime = _loguniform(rng, 3.0, self.args.console_max_lifetime)
                t_end = time.monotonic() + min(lifetime, self.left())
                for _ in range(int(lifetime / 0.3) + 2):  # bounded by t_end too
                    if time.monotonic() >= t_end or not con.alive or self.stopping:
                        break
                    await con.command(rng.choices(self.lines, self.weights)[0])
                    await asyncio.sleep(max(0.0, min(rng.uniform(0.3, 2.0), t_end - time.monotonic())))
                how = rng.random()
                await con.leave("close" if how < 0.5 else "fin" if how < 0.75 else "reset")
            finally:
                self.consoles_open -= 1
            await self.sleep(rng.uniform(MIN_CYCLE, 0.5))

    # ---- the run ----

    def status(self) -> dict:
        ms = sorted(self.reply_ms)
        self.reply_ms = []
        return {
            "type": "status",
            "t": round(time.monotonic() - self.started, 2),
            "viewers_open": self.viewers_open,
            "consoles_open": self.consoles_open,
            "replies": len(ms),
            "reply_ms_p50": round(ms[len(ms) // 2], 2) if ms else None,
            "reply_ms_p99": round(ms[min(len(ms) - 1, math.ceil(0.99 * len(ms)) - 1)], 2) if ms else None,
            "reply_ms_max": round(ms[-1], 2) if ms else None,
            "anomalies": sum(self.counts.anomalies.values()),
            "cpu_s": round(cpu_seconds(), 2),
        }

    async def run(self) -> dict:
        loop = asyncio.get_running_loop()
        fd = sys.stdin.fileno()
        buf = bytearray()

        def readable() -> None:
            chunk = os.read(fd, 4096)
            if not chunk:  # the orchestrator went away: end now
                loop.remove_reader(fd)
                self.stopping = True
                return
            buf.extend(chunk)
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                buf[:] = rest
                try:
                    cmd = json.loads(line).get("cmd")
                except (ValueError, AttributeError):
                    continue
                if cmd == "status":
                    emit(self.status())

        if not self.args.no_stdin:
            loop.add_reader(fd, readable)
        tasks = [asyncio.ensure_future(self.viewer_slot(i)) for i in range(self.args.viewers)]
        tasks += [asyncio.ensure_future(self.console_slot(i)) for i in range(self.args.consoles)]
        emit({"type": "started", "pid": os.getpid(), "viewers": self.args.viewers,
              "consoles": self.args.consoles, "seconds": self.args.seconds, "loop": LOOP[0]})
        # Slots end by themselves at the deadline (a lifetime never runs past it);
        # then the last connections close, each within its own timeouts.
        while self.running():  # bounded by the deadline
            await asyncio.sleep(min(0.5, max(0.01, self.left())))
        self.stopping = True
        done, pending = await asyncio.wait(tasks, timeout=CONNECT_TIMEOUT + REPLY_TIMEOUT + 15)
        for t in pending:
            t.cancel()
        for t in done:
            if t.exception() is not None:
                self.counts.anomaly(f"slot crashed: {type(t.exception()).__name__}: {t.exception()}")
        if pending:
            self.counts.anomaly(f"{len(pending)} slots did not end in time")
        if not self.args.no_stdin:
            try:
                loop.remove_reader(fd)
            except (ValueError, OSError):
                pass
        return {
            "type": "result",
            "pid": os.getpid(),
            "seconds": round(time.monotonic() - self.started, 2),
            "viewers": self.args.viewers,
            "consoles": self.args.consoles,
            "viewers_open_at_end": self.viewers_open,
            "consoles_open_at_end": self.consoles_open,
            "counts": dict(sorted(self.counts.counts.items())),
            "anomalies": dict(sorted(self.counts.anomalies.items())),
            "reply_ms_max_by_command": {k: round(v, 1) for k, v in sorted(self.slowest.items())},
            "cpu_s": round(cpu_seconds(), 2),
            "loop": LOOP[0],
        }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--viewers", type=int, default=300)
    p.add_argument("--consoles", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--viewer-max-lifetime", type=float, default=240.0)
    p.add_argument("--console-max-lifetime", type=float, default=600.0)
    p.add_argument("--token", default=os.environ.get("OPERATOR_TOKEN"),
                   help="operator bearer token (default $OPERATOR_TOKEN)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-stdin", action="store_true", help="by hand: no orchestrator on stdin")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto")
    args = p.parse_args(argv)
    if args.viewers < 0 or args.consoles < 0 or args.seconds <= 0:
        p.error("--viewers and --consoles >= 0, --seconds > 0")
    if args.consoles and not args.token:
        p.error("consoles need an operator token (--token or $OPERATOR_TOKEN)")
    args.viewer_max_lifetime = max(2.5, args.viewer_max_lifetime)
    args.console_max_lifetime = max(3.5, args.console_max_lifetime)

    async def go():
        return await Load(args).run()

    result = run_loop(go(), args.loop)
    emit(result)
    if args.no_stdin:
        print(json.dumps(result, indent=1), file=sys.stderr)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
