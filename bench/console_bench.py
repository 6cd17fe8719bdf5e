"""The operator console under measurement: `status` round trips over the
WebSocket, next to the Node `ws` echo server as the floor.

For each round and server (ours, then the echo server; the order rotates
per round), one run:

    start the server -> idle -> one client, sequential requests (websocket-client,
    after a warm-up): round trip p50/p99 -> N consoles from separate client
    processes (raw sockets, uvloop), each with `window` requests in flight,
    warm-up, then a measured window: replies per second, round trips under
    load, server CPU, the clients' own CPU -> clients close -> server stops.

Ours runs exactly as servers.py starts it (gunicorn + gevent, real sampler,
audit log in a scratch SQLite file, stdout to a log file) plus CONSOLE_RATE and
CONSOLE_BURST high enough not to refuse the load; every other setting is the
default. Every `status` is committed to the audit log and logged as a JSON
line before its reply, as in production.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import profiler as profiler_mod
from .children import ChildError, run_json
from .clients import ClientError, ClientGroup
from .console_client import RTT
from .console_report import console_ratios, console_summary
from .histogram import merge
from .run import _sleep_until
from .servers import REPO, Server, available

# The per-connection rate limit (20/s, bursts of 40) is for humans; the load
# would be refused. The largest values the settings accept.
CONSOLE_ENV = {"CONSOLE_RATE": "100000", "CONSOLE_BURST": "100000"}
LINE = "status"


@dataclass
class ConsoleParams:
    consoles: int = 50  # concurrent connections under load
    window: int = 1  # requests in flight per connection (1: sequential)
    clients: int = 2  # load client processes
    seconds: float = 5.0  # measured load window
    warmup: float = 1.0  # load runs this long before the window
    messages: int = 1000  # timed sequential round trips (one client)
    rtt_warmup: int = 200  # untimed round trips first
    idle: float = 2.0  # server idles this long after start (start-up work settles)
    profile: bool = False  # py-spy --native on our worker during the load window
    app_dir: Path | None = None


def plan(rounds: int, kinds: list[str]) -> list[tuple[int, str]]:
    """(round, server) in the order they run; the order rotates each round."""
    steps = []
    for rnd in range(1, rounds + 1):
        k = (rnd - 1) % len(kinds)
        for kind in kinds[k:] + kinds[:k]:
            steps.append((rnd, kind))
    return steps


def _url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}/console" if server.kind == "ours" else f"ws://127.0.0.1:{server.port}/"


def _client_env(server: Server) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("OPERATOR_TOKEN", None)
    if server.kind == "ours":
        env["OPERATOR_TOKEN"] = server.token  # not on the command line
    return env


def _expect(server: Server) -> str:
    return "ok" if server.kind == "ours" else "echo"


def measure_rtt(server: Server, p: ConsoleParams) -> dict:
    """One client, sequential, in its own process (like the load clients)."""
    timeout = 60 + (p.messages + p.rtt_warmup) * 0.05
    try:
        return run_json("console_client", ["rtt", "--url", _url(server), "--expect", _expect(server),
                                           "--line", LINE, "--messages", str(p.messages),
                                           "--warmup", str(p.rtt_warmup)],
                        timeout, env=_client_env(server))
    except ChildError as exc:
        raise ClientError(f"round-trip client failed: {exc}") from None


class ConsoleClients(ClientGroup):
    """`clients` processes of bench.console_client load, `consoles` connections in all."""

    def __init__(self, server: Server, p: ConsoleParams, log_dir: Path) -> None:
        per = math.ceil(p.consoles / max(1, min(p.clients, p.consoles)))
        super().__init__(server.port, p.consoles, per, rate=1, log_dir=log_dir)
        self.children.label = "console clients"
        self.server = server
        self.p = p

    def start(self) -> None:
        for i, share in enumerate(self.shares):
            self.children.spawn("console_client", [
                "load", "--url", _url(self.server), "--expect", _expect(self.server), "--line", LINE,
                "--connections", str(share), "--window", str(self.p.window)],
                self.log_dir / f"console-client-{self.port}-{i}.log", env=_client_env(self.server))

    def results(self, timeout: float) -> dict:
        return combine(self.children.read("result", timeout))


def combine(msgs: list[dict]) -> dict:
    hist = merge(m["hist"] for m in msgs)
    t0, t1 = msgs[0]["window"]
    replies = sum(m["replies"] for m in msgs)
    kinds: dict[str, int] = {}
    for m in msgs:
        for k, v in m["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    cpu = [m["cpu_percent"] or 0.0 for m in msgs]
    return {
        "consoles_wanted": sum(m["wanted"] for m in msgs),
        "consoles_connected": sum(m["connected"] for m in msgs),
        "open_at_end": sum(m["open_at_end"] for m in msgs),
        "window_seconds": round(t1 - t0, 3),
        "replies": replies,
        "commands_per_s": round(replies / (t1 - t0), 1),
        "rtt_ms_p50": RTT.percentile(hist, 50),
        "rtt_ms_p90": RTT.percentile(hist, 90),
        "rtt_ms_p99": RTT.percentile(hist, 99),
        "rtt_ms_max": RTT.percentile(hist, 100),
        "per_process_replies": [m["replies"] for m in msgs],
        "pushes": sum(m["pushes"] for m in msgs),
        "errors": sum(m["errors"] for m in msgs),
        "error_kinds": kinds,
        "disconnects": sum(m["disconnects"] for m in msgs),
        "client_processes": len(msgs),
        "client_cpu_percent_max": max(cpu),
        "client_cpu_percent_sum": round(sum(cpu), 2),
        "client_cpu_us_per_reply": round(sum(m["cpu_seconds"] for m in msgs) / replies * 1e6, 1)
        if replies else None,
        "client_loop_lag_max_ms": max((m["loop_lag"]["max_ms"] or 0) for m in msgs),
        "client_loop": msgs[0].get("loop"),
    }


def run_console(kind: str, p: ConsoleParams, scratch: Path, round_no: int) -> dict:
    logs = scratch / "logs"
    home = scratch / "home"
    logs.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    out: dict = {"server": kind, "round": round_no, "load_before": [round(x, 2) for x in os.getloadavg()]}
    server = Server(kind, logs, home, **({"app_dir": p.app_dir} if p.app_dir else {}),
                    env=CONSOLE_ENV if kind == "ours" else None)
    group: ConsoleClients | None = None
    profiler = None
    try:
        server.start()
        out["port"] = server.port
        time.sleep(p.idle)
        out["rtt"] = measure_rtt(server, p)

        group = ConsoleClients(server, p, logs)
        group.start()
        conn = group.wait_connected(timeout=60)
        out["connect"] = conn
        if conn["connected"] != p.consoles:
            raise ClientError(f"{conn['connected']}/{p.consoles} consoles connected: {conn['errors']}")
        t0 = time.time() + p.warmup
        t1 = t0 + p.seconds
        group.measure(t0, t1, 2.0)
        if p.profile and kind == "ours":
            _sleep_until(t0)
            # --native: whole stacks, C included (sqlite, write(), send()), through the
            # greenlet switches. Without it, py-spy loses the parents of frames running
            # in greenlets and the shares cannot be grouped. --native pauses the worker
            # for every sample, so the rate is low: 50 Hz costs this load about a third
            # of its throughput (250 Hz cut it from about 3,400 to under 100 a second).
            profiler = profiler_mod.start(server.worker_pid(), p.seconds,
                                          scratch / f"profile-console-ours-r{round_no}", 50, ["--native"])
        _sleep_until(t0)
        cpu0, mono0 = server.cpu_seconds(), time.monotonic()
        _sleep_until(t1)
        cpu1, mono1 = server.cpu_seconds(), time.monotonic()
        load = group.results(timeout=60)
        cpu_s = cpu1 - cpu0
        load["server_cpu_percent"] = round(100 * cpu_s / (mono1 - mono0), 2)
        # Server CPU per reply: the whole process tree (gunicorn's master is idle),
        # the sampler's share of the window included.
        load["server_cpu_us_per_command"] = round(cpu_s / load["replies"] * 1e6, 1) if load["replies"] else None
        load["server_alive"] = server.proc.poll() is None
        out["load"] = load
        if profiler is not None:
            out["profile"] = profiler_mod.finish(profiler)
        if kind == "ours":
            out["server_log_mb"] = round(server.log_path.stat().st_size / 2**20, 1)
    except (ClientError, RuntimeError, TimeoutError, OSError, ValueError) as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if group is not None:
            group.stop()
        server.stop()
        profiler_mod.stop(profiler)
    return out


def line(r: dict) -> str:
    """One progress line for a finished run."""
    if "failed" in r:
        return f"FAILED {r['failed'][:200]}"
    rt, ld = r["rtt"], r["load"]
    return (f"one client p50 {rt['rtt_ms_p50']:.3f} ms p99 {rt['rtt_ms_p99']:.3f} ms; "
            f"{ld['consoles_connected']} consoles {ld['commands_per_s']:.0f} cmd/s, "
            f"p50 {ld['rtt_ms_p50']} ms p99 {ld['rtt_ms_p99']} ms, server CPU {ld['server_cpu_percent']:.0f}% "
            f"({ld['server_cpu_us_per_command']} us/cmd), client CPU max {ld['client_cpu_percent_max']:.0f}%, "
            f"errors {rt['errors'] + ld['errors']}")


def run_part(args, scratch: Path, app_dir: Path | None) -> dict:
    """The operator console: rounds of (ours, echo floor), rotated, then the summary."""
    kinds = ["ours"]
    if args.no_ws:
        print("note: --no-ws: the console runs without its Node ws echo floor")
    else:
        why = available("echo")
        if why:
            print(f"note: the console runs without its Node ws echo floor: {why}")
        else:
            kinds.append("echo")
    cp = ConsoleParams(
        consoles=args.consoles, window=args.console_window, clients=args.console_clients,
        seconds=args.console_seconds, warmup=args.console_warmup, messages=args.console_messages,
        rtt_warmup=args.console_rtt_warmup, idle=args.idle, profile=args.profile,
        app_dir=app_dir)
    steps = plan(args.rounds, kinds)
    print(f"console: servers {', '.join(kinds)}; `{LINE}` x {cp.messages} from one client, "
          f"then {cp.consoles} consoles ({cp.window} in flight each, {cp.clients} client processes) "
          f"for {cp.seconds:g} s; {len(steps)} runs", flush=True)
    runs = []
    try:
        for i, (rnd, kind) in enumerate(steps, 1):
            t = time.monotonic()
            r = run_console(kind, cp, scratch, rnd)
            runs.append(r)
            print(f"[console {i}/{len(steps)}] round {rnd} {kind:<4}: {line(r)}"
                  f"  ({time.monotonic() - t:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted: reporting the console runs that finished")
    summary = console_summary(runs)
    return {
        "params": {"line": LINE, "rounds": args.rounds, "servers": kinds,
                   "consoles": cp.consoles, "window": cp.window, "clients": cp.clients,
                   "seconds": cp.seconds, "warmup": cp.warmup, "messages": cp.messages,
                   "rtt_warmup": cp.rtt_warmup, "idle": cp.idle, "profile": cp.profile,
                   "server_env": CONSOLE_ENV},
        "summary": summary,
        "ratios": console_ratios(runs, summary),
        "runs": runs,
    }
