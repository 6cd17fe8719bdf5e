"""Benchmark: our SSE fan-out next to baselines started the same way, same run, same machine.

    python -m bench [--quick|--full] [--viewers 1000,5000] [--rounds N] [--seconds S] [--out DIR]
                    [--consoles 50] [--console-seconds S] [--no-sse] [--no-console]

(`bin/bench` installs what it needs, then runs this.) For each round, viewer
count and server (our app under gunicorn + gevent; the Node tutorial SSE
server; the naive Flask server at one count <= 1,000 only, because it
collapses above that) it starts the server, lets it idle, connects the
viewers from separate load client processes, and measures a window: server
CPU, RSS per viewer, delivery delay p50/p99, events per viewer per second,
disconnects, the clients' own CPU. Then the operator console (for each round,
our server and the Node `ws` echo server as the floor): `status` round trips
from one client, then commands per second over 50 concurrent consoles
(console_bench.py). Then the real sampler's CPU per sample. It prints a table
with ratios and targets, and writes <out>/latest.json and <out>/fanout.png.

    python -m bench --soak [--soak-minutes 60] [--soak-viewers 300] [--soak-consoles 20] [--out DIR]

runs only the soak instead (soak.py): our server for an hour under viewers and
consoles that connect and leave at random, sampled every minute; it prints a
table and a verdict per series (flat or growing), writes <out>/soak.json and
<out>/soak.png, and exits 1 when a series grows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import console_bench, report, soak
from .run import Params, run_one
from .servers import KINDS, REPO, available

NAIVE_MAX_VIEWERS = 1000

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


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
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


def host_info() -> dict:
    import psutil

    node = None
    if shutil.which("node"):
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "node": node,
        "kernel": platform.release(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def git_state(app_ref: str | None) -> dict:
    def git(*args) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=30).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""

    state = {"head": git("rev-parse", "--short", "HEAD") or None, "app_ref": app_ref}
    if app_ref:
        state["app_commit"] = git("rev-parse", "--short", app_ref) or None
    else:
        # What the measured app had that is not committed.
        dirty = git("status", "--porcelain", "--", "app.py", "gunicorn.conf.py", "dashboard",
                    "requirements.txt")
        state["uncommitted_app_changes"] = [ln[3:] for ln in dirty.splitlines()]
    return state


def export_app(ref: str, dest: Path) -> Path:
    """The tree of a git ref, extracted into dest (the repository is left untouched)."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                             capture_output=True, timeout=120)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True, timeout=120)
    return dest


