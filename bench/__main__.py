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

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from . import console_bench, report, soak, soak_report
from .children import ChildError, run_json
from .console_report import console_ratios, console_summary
from .options import parse_args
from .plots import fanout_plot
from .profile_top import print_console_profiles, print_profiles
from .provenance import export_app, git_state, host_info
from .run import Params, run_one
from .servers import REPO, available

NAIVE_MAX_VIEWERS = 1000


def run_json_tool(module: str, extra: list[str], timeout: float, app_dir: Path | None = None) -> dict:
    """A one-shot tool's JSON result, or {"error": why}. With app_dir, `dashboard`
    is imported from there (it comes first on sys.path)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)} if app_dir else None
    try:
        return run_json(module, extra, timeout, cwd=app_dir or REPO, env=env)
    except ChildError as exc:
        return {"error": str(exc)}


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
        console["summary"] = console_summary(console["runs"])
        console["ratios"] = console_ratios(console["runs"], console["summary"])
    rows = report.targets(summary, ratio, saved.get("sampler"), console)
    text = report.table(summary, ratio, rows, saved.get("sampler"), saved.get("ws_echo"),
                        saved["params"]["rounds"], console)
    print(text)
    saved.update(summary=summary, ratios=ratio, targets=rows, table=text)
    if not no_plot and summary:
        note = fanout_plot(summary, path.with_name("fanout.png"))
        print(f"note: plot skipped: {note}" if note else f"drew {path.with_name('fanout.png')}")
        saved["plot"] = None if note else "fanout.png"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(saved, indent=1) + "\n")
    tmp.replace(path)
    return 0


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv, __doc__.split("\n\n")[0])
    if args.report:
        if json.loads(args.report.read_text()).get("kind") == "soak":
            return soak_report.rerender(args.report, args.no_plot)
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
        console = console_bench.run_part(args, scratch, app_dir)

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
    browser = None  # bench/browser_bench.py: Chromium and (if it installs) Glances' web UI, when asked for
    if args.browser:
        from .browser_bench import table as browser_table

        browser = run_json_tool("browser_bench", ["--seconds", str(args.browser), "--rates", "1,4",
                                                  "--out", str(args.out / "browser.json")],
                                300 + 8 * (args.browser + 30), app_dir=app_dir)
        text += "\n\n" + (f"Browser: failed: {browser['error']}" if "error" in browser else browser_table(browser))
    storm = None  # bench/restart_storm.py and bench/open_cost.py: a deploy's storm, when asked for (or --full)
    if args.storm or (args.mode == "full" and args.storm is None):
        from .open_cost import table as open_table
        from .restart_storm import table as storm_table

        viewers = args.storm or 5000
        storm = {"storm": run_json_tool("restart_storm", ["--viewers", str(viewers)], 1200, app_dir=app_dir),
                 "open_cost": run_json_tool("open_cost", ["--rounds", "3"], 900, app_dir=app_dir)}
        for part, render_part in (("storm", storm_table), ("open_cost", open_table)):
            got = storm[part]
            text += "\n\n" + (f"{part}: failed: {got['error']}" if "error" in got else render_part(got))
    agent = None  # bench/agent_cost.py: the packaged agent beside node_exporter and Glances, when asked for
    if args.agent or (args.mode == "full" and args.agent is None):
        from .agent_cost import table as agent_table

        seconds = args.agent or 60.0
        agent = run_json_tool("agent_cost", ["--packaged", "--seconds", f"{seconds:g}", "--glances", "auto"],
                              900 + 4 * seconds, app_dir=app_dir)
        text += "\n\n" + (f"Agent cost: failed: {agent['error']}" if "error" in agent else agent_table(agent))
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
        "browser": browser,
        "storm": storm,
        "agent": agent,
        "console": console,
        "runs": runs,
        "table": text,
    }
    plot_note = None
    if not args.no_plot and not summary:
        plot_note = "no SSE runs"
    elif not args.no_plot:
        plot_note = fanout_plot(summary, args.out / "fanout.png")
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
