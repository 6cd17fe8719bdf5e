"""Medians across rounds, noise, ratios against the baselines, targets, table, plot."""

from __future__ import annotations

import statistics
from pathlib import Path

from .servers import KINDS

# Figures summarized per (server, viewers): median over rounds plus min-max.
METRICS = (
    "server_cpu_percent",
    "cpu_us_per_event",
    "delay_p50_ms",
    "delay_p99_ms",
    "events_per_viewer_s",
    "delivered",
    "rss_mb",
    "rss_per_viewer_kib",
    "idle_rss_mb",
    "idle_cpu_percent",
    "client_cpu_percent_max",
    "client_loop_lag_max_ms",
    "server_threads",
    "event_bytes_mean",
)
# Counts where the worst round matters.
WORST = {
    "viewers_connected": min,
    "open_at_end": min,
    "disconnects": max,
    "gaps": max,
    "errors": max,
}


def _stat(values: list[float]) -> dict | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return {
        "median": round(med, 4),
        "min": round(lo, 4),
        "max": round(hi, 4),
        "n": len(values),
        # (max - min) / median: how noisy this figure was across rounds.
        "spread": round((hi - lo) / med, 3) if med else None,
    }


def derive(run: dict) -> dict:
    """Figures computed from a run's measurements (also for older JSON files)."""
    if "failed" in run or run.get("cpu_us_per_event") is not None:
        return run
    deliveries = (run.get("viewers_connected") or 0) * (run.get("events_per_viewer_s") or 0)
    if deliveries and run.get("server_cpu_percent") is not None:
        # Server CPU per event delivered to one viewer: the fan-out's unit cost.
        run["cpu_us_per_event"] = round(run["server_cpu_percent"] / 100 * 1e6 / deliveries, 2)
    return run


def summarize(runs: list[dict]) -> dict:
    """{server: {viewers: {metric: stat}}} over the rounds that completed."""
    runs = [derive(r) for r in runs]
    out: dict = {}
    keys = sorted({(r["server"], r["viewers"]) for r in runs})
    for server, viewers in keys:
        rs = [r for r in runs if r["server"] == server and r["viewers"] == viewers]
        ok = [r for r in rs if "failed" not in r]
        entry: dict = {"rounds": len(rs), "failed_rounds": len(rs) - len(ok)}
        for m in METRICS:
            entry[m] = _stat([r.get(m) for r in ok])
        for m, pick in WORST.items():
            vals = [r.get(m) for r in ok if r.get(m) is not None]
            entry[m + "_worst"] = pick(vals) if vals else None
        if len(ok) < len(rs):
            entry["failures"] = [r["failed"] for r in rs if "failed" in r]
        out.setdefault(server, {})[str(viewers)] = entry
    return out


def _med(summary: dict, server: str, viewers: int, metric: str):
    stat = summary.get(server, {}).get(str(viewers), {}).get(metric)
    return stat["median"] if stat else None


def _per_round_ratios(runs, a: str, b: str, viewers: int, metric: str) -> list[float]:
    """a/b within each round (rounds interleave the servers, so they share the noise)."""
    ratios = []
    for rnd in sorted({r["round"] for r in runs}):
        ra = [r for r in runs if r["server"] == a and r["viewers"] == viewers and r["round"] == rnd
              and "failed" not in r]
        rb = [r for r in runs if r["server"] == b and r["viewers"] == viewers and r["round"] == rnd
              and "failed" not in r]
        if ra and rb and ra[0].get(metric) and rb[0].get(metric):
            ratios.append(ra[0][metric] / rb[0][metric])
    return ratios


