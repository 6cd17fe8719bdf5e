"""The soak's verdicts and what it prints and writes: flat or growing per series
(FLAT_RULES), the table, the server log's summary, soak.json and soak.png."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

from .figures import fmt
from .plots import soak_plot

# What "flat" means, per series. Under load: the median of the last third of
# the load samples may exceed the median of the first third by at most
# `abs + rel x first-third median`. After all clients left: the end sample may
# exceed the start sample (also idle, taken after the warm-up load) by at most
# `end_abs`. Open files and greenlets follow the connection count, which moves
# by a few between samples; the allowances cover that, not a leak: one file or
# greenlet kept per thousand connections shows up within the hour.
FLAT_RULES = {
    "open_files": {"label": "open files", "unit": "", "abs": 5, "rel": 0.02, "end_abs": 3},
    "greenlets": {"label": "greenlets", "unit": "", "abs": 5, "rel": 0.02, "end_abs": 3},
    "rss_mb": {"label": "RSS", "unit": " MB", "abs": 4.0, "rel": 0.03, "end_abs": 6.0},
    "cpu_percent": {"label": "server CPU", "unit": "%", "abs": 2.0, "rel": 0.25, "end_abs": None},
}
SERIES = ("rss_mb", "open_files", "greenlets", "cpu_percent")


def verdict(samples: list[dict], key: str, rule: dict) -> dict:
    """Flat or growing, by FLAT_RULES (see the module's README for the rule in words)."""
    load = [s[key] for s in samples if s["phase"] == "load" and s.get(key) is not None]
    out: dict = {"series": key, "label": rule["label"], "rule": {k: rule[k] for k in ("abs", "rel", "end_abs")},
                 "load_samples": len(load)}
    if len(load) < 2:
        out.update(verdict="n/a", why="fewer than 2 samples under load")
        return out
    k = max(1, len(load) // 3)
    first, last = statistics.median(load[:k]), statistics.median(load[-k:])
    allowed = rule["abs"] + rule["rel"] * abs(first)
    out.update(first_third_median=round(first, 2), last_third_median=round(last, 2),
               growth=round(last - first, 2), allowed=round(allowed, 2), third_of=k,
               thirds_ok=last - first <= allowed)
    if rule["end_abs"] is not None:
        start = next((s[key] for s in samples if s["phase"] == "start"), None)
        end = next((s[key] for s in samples if s["phase"] == "end"), None)
        if start is None or end is None:
            out.update(end_ok=None, why="no start or end sample")
        else:
            out.update(start=start, end=end, end_growth=round(end - start, 2), end_allowed=rule["end_abs"],
                       end_ok=end - start <= rule["end_abs"])
    grows = not out["thirds_ok"] or out.get("end_ok") is False
    out["verdict"] = "growing" if grows else "flat"
    if out.get("end_ok") is None and rule["end_abs"] is not None and not grows:
        out["verdict"] = "n/a"
    return out


def verdicts(samples: list[dict]) -> list[dict]:
    return [verdict(samples, key, FLAT_RULES[key]) for key in SERIES]


def verdict_line(v: dict) -> str:
    unit = FLAT_RULES[v["series"]]["unit"]
    name = f"{v['label']:<11}"
    if v["verdict"] == "n/a" and "first_third_median" not in v:
        return f"  n/a      {name} {v.get('why', '')}"
    text = (f"  {v['verdict'].upper():<8} {name} under load: first third median {v['first_third_median']:g}{unit}, "
            f"last third {v['last_third_median']:g}{unit} ({v['growth']:+g}{unit}, allowed +{v['allowed']:g}{unit})")
    if "end_growth" in v:
        text += (f"; after the clients left: {v['end']:g}{unit} vs {v['start']:g}{unit} at start "
                 f"({v['end_growth']:+g}{unit}, allowed +{v['end_allowed']:g}{unit})")
    return text


def rule_text() -> str:
    parts = []
    for key in SERIES:
        r = FLAT_RULES[key]
        end = f", end <= start + {r['end_abs']:g}{r['unit']}" if r["end_abs"] is not None else ""
        parts.append(f"{r['label']}: +{r['abs']:g}{r['unit']} + {r['rel'] * 100:g}%{end}")
    return ("flat = median of the last third of the load samples <= median of the first third + "
            "allowance, and the end sample (all clients gone) <= the start sample + allowance; "
            + "; ".join(parts))


def table(result: dict) -> str:
    lines = ["Soak: " + result["summary_line"], "",
             f"{'phase':<6} {'min':>6} {'viewers':>7} {'consoles':>8} {'open files':>10} {'RSS MB':>7} "
             f"{'greenlets':>9} {'CPU s':>8} {'CPU %':>6} {'client v/c':>10} {'cmd p99 ms':>10} {'load1':>6}"]
    for s in result["samples"]:
        c = s.get("client") or {}
        vc = f"{c['viewers_open']}/{c['consoles_open']}" if c else "-"
        lines.append(
            f"{s['phase']:<6} {s['minute']:>6.2f} {fmt(s['viewers']):>7} {fmt(s['consoles']):>8} "
            f"{fmt(s['open_files']):>10} {fmt(s['rss_mb'], '.1f'):>7} {fmt(s['greenlets']):>9} "
            f"{s['cpu_s']:>8.1f} {fmt(s['cpu_percent'], '.1f'):>6} {vc:>10} "
            f"{fmt(c.get('reply_ms_p99'), '.1f'):>10} {fmt(s.get('load1'), '.2f'):>6}")
    lines += ["", "Verdicts (" + rule_text() + "):"]
    lines += [verdict_line(v) for v in result["verdicts"]]
    d = result.get("drain") or {}
    if d:
        lines.append(f"  {'FLAT' if d.get('drained') else 'GROWING':<8} connections "
                     + (f"the server counted no viewers and no consoles {d['seconds']:g} s after the clients left"
                        if d.get("drained") else
                        f"the server still counted {d.get('viewers_left')} viewers and "
                        f"{d.get('consoles_left')} consoles {d['seconds']:g} s after the clients left"))
    load = result.get("load") or {}
    if load:
        counts = load.get("counts", {})
        cmds = sum(v for k, v in counts.items() if k.startswith("console `"))
        lines += ["", f"Load: {counts.get('viewer connections', 0):,} viewer connections "
                      f"({counts.get('viewer resumes (Last-Event-ID)', 0):,} resumes, "
                      f"{counts.get('viewer left abruptly (reset)', 0):,} resets), "
                      f"{counts.get('console connections', 0):,} console connections, {cmds:,} commands "
                      f"({counts.get('console `broadcast` replies', 0):,} broadcasts), "
                      f"{counts.get('viewer events', 0):,} events received"]
        slow = load.get("reply_ms_max_by_command") or {}
        if slow:
            lines.append("Slowest reply by command (ms; replies over 100 ms): " + ", ".join(
                f"{verb} {ms:g} ({counts.get(f'console `{verb}` replies over 100 ms', 0)})"
                for verb, ms in sorted(slow.items(), key=lambda kv: -kv[1])))
        anomalies = load.get("anomalies") or {}
        if anomalies:
            lines.append("Anomalies seen by the clients:")
            lines += [f"  {n:>7,}  {k}" for k, n in sorted(anomalies.items(), key=lambda kv: -kv[1])]
        else:
            lines.append("Anomalies seen by the clients: none")
    log = result.get("server_log") or {}
    if log:
        levels = ", ".join(f"{k} {v:,}" for k, v in sorted(log.get("levels", {}).items()))
        lines.append(f"Server log: {log.get('lines', 0):,} lines ({levels}), {log.get('mb', 0):g} MB, "
                     f"tracebacks {log.get('tracebacks', 0)}")
        for msg, n in (log.get("warnings") or {}).items():
            lines.append(f"  {n:>7,}  {msg}")
    return "\n".join(lines)


def log_summary(path: Path) -> dict:
    levels: dict[str, int] = {}
    warnings: dict[str, int] = {}
    lines = tracebacks = 0
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            for raw in f:  # bounded by the file
                lines += 1
                if b"Traceback" in raw:
                    tracebacks += 1
                try:
                    rec = json.loads(raw)
                except ValueError:
                    levels["not json"] = levels.get("not json", 0) + 1
                    continue
                if not isinstance(rec, dict):
                    continue
                level = str(rec.get("level", "?"))
                levels[level] = levels.get(level, 0) + 1
                if level in ("warning", "error", "critical"):
                    msg = f"{level}: {str(rec.get('msg', ''))[:100]}"
                    if msg in warnings or len(warnings) < 20:
                        warnings[msg] = warnings.get(msg, 0) + 1
    except OSError as exc:
        return {"error": str(exc)}
    return {"lines": lines, "mb": round(size / 2**20, 1), "levels": levels, "tracebacks": tracebacks,
            "warnings": dict(sorted(warnings.items(), key=lambda kv: -kv[1]))}


def summary_line(result: dict) -> str:
    p = result["params"]
    grows = [v["label"] for v in result["verdicts"] if v["verdict"] == "growing"]
    if result.get("drain") and not result["drain"].get("drained"):
        grows.append("connections")
    if result.get("failed"):
        state = f"FAILED ({result['failed']})"
    elif grows:
        state = "GROWING: " + ", ".join(grows)
    else:
        state = "flat"
    return (f"{p['minutes']:g} min, {p['viewers']} viewers and {p['consoles']} consoles coming and going, "
            f"{sum(1 for s in result['samples'] if s['phase'] == 'load')} samples under load: {state}")


def finish(result: dict, json_path: Path, no_plot: bool, scratch: Path | None) -> int:
    """Print the table, write the JSON and the plot next to it (soak.json, soak.png); the exit code."""
    png = json_path.with_suffix(".png")
    result["summary_line"] = summary_line(result)
    text = table(result)
    result["table"] = text
    print()
    print(text)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    note = None if not no_plot else "--no-plot"
    if not no_plot:
        note = soak_plot(result, png)
        if note:
            print(f"note: plot skipped: {note}")
    result["plot"] = None if note else png.name
    tmp = json_path.with_name(json_path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(json_path)
    print(f"\nwrote {json_path}" + ("" if note else f" and {png}"))
    grows = "GROWING" in result["summary_line"]
    if result.get("failed") or not result["samples"]:
        code = 2
    else:
        code = 1 if grows else 0
    if scratch is not None:
        if code:
            print(f"server and client logs kept in {scratch}/logs")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return code


def rerender(path: Path, no_plot: bool) -> int:
    """Verdicts, table and plot again from a saved soak.json (with this version's rules)."""
    result = json.loads(path.read_text())
    result["verdicts"] = verdicts(result["samples"])
    result["params"]["flat_rules"] = FLAT_RULES
    return finish(result, path, no_plot, None)
