"""The SSE fan-out's report: medians across rounds, noise, ratios against the
baselines, targets and the printed table (the console's part is console_report.py)."""

from __future__ import annotations

from .console_report import console_table, console_targets
from .figures import fmt_stat, ratio_range, stat, target
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
            entry[m] = stat([r.get(m) for r in ok])
        for m, pick in WORST.items():
            vals = [r.get(m) for r in ok if r.get(m) is not None]
            entry[m + "_worst"] = pick(vals) if vals else None
        if len(ok) < len(rs):
            entry["failures"] = [r["failed"] for r in rs if "failed" in r]
        out.setdefault(server, {})[str(viewers)] = entry
    return out


def _med(summary: dict, server: str, viewers: int, metric: str):
    s = summary.get(server, {}).get(str(viewers), {}).get(metric)
    return s["median"] if s else None


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
        rows.append(target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects", measured, ok))
    elif s10k:
        rows.append(target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects",
                            f"{s10k['failed_rounds']} of {s10k['rounds']} rounds failed", False))
    else:
        rows.append(target("10,000 viewers held, every event delivered",
                            "1.0 ev/viewer/s, 0 disconnects", "not measured", None))

    r5k = ratio.get("5000", {})
    cpu = r5k.get("cpu_ours_over_node")
    rows.append(target("5,000 viewers: server CPU vs Node", "<= 1.5x",
                        f"{cpu['median_ratio']}x (rounds {cpu['per_round_min']}-{cpu['per_round_max']})"
                        if cpu else "not measured",
                        None if not cpu or cpu["median_ratio"] is None else cpu["median_ratio"] <= 1.5))
    p99 = r5k.get("p99_ours_over_node")
    rows.append(target("5,000 viewers: delay p99 vs Node", "<= 2x",
                        f"{p99['median_ratio']}x (rounds {p99['per_round_min']}-{p99['per_round_max']})"
                        if p99 else "not measured",
                        None if not p99 or p99["median_ratio"] is None else p99["median_ratio"] <= 2.0))
    for n in (5000, 10000):
        ours = summary.get("ours", {}).get(str(n), {}).get("rss_per_viewer_kib")
        node = summary.get("node", {}).get(str(n), {}).get("rss_per_viewer_kib")
        rows.append(target(f"{n:,} viewers: memory per viewer vs Node", "<= 1.0x",
                            f"{ours['median']} vs {node['median']} KiB = {ours['median'] / node['median']:.2f}x"
                            if ours and node and node["median"] else "not measured",
                            None if not (ours and node and node["median"]) else ours["median"] <= node["median"]))
    rows += two_worker_targets(summary)
    naive = ratio.get("1000", {}).get("cpu_naive_over_ours")
    rows.append(target("1,000 viewers: CPU vs naive Flask", ">= 10x less",
                        f"{naive['median_ratio']}x less (rounds {naive['per_round_min']}-"
                        f"{naive['per_round_max']})" if naive else "not measured",
                        None if not naive or naive["median_ratio"] is None else naive["median_ratio"] >= 10.0))
    if sampler and "core_percent_at_1hz" in sampler:
        pct = sampler["core_percent_at_1hz"]
        rows.append(target("sampler at 1 Hz", "< 1% of one core",
                            f"{pct}% ({sampler['cpu_ms_mean']} ms CPU per sample, "
                            f"{sampler['cpu_ms_min']}-{sampler['cpu_ms_max']})", pct < 1.0))
    else:
        rows.append(target("sampler at 1 Hz", "< 1% of one core", "not measured", None))
    wire = (sampler or {}).get("wire")
    rows.append(target("bytes per metrics event", "new <= 2/3 of old",
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
            rows.append(target(name, "all held and delivered; CPU/viewer <= Node's at N/2",
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
        rows.append(target(name, "all held and delivered; CPU/viewer <= Node's at N/2", measured,
                            held and ratio is not None and ratio <= 1.0))
    return rows


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
                    f"{server:<7} {viewers:>7} {held:>11} {fmt_stat(e['events_per_viewer_s'], 3, False):>7}"
                    f" {deliv:>6}"
                    f" {e['disconnects_worst']:>5} {e['gaps_worst']:>5}"
                    f" {fmt_stat(e['server_cpu_percent'], 1):>20} {fmt_stat(e['cpu_us_per_event'], 1, False):>5}"
                    f" {fmt_stat(e['delay_p50_ms'], 1):>20}"
                    f" {fmt_stat(e['delay_p99_ms'], 1):>20} {fmt_stat(e['rss_mb'], 0, False):>8}"
                    f" {fmt_stat(e['rss_per_viewer_kib'], 1):>18} {fmt_stat(e['idle_rss_mb'], 0, False):>7}"
                    f" {fmt_stat(e['idle_cpu_percent'], 1, False):>10}"
                    f" {fmt_stat(e['client_cpu_percent_max'], 0):>12}"
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
                    value = "n/a (baseline measured 0)" if r["median_ratio"] is None else f"{r['median_ratio']}x"
                    parts.append(f"{label} {value}{ratio_range(r)}")
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
