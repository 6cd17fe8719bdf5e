"""The benchmark's command line: its flags, the quick and full presets they
default to, and the checks that refuse impossible combinations (`python -m
bench --help`)."""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

from .servers import KINDS, REPO

MODES = {
    "quick": dict(viewers=[200, 1000], rounds=1, seconds=5.0, idle=2.0, settle=1.0, grace=1.5,
                  sampler_samples=10, sampler_spacing=0.1,
                  history_idle_seconds=20.0, history_rounds=2, history_requests=100,
                  console_messages=1000, console_rtt_warmup=200, console_seconds=5.0,
                  console_warmup=1.0),
    "full": dict(viewers=[1000, 5000, 10000], rounds=3, seconds=20.0, idle=5.0, settle=3.0, grace=2.0,
                 sampler_samples=40, sampler_spacing=0.25,
                 history_idle_seconds=60.0, history_rounds=3, history_requests=500,
                 console_messages=5000, console_rtt_warmup=500, console_seconds=10.0,
                 console_warmup=2.0),
}


def parse_args(argv, description: str):
    p = argparse.ArgumentParser(prog="python -m bench", description=description)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="about a minute: 200 and 1,000 viewers, one short round (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="1,000, 5,000 and 10,000 viewers, 3 rounds of 20 s (15-20 minutes)")
    p.add_argument("--viewers", help="comma-separated viewer counts, e.g. 1000,5000")
    p.add_argument("--rounds", type=int, help="rounds of the SSE runs and of the console runs")
    p.add_argument("--seconds", type=float, help="measured window per SSE run")
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                   help="where latest.json and fanout.png go (default bench/results)")
    p.add_argument("--servers", default="ours,node,naive",
                   help="which servers to run (default: ours,node,naive)")
    p.add_argument("--idle", type=float,
                   help="seconds a server idles before viewers (or consoles) connect")
    p.add_argument("--settle", type=float, help="seconds between the last connect and the window")
    p.add_argument("--grace", type=float, help="seconds after the window for late events")
    p.add_argument("--rate", type=int, default=3000,
                   help="viewers connected per second, in steps of 0.1 s (default 3000)")
    p.add_argument("--per-process", type=int, default=2500,
                   help="viewers per load client process (default 2500)")
    p.add_argument("--two-workers", type=int, metavar="N",
                   help="also run ours with two workers on a redis-server (`ours2`) at N viewers, and "
                        "Node at N/2 in one process, each round: CPU per viewer compared (e.g. 20000)")
    p.add_argument("--app-ref", metavar="REF",
                   help="benchmark the app as committed at this git ref (exported to a temporary "
                        "directory) instead of the working tree, which may hold unfinished edits")
    p.add_argument("--report", type=Path, metavar="JSON",
                   help="only print the table (and redraw the plot next to it) from a saved result")
    con = p.add_argument_group("operator console (console_bench.py)")
    con.add_argument("--consoles", type=int, default=50,
                     help="concurrent consoles under load (default 50; the target is stated at 50)")
    con.add_argument("--console-window", type=int, default=1,
                     help="requests in flight per console (default 1: each sends its next request "
                          "when the previous reply arrived)")
    con.add_argument("--console-clients", type=int, default=2,
                     help="load client processes the consoles are spread over (default 2)")
    con.add_argument("--console-seconds", type=float, help="measured load window per run")
    con.add_argument("--console-warmup", type=float, help="seconds of load before the window")
    con.add_argument("--console-messages", type=int,
                     help="timed sequential round trips from one client (after a warm-up of a fifth "
                          "as many, at most the preset's)")
    p.add_argument("--no-sse", action="store_true", help="skip the SSE fan-out runs")
    p.add_argument("--no-console", action="store_true", help="skip the operator console benchmark")
    p.add_argument("--no-sampler", action="store_true", help="skip the sampler benchmark")
    p.add_argument("--no-busy", action="store_true",
                   help="skip the busy-host benchmark (busy_host.py: process sampling with 100, 1,000 and 3,000 processes)")
    p.add_argument("--no-history", action="store_true",
                   help="skip the lasting-history benchmark (history_bench.py: idle CPU with the store "
                        "on and off, bytes on disk per tier, /api/history latency, start-up time)")
    p.add_argument("--no-ws", action="store_true",
                   help="skip the Node ws echo server (the console's floor); ours still runs")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--browser", type=float, metavar="SECONDS",
                   help="also a dashboard tab in Chromium for SECONDS per state and rate (1 and 4 Hz, visible and "
                        "hidden), beside Glances' web UI (bench/browser_bench.py); off unless asked")
    p.add_argument("--storm", type=int, nargs="?", const=5000, metavar="VIEWERS",
                   help="also a deploy under load: VIEWERS (5,000 if no number) through a SIGTERM and a new "
                        "server with the drain (bench/restart_storm.py), and the CPU per stream open beside "
                        "Node's (bench/open_cost.py); off unless asked (--full runs it; --storm 0 leaves it out)")
    p.add_argument("--agent", type=float, nargs="?", const=60.0, metavar="SECONDS",
                   help="also the agent's CPU and RSS at 1 Hz (the [agent] wheel in a fresh venv) beside "
                        "node_exporter and Glances, SECONDS each (60 if no number; bench/agent_cost.py); off "
                        "unless asked (--full runs it; --agent 0 leaves it out)")
    soak = p.add_argument_group("soak (bench/soak.py): our server for a long while, clients coming and going")
    soak.add_argument("--soak", action="store_true",
                      help="run only the soak: our server under viewers and consoles that connect and "
                           "leave at random; samples open files, RSS, greenlets and CPU every minute, "
                           "writes <out>/soak.json and soak.png; exits 1 if a series grows")
    soak.add_argument("--soak-minutes", type=float, default=60.0,
                      help="how long the load runs, in minutes (fractions allowed; default 60)")
    soak.add_argument("--soak-viewers", type=int, default=300, help="viewer slots (default 300)")
    soak.add_argument("--soak-consoles", type=int, default=20, help="console slots (default 20)")
    soak.add_argument("--soak-sample-seconds", type=float, default=60.0,
                      help="seconds between samples under load (default 60)")
    soak.add_argument("--soak-warmup", type=float,
                      help="seconds of the same load before the start sample (default: 10%% of the "
                           "run, 2 to 60 s)")
    soak.add_argument("--soak-idle", type=float, default=5.0,
                      help="seconds the server idles after start before the boot sample (default 5)")
    soak.add_argument("--soak-settle", type=float, default=10.0,
                      help="seconds after the server counts no clients before the start and end "
                           "samples (default 10)")
    soak.add_argument("--soak-seed", type=int, help="seed of the load's random choices (default: random)")
    p.add_argument("--profile", action="store_true",
                   help="record our worker with py-spy during each window (raw stacks into "
                        "<out>/profiles; the console's load window with --native at 50 Hz, grouped "
                        "by what each command does); these runs' figures include the profiler's cost")
    args = p.parse_args(argv)
    args.argv = list(argv)
    if args.soak:
        if (args.soak_minutes <= 0 or args.soak_viewers < 0 or args.soak_consoles < 0
                or args.soak_viewers + args.soak_consoles < 1 or args.soak_sample_seconds < 1
                or args.soak_idle < 0 or args.soak_settle < 0
                or (args.soak_warmup is not None and args.soak_warmup < 1)):
            p.error("--soak-minutes > 0; --soak-viewers, --soak-consoles >= 0 (not both 0); "
                    "--soak-sample-seconds >= 1; --soak-warmup >= 1; --soak-idle, --soak-settle >= 0")
        if args.soak_minutes * 60 < 2 * args.soak_sample_seconds:
            p.error("--soak-minutes must cover at least two samples (--soak-sample-seconds)")
        if args.soak_viewers + args.soak_consoles > resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200:
            p.error("more soak connections than this process may open")
    args.mode = args.mode or "quick"
    preset = MODES[args.mode]
    try:
        args.viewers = [int(v) for v in args.viewers.split(",")] if args.viewers else preset["viewers"]
    except ValueError:
        p.error("--viewers takes comma-separated whole numbers, e.g. 1000,5000")
    if any(v < 1 for v in args.viewers):
        p.error("--viewers must be positive")
    for name in ("rounds", "seconds", "idle", "settle", "grace"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [s for s in args.servers if s not in KINDS]
    if unknown:
        p.error(f"unknown server(s) {unknown}; choose from {sorted(KINDS)}")
    if args.rounds < 1 or args.seconds < 1 or args.rate < 10 or args.per_process < 1:
        p.error("--rounds >= 1, --seconds >= 1, --rate >= 10, --per-process >= 1")
    for name in ("console_seconds", "console_warmup", "console_messages"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    args.console_rtt_warmup = min(preset["console_rtt_warmup"], max(1, args.console_messages // 5))
    if (args.consoles < 1 or args.console_window < 1 or args.console_clients < 1
            or args.console_seconds < 0.5 or args.console_warmup < 0 or args.console_messages < 10):
        p.error("--consoles, --console-window, --console-clients >= 1; --console-seconds >= 0.5; "
                "--console-warmup >= 0; --console-messages >= 10")
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.per_process > soft - 100:
        p.error(f"--per-process {args.per_process} needs more file descriptors than this "
                f"process may open ({soft}); use fewer viewers per client process")
    args.preset = preset
    return args