def run_json_tool(module: str, extra: list[str], timeout: float, app_dir: Path | None = None) -> dict:
    """Run `python -m bench.<module>` in its own process; its last stdout line is JSON.
    With app_dir, `dashboard` is imported from there (it comes first on sys.path)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)} if app_dir else None
    try:
        proc = subprocess.run([sys.executable, "-m", f"bench.{module}", *extra], cwd=app_dir or REPO,
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout).strip()[-500:] or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


def plan(args) -> list[tuple[int, int, str]]:
    """(round, viewers, server) in the order they run. Rounds are outermost and the
    server order rotates per round, so slow drift on the machine hits all alike."""
    naive_n = max((v for v in args.viewers if v <= NAIVE_MAX_VIEWERS), default=None)
    steps = []
    for rnd in range(1, args.rounds + 1):
        k = (rnd - 1) % len(args.servers)
        order = args.servers[k:] + args.servers[:k]
        for n in args.viewers:
            for server in order:
                if server == "naive" and n != naive_n:
                    continue
                steps.append((rnd, n, server))
        if getattr(args, "two_workers", None):
            # Two workers at N against one Node process at N/2 (its open-files
            # limit), run back to back in the same round.
            pair = [(rnd, args.two_workers, "ours2")]
            if "node" in args.servers and (rnd, args.two_workers // 2, "node") not in steps:
                pair.append((rnd, args.two_workers // 2, "node"))
            steps += pair if rnd % 2 else pair[::-1]
    return steps


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def rerender(path: Path, no_plot: bool) -> int:
    """Recompute the derived parts of a saved result (summary, ratios, targets,
    table) from its runs with this version of the report, print and save them."""
    saved = json.loads(path.read_text())
    summary = report.summarize(saved["runs"])  # also adds derived per-run figures
    ratio = report.ratios(saved["runs"], summary, saved["params"]["viewers"])
    console = saved.get("console")
    if console and "runs" in console:
        console["summary"] = report.console_summary(console["runs"])
        console["ratios"] = report.console_ratios(console["runs"], console["summary"])
    rows = report.targets(summary, ratio, saved.get("sampler"), console)
    text = report.table(summary, ratio, rows, saved.get("sampler"), saved.get("ws_echo"),
                        saved["params"]["rounds"], console)
    print(text)
    saved.update(summary=summary, ratios=ratio, targets=rows, table=text)
    if not no_plot and summary:
        note = report.plot(summary, path.with_name("fanout.png"))
        print(f"note: plot skipped: {note}" if note else f"drew {path.with_name('fanout.png')}")
        saved["plot"] = None if note else "fanout.png"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(saved, indent=1) + "\n")
    tmp.replace(path)
    return 0


def print_profiles(runs: list[dict]) -> None:
    from .profile_top import render, top

    for r in runs:
        prof = r.get("profile")
        if not prof or not Path(prof["raw"]).exists():
            continue
        print(f"\npy-spy, ours at {r['viewers']} viewers, round {r['round']} "
              f"({r.get('server_cpu_percent')}% CPU with the profiler attached): {prof['raw']}")
        print(render(top([prof["raw"]], 12)))


def print_console_profiles(runs: list[dict]) -> None:
    from .profile_top import groups, render, render_groups, top

    for r in runs:
        prof = r.get("profile")
        if not prof:
            continue
        if not Path(prof["raw"]).exists():
            log = Path(prof["log"]).read_text(errors="replace").strip() if Path(prof["log"]).exists() else ""
            print(f"\npy-spy recorded nothing in console round {r['round']} (exit {prof['returncode']}): {log[-300:]}")
            continue
        load = r.get("load") or {}
        us = load.get("server_cpu_us_per_command")
        print(f"\npy-spy --native, ours under {load.get('consoles_connected')} consoles, round {r['round']} "
              f"({load.get('commands_per_s')} cmd/s, {us} us CPU per command, with the profiler "
              f"attached): {prof['raw']}")
        print(render(top([prof["raw"]], 25)))
        print(render_groups(groups([prof["raw"]]), us))


def run_console_part(args, scratch: Path, app_dir: Path | None) -> dict:
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
    cp = console_bench.ConsoleParams(
        consoles=args.consoles, window=args.console_window, clients=args.console_clients,
        seconds=args.console_seconds, warmup=args.console_warmup, messages=args.console_messages,
        rtt_warmup=args.console_rtt_warmup, idle=args.idle, profile=args.profile,
        app_dir=app_dir)
    steps = console_bench.plan(args.rounds, kinds)
    print(f"console: servers {', '.join(kinds)}; `{console_bench.LINE}` x {cp.messages} from one client, "
          f"then {cp.consoles} consoles ({cp.window} in flight each, {cp.clients} client processes) "
          f"for {cp.seconds:g} s; {len(steps)} runs", flush=True)
    runs = []
    try:
        for i, (rnd, kind) in enumerate(steps, 1):
            t = time.monotonic()
            r = console_bench.run_console(kind, cp, scratch, rnd)
            runs.append(r)
            print(f"[console {i}/{len(steps)}] round {rnd} {kind:<4}: {console_bench.line(r)}"
                  f"  ({time.monotonic() - t:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted: reporting the console runs that finished")
    summary = report.console_summary(runs)
    return {
        "params": {"line": console_bench.LINE, "rounds": args.rounds, "servers": kinds,
                   "consoles": cp.consoles, "window": cp.window, "clients": cp.clients,
                   "seconds": cp.seconds, "warmup": cp.warmup, "messages": cp.messages,
                   "rtt_warmup": cp.rtt_warmup, "idle": cp.idle, "profile": cp.profile,
                   "server_env": console_bench.CONSOLE_ENV},
        "summary": summary,
        "ratios": report.console_ratios(runs, summary),
        "runs": runs,
    }


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        if json.loads(args.report.read_text()).get("kind") == "soak":
            return soak.rerender(args.report, args.no_plot)
        return rerender(args.report, args.no_plot)
    # Stop cleanly (servers and clients ended, finished runs reported) on Ctrl-C,
    # SIGTERM or SIGHUP, also when started in the background with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if args.soak:
        return soak.main(args, git_state(args.app_ref), host_info(), export_app)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile:  # kept: the raw stacks are the point
        scratch = args.out / "profiles"
        scratch.mkdir(parents=True, exist_ok=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    servers = []
    for s in args.servers:
        why = available(s)
        if why:
            print(f"note: skipping the {s} server: {why}")
        else:
            servers.append(s)
    args.servers = servers
    if args.two_workers and available("ours2"):
        print(f"note: skipping the two-worker runs: {available('ours2')}")
        args.two_workers = None
    app_dir = export_app(args.app_ref, scratch / "app") if args.app_ref else None
    params = Params(seconds=args.seconds, idle=args.idle, settle=args.settle, grace=args.grace,
                    rate=args.rate, per_process=args.per_process, profile=args.profile,
                    app_dir=app_dir)
    git = git_state(args.app_ref)
    if git.get("uncommitted_app_changes"):
        print(f"note: measuring the working tree with uncommitted app changes: "
              f"{', '.join(git['uncommitted_app_changes'])} (use --app-ref HEAD for the committed app)")
    steps = [] if args.no_sse else plan(args)
    print(f"bench {args.mode}: servers {', '.join(servers)}; viewers {args.viewers}; "
          f"{args.rounds} round(s) of {args.seconds:g} s; {len(steps)} runs; logs in {scratch}/logs")

    runs = []
    try:
        for i, (rnd, n, server) in enumerate(steps, 1):
            t = time.monotonic()
            r = run_one(server, n, params, scratch, rnd)
            runs.append(r)
            print(f"[{i}/{len(steps)}] round {rnd} {server:<5} {n:>6} viewers: " + _line(r)
                  + f"  ({time.monotonic() - t:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("interrupted: reporting the runs that finished")

    console = None
    if not args.no_console:
        console = run_console_part(args, scratch, app_dir)

    sampler = None
    if not args.no_sampler:
        sampler = run_json_tool("sampler_bench", ["--samples", str(args.preset["sampler_samples"]),
                                                  "--spacing", str(args.preset["sampler_spacing"])], 180,
                                app_dir=app_dir)
    history = None
    if not args.no_history:
        preset = args.preset
        history = run_json_tool("history_bench", [
            "--idle-seconds", str(preset["history_idle_seconds"]), "--rounds", str(preset["history_rounds"]),
            "--requests", str(preset["history_requests"])], 1800, app_dir=app_dir)
    summary = report.summarize(runs)
    ratio = report.ratios(runs, summary, args.viewers)
    target_rows = report.targets(summary, ratio, sampler, console)
    text = report.table(summary, ratio, target_rows, sampler, None, args.rounds, console)
    busy = None  # bench/busy_host.py: it adds processes to the host, so it runs when nothing else does
    if not args.no_busy:
        from .busy_host import render

        busy = run_json_tool("busy_host", ["--rounds", "5", "--samples", "5"] if args.mode == "full" else
                             ["--counts", "100,1000", "--rounds", "1", "--samples", "3", "--warmup", "1"],
                             900, app_dir=app_dir)
        text += "\n\n" + render(busy)
    if history is not None:
        from .history_bench import render

        text += "\n\n" + (f"Lasting history: failed: {history['error']}" if "error" in history
                           else render(history))
    print()
    print(text)
    if args.profile:
        print_profiles(runs)
        if console:
            print_console_profiles(console["runs"])

    result = {
        "format": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": args.mode,
        "argv": sys.argv[1:] if argv is None else list(argv),
        "host": host_info(),
        "git": git,
        "params": {"viewers": args.viewers, "rounds": args.rounds, "seconds": args.seconds,
                   "idle": args.idle, "settle": args.settle, "grace": args.grace, "rate": args.rate,
                   "per_process": args.per_process, "servers": servers, "profile": args.profile,
                   "naive_viewers": max((v for v in args.viewers if v <= NAIVE_MAX_VIEWERS), default=None)},
        "summary": summary,
        "ratios": ratio,
        "targets": target_rows,
        "sampler": sampler,
        "busy_host": busy,
        "history": history,
        "console": console,
        "runs": runs,
        "table": text,
    }
    plot_note = None
    if not args.no_plot and not summary:
        plot_note = "no SSE runs"
    elif not args.no_plot:
        plot_note = report.plot(summary, args.out / "fanout.png")
        if plot_note:
            print(f"note: plot skipped: {plot_note}")
    result["plot"] = None if (args.no_plot or plot_note) else "fanout.png"
    result["duration_s"] = round(time.monotonic() - started, 1)
    tmp = args.out / "latest.json.tmp"
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(args.out / "latest.json")
    print(f"\nwrote {args.out / 'latest.json'}" + ("" if result["plot"] is None else
          f" and {args.out / 'fanout.png'}") + f" in {result['duration_s']:.0f} s")
    if any("failed" in r for r in runs + (console["runs"] if console else [])):
        print(f"some runs failed: server and client logs kept in {scratch}/logs")
    elif not args.profile:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _line(r: dict) -> str:
    if "failed" in r:
        return f"FAILED {r['failed'][:200]}"
    return (f"held {r['open_at_end']}/{r['viewers']}, {r['events_per_viewer_s']:.3f} ev/v/s, "
            f"CPU {r['server_cpu_percent']:.1f}%, p50 {r['delay_p50_ms']} ms, p99 {r['delay_p99_ms']} ms, "
            f"RSS {r['rss_mb']:.0f} MB ({r['rss_per_viewer_kib']:.1f} KiB/viewer), "
            f"disc {r['disconnects']}, gaps {r['gaps']}, client CPU max {r['client_cpu_percent_max']:.0f}%")


if __name__ == "__main__":
    sys.exit(main())