def ratios(runs: list[dict], summary: dict, viewer_counts: list[int]) -> dict:
    out: dict = {}
    for n in viewer_counts:
        entry: dict = {}
        for metric, name in (("server_cpu_percent", "cpu"), ("delay_p99_ms", "p99"),
                             ("delay_p50_ms", "p50"), ("rss_mb", "rss")):
            ours, node = _med(summary, "ours", n, metric), _med(summary, "node", n, metric)
            if ours is not None and node is not None:
                per_round = _per_round_ratios(runs, "ours", "node", n, metric)
                entry[f"{name}_ours_over_node"] = {
                    # None when the baseline measured 0 (CPU is counted in 10 ms ticks).
                    "median_ratio": round(ours / node, 3) if node else None,
                    "per_round_min": round(min(per_round), 3) if per_round else None,
                    "per_round_max": round(max(per_round), 3) if per_round else None,
                }
        ours, naive = _med(summary, "ours", n, "server_cpu_percent"), _med(summary, "naive", n, "server_cpu_percent")
        if ours is not None and naive is not None:
            per_round = _per_round_ratios(runs, "naive", "ours", n, "server_cpu_percent")
            entry["cpu_naive_over_ours"] = {
                "median_ratio": round(naive / ours, 2) if ours else None,
                "per_round_min": round(min(per_round), 2) if per_round else None,
                "per_round_max": round(max(per_round), 2) if per_round else None,
            }
        if entry:
            out[str(n)] = entry
    return out


def _target(name, goal, measured, ok) -> dict:
    status = "n/a" if ok is None else ("PASS" if ok else "FAIL")
    return {"target": name, "goal": goal, "measured": measured, "status": status}


def targets(summary: dict, ratio: dict, sampler: dict | None, console: dict | None = None) -> list[dict]:
    return sse_targets(summary, ratio, sampler) + console_targets(console)


