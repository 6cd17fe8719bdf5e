"""The operator console's report: medians across rounds, ours over the echo
floor, the console targets and the console's part of the printed table."""

from __future__ import annotations

from .figures import fmt_stat, ratio_range, rounds_range, stat, target

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
            entry[name] = stat([_console_value(r, path) for r in ok])
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


def console_targets(console: dict | None) -> list[dict]:
    goals = (("console: status round trip p50, one client", "< 1 ms"),
             ("console: status round trip p99, one client", "< 5 ms"),
             ("console: status commands/s over 50 consoles", ">= 3,000/s"))
    s = (console or {}).get("summary", {}).get("ours")
    if not s or s["failed_rounds"] == s["rounds"]:
        why = "not measured" if not s else f"all {s['rounds']} round(s) failed"
        return [target(name, goal, why, None if not s else False) for name, goal in goals]
    failed = f"; {s['failed_rounds']} of {s['rounds']} rounds failed" if s["failed_rounds"] else ""
    clean = not s["failed_rounds"] and not s["rtt_errors_worst"]
    rows = []
    for (name, goal), metric, limit in zip(goals[:2], ("rtt_p50_ms", "rtt_p99_ms"), (1.0, 5.0)):
        st = s[metric]
        errors = f", {s['rtt_errors_worst']} error replies" if s["rtt_errors_worst"] else ""
        rows.append(target(name, goal, f"{st['median']:.3f} ms{rounds_range(st, 3)}{errors}{failed}",
                            clean and st["median"] < limit))
    params = console["params"]
    st = s["load_cmd_per_s"]
    if params["consoles"] != 50:
        rows.append(target(goals[2][0], goals[2][1],
                            f"not measured at 50 ({params['consoles']} consoles: {st['median']:,.0f}/s)", None))
    else:
        ok = (not s["failed_rounds"] and not s["load_errors_worst"] and not s["load_disconnects_worst"]
              and s["load_connected_worst"] == 50 and st["median"] >= 3000)
        cpu = s["load_server_cpu_percent"]
        rows.append(target(goals[2][0], goals[2][1],
                            f"{st['median']:,.0f}/s{rounds_range(st, 0)}, server CPU {cpu['median']:.0f}%, "
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
        lines.append(f"  {server:<7} {fmt_stat(e['rtt_p50_ms'], 3):>22} {fmt_stat(e['rtt_p90_ms'], 3, False):>8}"
                     f" {fmt_stat(e['rtt_p99_ms'], 3):>22} {fmt_stat(e['rtt_max_ms'], 1, False):>8}"
                     f" {fmt_stat(e['rtt_per_s'], 0, False):>7} {fmt_stat(e['rtt_client_cpu_us'], 0, False):>13}"
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
        lines.append(f"  {server:<7} {held:>6} {fmt_stat(e['load_cmd_per_s'], 0):>20} {fmt_stat(e['load_p50_ms'], 2):>20}"
                     f" {fmt_stat(e['load_p99_ms'], 2):>20} {fmt_stat(e['load_server_cpu_percent'], 0):>17}"
                     f" {fmt_stat(e['load_server_us_per_cmd'], 0):>16}"
                     f" {fmt_stat(e['load_client_cpu_percent_max'], 0):>16}"
                     f" {fmt_stat(e['load_client_cpu_percent_sum'], 0, False):>4}"
                     f" {fmt_stat(e['load_client_us_per_reply'], 0, False):>13}"
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
                parts.append(f"{label} {r['median_ratio']}x{ratio_range(r)}")
        lines.append("  ours / echo: " + ", ".join(parts))
    return lines
