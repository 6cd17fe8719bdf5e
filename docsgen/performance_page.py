"""The performance page's tables, made from the benchmark runs kept in bench/results/.

docs/performance.md is prose written by hand with marked blocks; each block is
rendered here from one saved run (bench/results/latest.json for the fan-out,
sampler, wire, busy-host and lasting-history figures), with the date, commit and
command of that run. A new run saved there
and `python -m docsgen` update every figure at once; nothing is copied by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .blocks import fill

PAGE = "performance.md"
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
SERVERS = {"ours": "ours", "node": "Node", "naive": "naive Flask", "ours2": "ours, two workers on Redis"}


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def _range(s: dict | None, digits: int = 1) -> str:
    if not s:
        return "-"
    med = f"{s['median']:.{digits}f}"
    return f"{med} ({s['min']:.{digits}f}-{s['max']:.{digits}f})" if s.get("n", 1) > 1 else med


def _command(run: dict) -> str:
    argv = list(run["argv"])
    if "--out" in argv:  # where that run wrote its files says nothing about the run
        at = argv.index("--out")
        del argv[at:at + 2]
    return "bin/bench " + " ".join(argv)


def _commit(run: dict) -> str:
    """The measured app's commit: the ref given with --app-ref, else the checkout's HEAD (the run
    refuses nothing, but records what was uncommitted: shown when there was any)."""
    git = run["git"]
    dirty = git.get("uncommitted_app_changes")
    return (git.get("app_commit") or git["head"]) + (" with uncommitted changes" if dirty else "")


def run_header(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    host = run["host"]
    return (f"Run of {run['created'][:10]}, app at commit `{_commit(run)}`, "
            f"{run['mode']} mode, {run['duration_s'] / 60:.0f} minutes; made with\n\n"
            f"```sh\n{_command(run)}\n```\n\n"
            f"on a shared {host['cpus']}-core machine with {host['memory_gb']} GiB of memory, Linux "
            f"{host['kernel'].split('-')[0]}, Python {host['python']}, Node {host['node']}, open-files limit "
            f"{host['open_files_limit']:,}; load average at start {host['load_at_start'][0]}. The whole run is "
            f"`bench/results/latest.json`.\n")


def fanout(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    rows = ["| viewers | server | server CPU, % of a core | delay p50 ms | delay p99 ms | RSS per viewer, KiB "
            "| held at the end | gaps |",
            "|---:|---|---:|---:|---:|---:|---:|---:|"]
    entries = [(int(n), server, e) for server, by_n in run["summary"].items() for n, e in by_n.items()]
    order = list(SERVERS)
    for n, server, e in sorted(entries, key=lambda t: (t[0], order.index(t[1]))):
        rows.append(f"| {n:,} | {SERVERS[server]} | {_range(e['server_cpu_percent'])} "
                    f"| {_range(e['delay_p50_ms'])} | {_range(e['delay_p99_ms'])} "
                    f"| {_range(e['rss_per_viewer_kib'])} | {e['open_at_end_worst']:,} | {e['gaps_worst']} |")
    rounds = max(e["rounds"] for _n, _s, e in entries)
    return (f"Medians over {rounds} rounds, (min-max) over the rounds: how noisy the machine was.\n\n"
            + "\n".join(rows) + "\n")


def targets(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    rows = ["| target | goal | measured | verdict |", "|---|---|---|---|"]
    for t in run["targets"]:
        rows.append(f"| {t['target']} | {t['goal'].replace('|', '/')} | {t['measured']} | {t['status']} |")
    missing = [t["target"] for t in run["targets"] if t["status"] == "n/a"]
    why = " (it was started with `--no-console`)" if "--no-console" in run["argv"] else ""
    note = (f"\nRows marked n/a were not measured in this run{why}; `bin/bench --full` measures them.\n"
            if missing else "")
    return "\n".join(rows) + "\n" + note


def sampler(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    s = run["sampler"]
    w = s["wire"]
    heaviest = ", ".join(f"{k} {v}" for k, v in list(s["collector_cpu_ms"].items())[:3])
    return (f"- **The sampler**, real collectors and top processes included, {s['processes_on_host']} processes "
            f"on the host: {s['cpu_ms_mean']} ms of CPU per sample ({s['cpu_ms_min']}-{s['cpu_ms_max']}), "
            f"{s['core_percent_at_1hz']} % of a core at 1 Hz; heaviest collectors (ms): {heaviest}.\n"
            f"- **The metrics event on the wire**, the same {w['samples']} samples: plain JSON "
            f"{w['old_bytes_mean']:,.0f} bytes, compact form {w['new_bytes_mean']:,.0f} bytes ({w['ratio']}x, "
            f"samples {w['ratio_min']}-{w['ratio_max']}); a whole SSE frame {w['old_frame_bytes_mean']:,.0f} → "
            f"{w['new_frame_bytes_mean']:,.0f} bytes; encoding {w['old_encode_cpu_ms_mean']} → "
            f"{w['new_encode_cpu_ms_mean']} ms of CPU, once per sample whatever the number of viewers.\n")


def busy_host(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    b = run["busy_host"]
    rows = ["| processes on the host | psutil scan (a) | our table (b) | whole sample (c) | (b)/(a) | (c)/(a) "
            "| full table for `ps`/`top` (d) |", "|---:|---:|---:|---:|---:|---:|---:|"]

    def ms(s: dict) -> str:
        return f"{s['median_ms']:.2f} ({s['min_ms']:.2f}-{s['max_ms']:.2f})"

    for c in b["counts"]:
        rows.append(f"| {c['processes']:,} | {ms(c['psutil_scan'])} | {ms(c['table'])} | {ms(c['sample'])} "
                    f"| {c['table_ratio']:.2f} | {c['sample_ratio']:.2f} | {ms(c['full_table'])} |")
    t = b["target"]
    verdict = "met" if t["pass"] else "missed"
    return (f"CPU ms per sample, median (min-max) of {b['rounds'] * b['samples']} samples "
            f"({b['rounds']} round of {b['samples']}; `python -m bench.busy_host --rounds 5 --samples 5` "
            f"takes more), reader `{b['backend']}`:\n\n" + "\n".join(rows)
            + f"\n\nThe target, {t['what']}, is {verdict}: {t['ratio']}x.\n")


def history(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    part = run.get("history")
    if not part or "error" in part:
        return ("Not measured in the kept run (made with `--no-history`, or it failed: "
                f"{(part or {}).get('error', 'not run')}); `bin/bench --full` measures it.\n")
    idle, disk, api, start = part["idle"], part["disk"], part["api"], part["startup"]
    rows = ["| figure | measured |", "|---|---|",
            f"| worker CPU at 1 Hz, idle, store on / off ({idle['rounds']} rounds of {idle['seconds']:.0f} s) "
            f"| {idle['on_median']} % ({idle['on_min']}-{idle['on_max']}) / {idle['off_median']} % "
            f"({idle['off_min']}-{idle['off_max']}) of a core: {idle['extra_percent']:+} % |"]
    for tier in ("minute", "hour"):
        d = disk[tier]
        rows.append(f"| disk, {tier} tier, one host ({disk['series']} series) | {d['bytes_per_day'] / 1000:,.1f} kB "
                    f"a day, {d['bytes_per_point']} B per stored point |")
    ev = disk["events"]
    rows.append(f"| disk, event buffer | {ev['bytes'] / 1e6:.1f} MB for {ev['seconds'] // 3600} h at 1 Hz "
                f"({ev['bytes_per_sample']:,} B per {ev['sample_bytes']:,} B event as the hub stores it) |")
    for window in ("30d", "7d", "1d"):
        a = api[window]
        rows.append(f"| `/api/history`, {window} ({a['tier']} tier, step {a['step']} s, {a['points']:,} points "
                    f"from {a['stored_points_read']:,}) | p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms |")
    rows.append(f"| start-up to the first sample served | empty store {start['empty']['median_s']} s; "
                f"{start['full_hour']['events']:,} stored events {start['full_hour']['median_s']} s |")
    return (f"From the same run (its `history` part: `bench/history_bench.py` with the {run['mode']} preset), "
            f"app at commit `{_commit(run)}`, {api['requests']} requests per window:\n\n"
            + "\n".join(rows) + "\n")


def storm(run: dict | None = None) -> str:
    run = run or _load("latest.json")
    part = run.get("storm") or {}
    if not part:
        return "Not measured in the kept run; `bin/bench --storm` (or `--full`) measures it.\n"
    out = []
    s, o = part.get("storm") or {}, part.get("open_cost") or {}
    if "error" in s or not s:
        out.append(f"The storm failed: {s.get('error', 'not run')}.")
    else:
        out += [f"{s['viewers']:,} viewers through a SIGTERM and a new server (`bench/restart_storm.py`: "
                f"`DRAIN_SECONDS` {s['drain']:g}, `STREAM_OPENS_PER_SECOND` {s['opens']}, as the deploy guide "
                "advises for that crowd; the first row is the same without either):", "",
                "| run | A's streams end, s after SIGTERM | B's peak opens a second | deferred | all back on B, s "
                "| B's CPU, s | seq skipped / repeated | live viewers' p99 ms, storm / after |",
                "|---|---|---:|---:|---:|---:|---|---|"]
        for r in s["runs"]:
            out.append(f"| {r['label']} | {r['ends_first']}-{r['ends_last']} | {r['peak_opens_per_s']:,} "
                       f"| {r['deferred']:,} | {r['all_back_s']} | {r['b_cpu_s']} | {r['seq_gaps']} / {r['seq_repeats']} "
                       f"| {r.get('live_p99_ms_storm', '-')} / {r.get('live_p99_ms_after', '-')} |")
        out += ["", "Targets, on the run with the drain: " + "; ".join(
            f"{t['target']} {t['measured']} (goal {t['goal']}): "
            f"{'not measured' if t['met'] is None else 'met' if t['met'] else '**missed**'}"
            for t in s["targets"]) + "."]
    if o and "error" not in o:
        med = o["medians_us_per_open"]
        ratio = o.get("ours_over_node")
        out += ["", f"CPU per stream open (`bench/open_cost.py`, median of its rounds): ours {med['ours']:.0f} µs"
                + (f", Node's tutorial server {med['node']:.0f} µs: {ratio:.2f}x, the target (at most Node's) "
                   f"{'met' if ratio <= 1 else '**missed**'}" if ratio is not None else "") + "."]
    return "\n".join(out) + "\n"


BLOCKS: dict[str, Callable[[], str]] = {
    "run": run_header, "fanout": fanout, "targets": targets, "sampler": sampler,
    "busy_host": busy_host, "history": history, "storm": storm,
}


def render(current: str) -> str:
    """The page with every marked block made again from the saved runs."""
    return fill(PAGE, current, BLOCKS)