def sse_targets(summary: dict, ratio: dict, sampler: dict | None) -> list[dict]:
    rows = []
    s10k = summary.get("ours", {}).get("10000")
    if s10k and not s10k["failed_rounds"]:
        delivered = s10k["delivered"]
        evs = s10k["events_per_viewer_s"]
        ok = (
            s10k["viewers_connected_worst"] == 10000
            and s10k["open_at_end_worst"] == 10000
            and s10k["disconnects_worst"] == 0
            and s10k["gaps_worst"] == 0
            and s10k["errors_worst"] == 0
            and delivered is not None
            and delivered["min"] >= 1.0
        )
        measured = (
            f"held {s10k['open_at_end_worst']}/10000 (worst round), "
            f"{evs['median'] if evs else '?'} ev/viewer/s, delivered min "
            f"{delivered['min'] if delivered else '?'}, disconnects {s10k['disconnects_worst']}, "
            f"gaps {s10k['gaps_worst']}"
        )
        rows.append(_target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects", measured, ok))
    elif s10k:
        rows.append(_target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects",
                            f"{s10k['failed_rounds']} of {s10k['rounds']} rounds failed", False))
    else:
        rows.append(_target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects", "not measured", None))

    r5k = ratio.get("5000", {})
    cpu = r5k.get("cpu_ours_over_node")
    rows.append(_target("5,000 viewers: server CPU vs Node", "<= 1.5x",
                        f"{cpu['median_ratio']}x (rounds {cpu['per_round_min']}-{cpu['per_round_max']})"
                        if cpu else "not measured",
                        None if not cpu or cpu["median_ratio"] is None else cpu["median_ratio"] <= 1.5))
    p99 = r5k.get("p99_ours_over_node")
    rows.append(_target("5,000 viewers: delay p99 vs Node", "<= 2x",
                        f"{p99['median_ratio']}x (rounds {p99['per_round_min']}-{p99['per_round_max']})"
                        if p99 else "not measured",
                        None if not p99 or p99["median_ratio"] is None else p99["median_ratio"] <= 2.0))
    for n in (5000, 10000):
        ours = summary.get("ours", {}).get(str(n), {}).get("rss_per_viewer_kib")
        node = summary.get("node", {}).get(str(n), {}).get("rss_per_viewer_kib")
        rows.append(_target(f"{n:,} viewers: memory per viewer vs Node", "<= 1.0x",
                            f"{ours['median']} vs {node['median']} KiB = {ours['median'] / node['median']:.2f}x"
                            if ours and node and node["median"] else "not measured",
                            None if not (ours and node and node["median"]) else ours["median"] <= node["median"]))
    rows += two_worker_targets(summary)
    naive = ratio.get("1000", {}).get("cpu_naive_over_ours")
    rows.append(_target("1,000 viewers: CPU vs naive Flask", ">= 10x less",
                        f"{naive['median_ratio']}x less (rounds {naive['per_round_min']}-"
                        f"{naive['per_round_max']})" if naive else "not measured",
                        None if not naive or naive["median_ratio"] is None else naive["median_ratio"] >= 10.0))
    if sampler and "core_percent_at_1hz" in sampler:
        pct = sampler["core_percent_at_1hz"]
        rows.append(_target("sampler at 1 Hz", "< 1% of one core",
                            f"{pct}% ({sampler['cpu_ms_mean']} ms CPU per sample, "
                            f"{sampler['cpu_ms_min']}-{sampler['cpu_ms_max']})", pct < 1.0))
    else:
        rows.append(_target("sampler at 1 Hz", "< 1% of one core", "not measured", None))
    wire = (sampler or {}).get("wire")
    rows.append(_target("bytes per metrics event", "new <= 2/3 of old",
                        f"{wire['ratio']}x ({wire['new_bytes_mean']:.0f} of {wire['old_bytes_mean']:.0f} bytes, "
                        f"samples {wire['ratio_min']}-{wire['ratio_max']})" if wire else "not measured",
                        wire["pass"] if wire else None))
    return rows


def two_worker_targets(summary: dict) -> list[dict]:
    """ours2 (two workers on Redis) at N viewers: held, every event delivered, and
    CPU per viewer against one Node process at N/2 (`bin/bench --two-workers N`)."""
    rows = []
    for key, s in sorted(summary.get("ours2", {}).items(), key=lambda kv: int(kv[0])):
        n = int(key)
        name = f"{n:,} viewers over two workers on Redis"
        if s["failed_rounds"]:
            rows.append(_target(name, "all held and delivered; CPU/viewer <= Node's at N/2",
                                f"{s['failed_rounds']} of {s['rounds']} rounds failed", False))
            continue
        delivered = s["delivered"]
        held = (s["viewers_connected_worst"] == n and s["open_at_end_worst"] == n
                and s["disconnects_worst"] == 0 and s["gaps_worst"] == 0 and s["errors_worst"] == 0
                and delivered is not None and delivered["min"] >= 1.0)
        node = summary.get("node", {}).get(str(n // 2), {}).get("server_cpu_percent")
        cpu = s["server_cpu_percent"]
        ratio = None
        if node and cpu and node["median"]:
            ratio = (cpu["median"] / n) / (node["median"] / (n // 2))
        measured = (f"held {s['open_at_end_worst']}/{n}, delivered min {delivered['min'] if delivered else '?'}, "
                    f"gaps {s['gaps_worst']}; CPU {cpu['median'] if cpu else '?'}% vs Node "
                    f"{node['median'] if node else '?'}% at {n // 2:,}: per viewer "
                    + (f"{ratio:.2f}x" if ratio is not None else "not compared"))
        rows.append(_target(name, "all held and delivered; CPU/viewer <= Node's at N/2", measured,
                            held and ratio is not None and ratio <= 1.0))
    return rows


# ---- printing -------------------------------------------------------------------------


def _fmt(stat: dict | None, digits: int = 1, noise: bool = True) -> str:
    if not stat:
        return "-"
    med = f"{stat['median']:.{digits}f}"
    if noise and stat["n"] > 1:
        return f"{med} ({stat['min']:.{digits}f}-{stat['max']:.{digits}f})"
    return med


def table(summary: dict, ratio: dict, target_rows: list[dict], sampler, ws, rounds: int,
          console: dict | None = None) -> str:
    lines = []
    if not summary:
        lines.append("SSE fan-out: not run")
    else:
        lines.append(f"SSE fan-out, medians of {rounds} round(s); (min-max over rounds)")
        lines.append("held: streams open at the end (worst round); ev/v/s: events per viewer per second; "
                     "deliv: share of (viewer, event) pairs delivered (worst round); us/ev: server CPU "
                     "microseconds per event delivered to one viewer; KiB/viewer: (RSS - idle RSS) / viewers")
        head = (f"{'server':<7} {'viewers':>7} {'held':>11} {'ev/v/s':>7} {'deliv':>6} {'disc':>5} {'gaps':>5}"
                f" {'server CPU %':>20} {'us/ev':>5} {'p50 ms':>20} {'p99 ms':>20} {'RSS MB':>8} {'KiB/viewer':>18}"
                f" {'idle MB':>7} {'idle CPU %':>10} {'client CPU %':>12}")
        lines.append(head)
        lines.append("-" * len(head))
        for server in KINDS:
            for viewers in sorted(summary.get(server, {}), key=int):
                e = summary[server][viewers]
                if e["failed_rounds"] == e["rounds"]:
                    lines.append(f"{server:<7} {viewers:>7}  all rounds failed: {e.get('failures', ['?'])[0]}")
                    continue
                held = f"{e['open_at_end_worst']}/{viewers}"
                deliv = f"{e['delivered']['min']:.3f}" if e["delivered"] else "-"
                lines.append(
                    f"{server:<7} {viewers:>7} {held:>11} {_fmt(e['events_per_viewer_s'], 3, False):>7}"
                    f" {deliv:>6}"
                    f" {e['disconnects_worst']:>5} {e['gaps_worst']:>5}"
                    f" {_fmt(e['server_cpu_percent'], 1):>20} {_fmt(e['cpu_us_per_event'], 1, False):>5}"
                    f" {_fmt(e['delay_p50_ms'], 1):>20}"
                    f" {_fmt(e['delay_p99_ms'], 1):>20} {_fmt(e['rss_mb'], 0, False):>8}"
                    f" {_fmt(e['rss_per_viewer_kib'], 1):>18} {_fmt(e['idle_rss_mb'], 0, False):>7}"
                    f" {_fmt(e['idle_cpu_percent'], 1, False):>10}"
                    f" {_fmt(e['client_cpu_percent_max'], 0):>12}"
                )
                if e["failed_rounds"]:
                    lines.append(f"{'':>16}({e['failed_rounds']} round(s) failed: {e['failures'][0]})")
        lines.append("")
        lines.append("Ratios (median of ours / median of baseline; per-round range in brackets)")
        for viewers in sorted(ratio, key=int):
            parts = []
            for key, label in (("cpu_ours_over_node", "CPU ours/Node"), ("p99_ours_over_node", "p99 ours/Node"),
                               ("p50_ours_over_node", "p50 ours/Node"), ("rss_ours_over_node", "RSS ours/Node"),
                               ("cpu_naive_over_ours", "CPU naive/ours")):
                r = ratio[viewers].get(key)
                if r:
                    rng = (f" [{r['per_round_min']}-{r['per_round_max']}]"
                           if r["per_round_min"] is not None and r["per_round_min"] != r["per_round_max"] else "")
                    value = "n/a (baseline measured 0)" if r["median_ratio"] is None else f"{r['median_ratio']}x"
                    parts.append(f"{label} {value}{rng}")
            lines.append(f"  {viewers:>6} viewers: " + ", ".join(parts))
    if sampler:
        lines.append("")
        if "error" in sampler:
            lines.append(f"Sampler: failed: {sampler['error']}")
        else:
            lines.append(
                f"Sampler (real collectors incl. top processes, {sampler.get('processes_on_host', '?')} processes on the host): "
                f"{sampler['cpu_ms_mean']} ms CPU per sample (p50 {sampler['cpu_ms_p50']}, "
                f"{sampler['cpu_ms_min']}-{sampler['cpu_ms_max']}), JSON encode {sampler['encode_cpu_ms_mean']} ms, "
                f"{sampler['sample_bytes']} bytes -> {sampler['core_percent_at_1hz']}% of one core at 1 Hz"
            )
            if sampler.get("collector_cpu_ms"):
                lines.append("  per collector, ms CPU per sample: " + ", ".join(
                    f"{k} {v}" for k, v in sampler["collector_cpu_ms"].items()))
            wire = sampler.get("wire")
            if wire:
                lines.append(
                    f"Metrics event, same {wire['samples']} samples, plain JSON -> compact form: "
                    f"{wire['old_bytes_mean']:.0f} -> {wire['new_bytes_mean']:.0f} bytes of data "
                    f"({wire['ratio']}x, samples {wire['ratio_min']}-{wire['ratio_max']}), SSE frame "
                    f"{wire['old_frame_bytes_mean']:.0f} -> {wire['new_frame_bytes_mean']:.0f} bytes, "
                    f"encode {wire['old_encode_cpu_ms_mean']} -> {wire['new_encode_cpu_ms_mean']} ms CPU")
    if ws:
        if "skipped" in ws:
            lines.append(f"Node ws echo round trip: skipped ({ws['skipped']})")
        elif "error" in ws:
            lines.append(f"Node ws echo round trip: failed: {ws['error']}")
        else:
            lines.append(f"Node ws echo round trip (console floor, one Python client, sequential): "
                         f"p50 {ws['rtt_ms_p50']} ms, p99 {ws['rtt_ms_p99']} ms, {ws['messages_per_s']} msg/s")
    if console:
        if "skipped" in console:
            lines += ["", f"Operator console: skipped ({console['skipped']})"]
        else:
            lines += console_table(console)
    lines.append("")
    lines.append("Targets")
    w = max(len(t["target"]) for t in target_rows)
    for t in target_rows:
        lines.append(f"  {t['status']:<4}  {t['target']:<{w}}  goal {t['goal']:<31} measured {t['measured']}")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> str | None:
    """Server CPU and p99 delay against viewers, one line per server. None if drawn."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed (bin/bench installs it from requirements-bench.txt)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, label in ((axes[0], "server_cpu_percent", "server CPU (% of one core)"),
                              (axes[1], "delay_p99_ms", "delivery delay p99 (ms)")):
        for server, kind in KINDS.items():
            points = sorted(
                (int(n), e[metric]) for n, e in summary.get(server, {}).items()
                if e.get(metric) and e[metric]["median"] > 0
            )
            if not points:
                continue
            xs = [n for n, _ in points]
            med = [s["median"] for _, s in points]
            lo = [s["median"] - s["min"] for _, s in points]
            hi = [s["max"] - s["median"] for _, s in points]
            ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=kind.label)
        counts = sorted({int(n) for e in summary.values() for n in e})
        ax.set_xlabel("viewers")
        ax.set_ylabel(label + ", log scale")
        ax.grid(True, which="both", alpha=0.3)
        # Log scales: the naive server sits one to two orders of magnitude above.
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(counts, [f"{n:,}" for n in counts])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        # Labels at 1, 2, 5 of each decade: decades alone leave a line unreadable.
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].legend(fontsize=8)
    fig.suptitle("SSE fan-out at 1 event/s (medians, bars: min-max over rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ---- the operator console ------------------------------------------------------------------

# (key in the JSON, path inside a run): one-client and under-load figures.
CONSOLE_METRICS = {
    "rtt_p50_ms": ("rtt", "rtt_ms_p50"),
    "rtt_p90_ms": ("rtt", "rtt_ms_p90"),
    "rtt_p99_ms": ("rtt", "rtt_ms_p99"),
    "rtt_max_ms": ("rtt", "rtt_ms_max"),
    "rtt_per_s": ("rtt", "messages_per_s"),
    "rtt_client_cpu_us": ("rtt", "client_cpu_us_per_request"),
    "load_cmd_per_s": ("load", "commands_per_s"),
    "load_p50_ms": ("load", "rtt_ms_p50"),
    "load_p99_ms": ("load", "rtt_ms_p99"),
    "load_max_ms": ("load", "rtt_ms_max"),
    "load_server_cpu_percent": ("load", "server_cpu_percent"),
    "load_server_us_per_cmd": ("load", "server_cpu_us_per_command"),
    "load_client_cpu_percent_max": ("load", "client_cpu_percent_max"),
    "load_client_cpu_percent_sum": ("load", "client_cpu_percent_sum"),
    "load_client_us_per_reply": ("load", "client_cpu_us_per_reply"),
    "load_client_loop_lag_max_ms": ("load", "client_loop_lag_max_ms"),
}
CONSOLE_WORST = {
    "rtt_errors": (("rtt", "errors"), max),
    "load_errors": (("load", "errors"), max),
    "load_disconnects": (("load", "disconnects"), max),
    "load_connected": (("load", "consoles_connected"), min),
}
# Ratios ours / echo floor: (name, metric).
CONSOLE_RATIOS = (
    ("rtt_p50", "rtt_p50_ms"),
    ("rtt_p99", "rtt_p99_ms"),
    ("load_cmd_per_s", "load_cmd_per_s"),
    ("load_p50", "load_p50_ms"),
    ("load_p99", "load_p99_ms"),
    ("load_server_us_per_cmd", "load_server_us_per_cmd"),
)


def _console_value(run: dict, path: tuple[str, str]):
    part = run.get(path[0]) or {}
    return part.get(path[1])


def console_summary(runs: list[dict]) -> dict:
    """{server: {metric: stat}} over the console runs that completed."""
    out: dict = {}
    for server in sorted({r["server"] for r in runs}):
        rs = [r for r in runs if r["server"] == server]
        ok = [r for r in rs if "failed" not in r]
        entry: dict = {"rounds": len(rs), "failed_rounds": len(rs) - len(ok)}
        for name, path in CONSOLE_METRICS.items():
            entry[name] = _stat([_console_value(r, path) for r in ok])
        for name, (path, pick) in CONSOLE_WORST.items():
            vals = [_console_value(r, path) for r in ok if _console_value(r, path) is not None]
            entry[name + "_worst"] = pick(vals) if vals else None
        if len(ok) < len(rs):
            entry["failures"] = [r["failed"] for r in rs if "failed" in r]
        out[server] = entry
    return out


def console_ratios(runs: list[dict], summary: dict) -> dict:
    """ours / echo: ratio of the medians, with the range of the per-round ratios."""
    out: dict = {}
    if "ours" not in summary or "echo" not in summary:
        return out
    for name, metric in CONSOLE_RATIOS:
        a, b = summary["ours"].get(metric), summary["echo"].get(metric)
        if not a or not b:
            continue
        path = CONSOLE_METRICS[metric]
        per_round = []
        for rnd in sorted({r["round"] for r in runs}):
            ra = [r for r in runs if r["server"] == "ours" and r["round"] == rnd and "failed" not in r]
            rb = [r for r in runs if r["server"] == "echo" and r["round"] == rnd and "failed" not in r]
            if ra and rb and _console_value(ra[0], path) and _console_value(rb[0], path):
                per_round.append(_console_value(ra[0], path) / _console_value(rb[0], path))
        out[f"{name}_ours_over_echo"] = {
            "median_ratio": round(a["median"] / b["median"], 3) if b["median"] else None,
            "per_round_min": round(min(per_round), 3) if per_round else None,
            "per_round_max": round(max(per_round), 3) if per_round else None,
        }
    return out


def _range(stat: dict, digits: int) -> str:
    if stat["n"] > 1:
        return f" (rounds {stat['min']:.{digits}f}-{stat['max']:.{digits}f})"
    return ""


def console_targets(console: dict | None) -> list[dict]:
    goals = (("console: status round trip p50, one client", "< 1 ms"),
             ("console: status round trip p99, one client", "< 5 ms"),
             ("console: status commands/s over 50 consoles", ">= 3,000/s"))
    s = (console or {}).get("summary", {}).get("ours")
    if not s or s["failed_rounds"] == s["rounds"]:
        why = "not measured" if not s else f"all {s['rounds']} round(s) failed"
        return [_target(name, goal, why, None if not s else False) for name, goal in goals]
    failed = f"; {s['failed_rounds']} of {s['rounds']} rounds failed" if s["failed_rounds"] else ""
    clean = not s["failed_rounds"] and not s["rtt_errors_worst"]
    rows = []
    for (name, goal), metric, limit in zip(goals[:2], ("rtt_p50_ms", "rtt_p99_ms"), (1.0, 5.0)):
        st = s[metric]
        errors = f", {s['rtt_errors_worst']} error replies" if s["rtt_errors_worst"] else ""
        rows.append(_target(name, goal, f"{st['median']:.3f} ms{_range(st, 3)}{errors}{failed}",
                            clean and st["median"] < limit))
    params = console["params"]
    st = s["load_cmd_per_s"]
    if params["consoles"] != 50:
        rows.append(_target(goals[2][0], goals[2][1],
                            f"not measured at 50 ({params['consoles']} consoles: {st['median']:,.0f}/s)", None))
    else:
        ok = (not s["failed_rounds"] and not s["load_errors_worst"] and not s["load_disconnects_worst"]
              and s["load_connected_worst"] == 50 and st["median"] >= 3000)
        cpu = s["load_server_cpu_percent"]
        rows.append(_target(goals[2][0], goals[2][1],
                            f"{st['median']:,.0f}/s{_range(st, 0)}, server CPU {cpu['median']:.0f}%, "
                            f"errors {s['load_errors_worst']}, disconnects {s['load_disconnects_worst']}{failed}",
                            ok))
    return rows


def console_table(console: dict) -> list[str]:
    p = console["params"]
    summary = console["summary"]
    ratio = console.get("ratios", {})
    lines = ["", f"Operator console: `{p['line']}` over the WebSocket, medians of {p['rounds']} round(s); "
                 "(min-max over rounds); echo = the Node ws echo server, the floor"]
    lines.append(f"One client (websocket-client, sequential, {p['messages']} requests after "
                 f"{p['rtt_warmup']} warm-up), round trip in ms:")
    head = (f"  {'server':<7} {'p50 ms':>22} {'p90 ms':>8} {'p99 ms':>22} {'max ms':>8} {'req/s':>7}"
            f" {'client us/req':>13} {'errors':>6}")
    lines.append(head)
    for server in ("ours", "echo"):
        e = summary.get(server)
        if not e:
            continue
        if e["failed_rounds"] == e["rounds"]:
            lines.append(f"  {server:<7} all rounds failed: {e.get('failures', ['?'])[0]}")
            continue
        lines.append(f"  {server:<7} {_fmt(e['rtt_p50_ms'], 3):>22} {_fmt(e['rtt_p90_ms'], 3, False):>8}"
                     f" {_fmt(e['rtt_p99_ms'], 3):>22} {_fmt(e['rtt_max_ms'], 1, False):>8}"
                     f" {_fmt(e['rtt_per_s'], 0, False):>7} {_fmt(e['rtt_client_cpu_us'], 0, False):>13}"
                     f" {e['rtt_errors_worst']:>6}")
    lines.append(f"{p['consoles']} consoles from {p['clients']} client process(es) (raw sockets, "
                 f"{p['window']} request(s) in flight per console), {p['seconds']:g} s window after "
                 f"{p['warmup']:g} s warm-up:")
    head = (f"  {'server':<7} {'held':>6} {'cmd/s':>20} {'p50 ms':>20} {'p99 ms':>20} {'server CPU %':>17}"
            f" {'us/cmd':>16} {'client CPU % max':>16} {'sum':>4} {'client us/cmd':>13} {'err':>4} {'disc':>4}")
    lines.append(head)
    for server in ("ours", "echo"):
        e = summary.get(server)
        if not e or e["failed_rounds"] == e["rounds"]:
            continue
        held = f"{e['load_connected_worst']}/{p['consoles']}"
        lines.append(f"  {server:<7} {held:>6} {_fmt(e['load_cmd_per_s'], 0):>20} {_fmt(e['load_p50_ms'], 2):>20}"
                     f" {_fmt(e['load_p99_ms'], 2):>20} {_fmt(e['load_server_cpu_percent'], 0):>17}"
                     f" {_fmt(e['load_server_us_per_cmd'], 0):>16}"
                     f" {_fmt(e['load_client_cpu_percent_max'], 0):>16}"
                     f" {_fmt(e['load_client_cpu_percent_sum'], 0, False):>4}"
                     f" {_fmt(e['load_client_us_per_reply'], 0, False):>13}"
                     f" {e['load_errors_worst']:>4} {e['load_disconnects_worst']:>4}")
        if e["failed_rounds"]:
            lines.append(f"  {'':<7} ({e['failed_rounds']} round(s) failed: {e['failures'][0]})")
    if ratio:
        parts = []
        for key, label in (("rtt_p50_ours_over_echo", "one client p50"), ("rtt_p99_ours_over_echo", "p99"),
                           ("load_cmd_per_s_ours_over_echo", f"{p['consoles']} consoles cmd/s"),
                           ("load_p50_ours_over_echo", "p50"), ("load_p99_ours_over_echo", "p99"),
                           ("load_server_us_per_cmd_ours_over_echo", "server CPU per cmd")):
            r = ratio.get(key)
            if r and r["median_ratio"] is not None:
                rng = (f" [{r['per_round_min']}-{r['per_round_max']}]"
                       if r["per_round_min"] is not None and r["per_round_min"] != r["per_round_max"] else "")
                parts.append(f"{label} {r['median_ratio']}x{rng}")
        lines.append("  ours / echo: " + ", ".join(parts))
    return lines
