"""Soak: our server for a long while under viewers and consoles that come and go.

    python -m bench --soak [--soak-minutes 60] [--soak-viewers 300] [--soak-consoles 20]
                           [--soak-sample-seconds 60] [--app-ref REF] [--out DIR]

Our server only, started as servers.py starts it (gunicorn + gevent, real
sampler), with HISTORY_SECONDS=120 (see SOAK_ENV). Then:

    idle -> sample "boot" (no clients yet) -> warm-up: the same load for a short
    while, every client leaves, the server drains, settle -> sample "start"
    -> the load (soak_client.py, one process) for --soak-minutes, a sample
    every --soak-sample-seconds -> every client leaves, the server drains,
    settle -> sample "end" -> the server stops.

A sample is the worker's `GET /healthz?details=1` process block (open files,
RSS, greenlets alive after a gc.collect()), the viewers it counts (`/healthz`
subscribers) and the consoles (`/metrics` dashboard_consoles), the CPU time of
the server's process tree, and the load client's own view (connections it
holds, reply times since the last sample).

Each series gets a verdict, flat or growing (`verdict()`, FLAT_RULES), and the
run exits 1 when one grows, 2 when it could not be carried out.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from .servers import AUTH, REPO, Server

# The event buffer and the chart history keep HISTORY_SECONDS of events (3,600 s
# by default): over a one-hour soak they would fill the whole time and RSS would
# grow by design. With 120 s they are full before the first sample and evict
# from then on, which is the steady state a long-running server lives in.
# CONSOLE_RATE stays at its default (20/s): a console here sends at most about
# 3 requests a second, one at a time.
SOAK_ENV = {"HISTORY_SECONDS": "120"}

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
DRAIN_TIMEOUT = 60.0  # for the server to count no viewers and no consoles after the clients left


class SoakError(RuntimeError):
    pass


# ---- the load process ----------------------------------------------------------------


class LoadProcess:
    """bench.soak_client in its own process; status on request, result at the end."""

    def __init__(self, server: Server, args, seconds: float, log_dir: Path, tag: str, seed: int) -> None:
        self.seconds = seconds
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPERATOR_TOKEN": server.token}  # not on the command line
        self._err = open(log_dir / f"soak-client-{tag}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.soak_client", "--port", str(server.port),
             "--viewers", str(args.soak_viewers), "--consoles", str(args.soak_consoles),
             "--seconds", f"{seconds:.3f}", "--seed", str(seed),
             "--viewer-max-lifetime", f"{args.viewer_max_lifetime:g}",
             "--console-max-lifetime", f"{args.console_max_lifetime:g}"],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
        )
        self._buf = b""
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.started = self.read("started", 30.0)

    def read(self, kind: str, timeout: float) -> dict:
        """The next line of the given type (others are skipped), within timeout."""
        deadline = time.monotonic() + timeout
        while True:  # bounded by the deadline
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("type") == kind:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise SoakError(f"the load client sent no '{kind}' within {timeout:g} s")
            if self._sel.select(min(left, 1.0)):
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise SoakError(f"the load client exited (code {self.proc.poll()}) without '{kind}'")
                self._buf += chunk

    def status(self) -> dict | None:
        try:
            self.proc.stdin.write(b'{"cmd": "status"}\n')
            self.proc.stdin.flush()
            return self.read("status", 10.0)
        except (OSError, SoakError):
            return None

    def result(self) -> dict:
        return self.read("result", self.seconds + 120.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # ends the client's run
            except OSError:
                pass
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._sel.close()
        self._err.close()


# ---- samples ----------------------------------------------------------------------------


def _get(port: int, path: str) -> bytes:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=AUTH)
    with urllib.request.urlopen(req, timeout=15) as r:
        return r.read()


_CONSOLES = re.compile(rb"^dashboard_consoles\s+([0-9.eE+-]+)\s*$", re.M)


def server_counts(server: Server) -> tuple[dict, int | None]:
    health = json.loads(_get(server.port, "/healthz?details=1"))
    m = _CONSOLES.search(_get(server.port, "/metrics"))
    return health, (int(float(m.group(1))) if m else None)


def take_sample(server: Server, phase: str, t0: float, prev: dict | None,
                load: LoadProcess | None = None) -> dict:
    if server.proc.poll() is not None:
        raise SoakError(f"the server exited with {server.proc.returncode}")
    now = time.monotonic()
    cpu = server.cpu_seconds()
    health, consoles = server_counts(server)
    took = time.monotonic() - now  # /healthz?details=1 (a gc.collect() in the worker) and /metrics
    proc = health.get("process") or {}
    s = {
        "phase": phase,
        "t_s": round(now - t0, 1),
        "minute": round((now - t0) / 60.0, 2),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "viewers": health.get("subscribers"),
        "consoles": consoles,
        "open_files": proc.get("open_files"),
        "rss_mb": round(proc["rss"] / 2**20, 2) if proc.get("rss") is not None else None,
        "greenlets": proc.get("greenlets"),
        "cpu_s": round(cpu, 2),
        "cpu_percent": None,
        "sampler_state": (health.get("sampler") or {}).get("state"),
        "sample_ms": round(took * 1000.0, 1),
        "load1": round(os.getloadavg()[0], 2),
    }
    if phase == "load" and prev is not None and now > prev["_mono"]:
        s["cpu_percent"] = round(100.0 * (cpu - prev["cpu_s"]) / (now - prev["_mono"]), 2)
    if load is not None:
        st = load.status()
        if st:
            s["client"] = {k: st.get(k) for k in ("viewers_open", "consoles_open", "replies",
                                                  "reply_ms_p50", "reply_ms_p99", "reply_ms_max",
                                                  "anomalies", "cpu_s")}
    s["_mono"] = now
    return s


def wait_drained(server: Server, timeout: float) -> dict:
    """Until the server counts no viewers and no consoles (bounded)."""
    started = time.monotonic()
    last = (None, None)
    while time.monotonic() - started < timeout:  # bounded by timeout
        health, consoles = server_counts(server)
        last = (health.get("subscribers"), consoles)
        if last == (0, 0):
            return {"drained": True, "seconds": round(time.monotonic() - started, 1)}
        time.sleep(0.5)
    return {"drained": False, "seconds": round(timeout, 1), "viewers_left": last[0], "consoles_left": last[1]}


# ---- verdicts ---------------------------------------------------------------------------


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


# ---- table and plot -------------------------------------------------------------------


def _fmt(v, spec: str = "", none: str = "-") -> str:
    return none if v is None else format(v, spec)


def table(result: dict) -> str:
    lines = ["Soak: " + result["summary_line"], "",
             f"{'phase':<6} {'min':>6} {'viewers':>7} {'consoles':>8} {'open files':>10} {'RSS MB':>7} "
             f"{'greenlets':>9} {'CPU s':>8} {'CPU %':>6} {'client v/c':>10} {'cmd p99 ms':>10} {'load1':>6}"]
    for s in result["samples"]:
        c = s.get("client") or {}
        vc = f"{c['viewers_open']}/{c['consoles_open']}" if c else "-"
        lines.append(
            f"{s['phase']:<6} {s['minute']:>6.2f} {_fmt(s['viewers']):>7} {_fmt(s['consoles']):>8} "
            f"{_fmt(s['open_files']):>10} {_fmt(s['rss_mb'], '.1f'):>7} {_fmt(s['greenlets']):>9} "
            f"{s['cpu_s']:>8.1f} {_fmt(s['cpu_percent'], '.1f'):>6} {vc:>10} "
            f"{_fmt(c.get('reply_ms_p99'), '.1f'):>10} {_fmt(s.get('load1'), '.2f'):>6}")
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


def plot(result: dict, path: Path) -> str | None:
    """RSS, open files, greenlets and the connection counts over minutes. None if drawn."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed (bin/bench installs it from requirements-bench.txt)"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = [s for s in result["samples"] if s["phase"] != "boot"]
    load = [s for s in samples if s["phase"] == "load"]
    if not load:
        return "no samples under load"
    verdict_of = {v["series"]: v for v in result["verdicts"]}
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    panels = ((axes[0][0], "rss_mb", "RSS (MB)"), (axes[0][1], "open_files", "open files"),
              (axes[1][0], "greenlets", "greenlets alive"))
    k = max(1, len(load) // 3)
    for ax, key, label in panels:
        xs = [s["minute"] for s in samples if s.get(key) is not None]
        ys = [s[key] for s in samples if s.get(key) is not None]
        ax.plot(xs, ys, marker=".", color="tab:blue")
        idle = [s for s in samples if s["phase"] in ("start", "end") and s.get(key) is not None]
        ax.scatter([s["minute"] for s in idle], [s[key] for s in idle], color="tab:green", zorder=3,
                   label="no clients (start, end)")
        v = verdict_of.get(key, {})
        if "first_third_median" in v:
            for part, med in ((load[:k], v["first_third_median"]), (load[-k:], v["last_third_median"])):
                ax.hlines(med, part[0]["minute"], part[-1]["minute"], colors="tab:orange", linewidth=2)
            ax.axvspan(load[0]["minute"], load[k - 1]["minute"], color="tab:orange", alpha=0.08)
            ax.axvspan(load[-k]["minute"], load[-1]["minute"], color="tab:orange", alpha=0.08)
        ax.set_title(f"{label}: {v.get('verdict', 'n/a')}", fontsize=10)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if key != "rss_mb":  # RSS never nears 0: zoomed in, so a slow climb shows
            ax.set_ylim(bottom=0)
    axes[0][0].legend(fontsize=8, loc="lower right")
    ax = axes[1][1]
    xs = [s["minute"] for s in samples]
    ax.plot(xs, [s["viewers"] for s in samples], marker=".", label="viewers (server)")
    ax.plot(xs, [s["consoles"] for s in samples], marker=".", label="consoles (server)")
    ax.set_ylabel("open connections")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    cpu = [(s["minute"], s["cpu_percent"]) for s in samples if s["phase"] == "load" and s.get("cpu_percent") is not None]
    if cpu:
        ax2 = ax.twinx()
        ax2.plot([x for x, _ in cpu], [y for _, y in cpu], color="tab:red", alpha=0.6, label="server CPU %")
        ax2.set_ylabel("server CPU (% of one core)")
        ax2.set_ylim(bottom=0)
        ax2.legend(fontsize=8, loc="lower right")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"connections; server CPU: {verdict_of.get('cpu_percent', {}).get('verdict', 'n/a')}", fontsize=10)
    for a in axes[1]:
        a.set_xlabel("minutes since the load started (0: start sample, last: end sample)")
    p = result["params"]
    fig.suptitle(f"Soak: {p['minutes']:g} min, {p['viewers']} viewers and {p['consoles']} consoles coming and going "
                 f"(orange: medians of the first and last thirds)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


# ---- the server's log ---------------------------------------------------------------------


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


# ---- the run --------------------------------------------------------------------------------


def _print_row(s: dict) -> None:
    c = s.get("client") or {}
    when = f"{s['minute']:6.2f} min" if s["phase"] in ("load", "end") else s["time"][11:19] + " UTC"
    print(f"  [{s['phase']:<5} {when}] viewers {s['viewers']}, consoles {s['consoles']}, "
          f"open files {s['open_files']}, RSS {s['rss_mb']} MB, greenlets {s['greenlets']}, "
          f"CPU {s['cpu_s']} s ({_fmt(s['cpu_percent'], '.1f')}%)"
          + (f", client {c.get('viewers_open')}/{c.get('consoles_open')}, cmd p99 {c.get('reply_ms_p99')} ms, "
             f"anomalies {c.get('anomalies')}" if c else ""), flush=True)


def settle_and_sample(server: Server, phase: str, t0: float, prev: dict | None, settle: float) -> dict:
    drain = wait_drained(server, DRAIN_TIMEOUT)
    if not drain["drained"]:
        print(f"  note: {drain}", flush=True)
    time.sleep(settle)
    s = take_sample(server, phase, t0, prev)
    s["drain"] = drain
    _print_row(s)
    return s


def run(args, git: dict, app_dir: Path | None, scratch: Path, host: dict) -> int:
    minutes = args.soak_minutes
    seconds = minutes * 60.0
    interval = args.soak_sample_seconds
    warmup = args.soak_warmup if args.soak_warmup is not None else min(60.0, max(2.0, 0.1 * seconds))
    args.viewer_max_lifetime = min(240.0, max(2.5, seconds / 4))
    args.console_max_lifetime = min(600.0, max(3.5, seconds / 3))
    seed = args.soak_seed if args.soak_seed is not None else int.from_bytes(os.urandom(4), "big")
    logs, home = scratch / "logs", scratch / "home"
    logs.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    params = {"minutes": minutes, "viewers": args.soak_viewers, "consoles": args.soak_consoles,
              "sample_seconds": interval, "warmup_seconds": warmup, "idle_seconds": args.soak_idle,
              "settle_seconds": args.soak_settle, "viewer_max_lifetime_s": args.viewer_max_lifetime,
              "console_max_lifetime_s": args.console_max_lifetime, "seed": seed, "server_env": SOAK_ENV,
              "flat_rules": FLAT_RULES}
    print(f"soak: ours for {minutes:g} min under {args.soak_viewers} viewers and {args.soak_consoles} consoles "
          f"coming and going, a sample every {interval:g} s (warm-up {warmup:g} s, seed {seed}); "
          f"server settings {SOAK_ENV}, CONSOLE_RATE at its default (20/s): a console sends at most "
          f"about 3 requests a second; logs in {logs}", flush=True)
    result: dict = {"format": 1, "kind": "soak", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "argv": args.argv, "host": host, "git": git, "params": params, "samples": []}
    samples = result["samples"]
    server = Server("ours", logs, home, **({"app_dir": app_dir} if app_dir else {}), env=SOAK_ENV)
    load: LoadProcess | None = None
    failed = None
    started = time.monotonic()
    try:
        server.start()
        result["port"] = server.port
        time.sleep(args.soak_idle)
        boot = take_sample(server, "boot", time.monotonic(), None)
        _print_row(boot)
        # Warm-up: the same load, briefly, so the start sample is taken after the
        # allocator, caches and pools have seen it (both start and end are idle).
        print(f"  warm-up: {warmup:g} s of the load", flush=True)
        load = LoadProcess(server, args, warmup, logs, "warmup", seed ^ 0x5A5A)
        result["warmup_load"] = load.result()
        load.stop()
        load = None
        start = settle_and_sample(server, "start", time.monotonic(), boot, args.soak_settle)
        samples.append(boot)
        samples.append(start)
        # The soak: the clock starts with the load; samples at k x interval.
        t0 = time.monotonic()
        for s in samples:
            s["minute"] = round((s["_mono"] - t0) / 60.0, 2)
            s["t_s"] = round(s["_mono"] - t0, 1)
        load = LoadProcess(server, args, seconds, logs, "soak", seed)
        prev = start
        n = max(1, round(seconds / interval))
        for k in range(1, n + 1):  # bounded: n samples
            due = t0 + min(k * interval, seconds - 0.5 if k == n else k * interval)
            time.sleep(max(0.0, due - time.monotonic()))
            prev = take_sample(server, "load", t0, prev, load)
            samples.append(prev)
            _print_row(prev)
        result["load"] = load.result()
        load.stop()
        load = None
        end = settle_and_sample(server, "end", t0, prev, args.soak_settle)
        samples.append(end)
        result["drain"] = end["drain"]
    except KeyboardInterrupt:
        failed = "interrupted"
        print("interrupted: reporting the samples taken so far", flush=True)
    except (SoakError, OSError, ValueError, RuntimeError, TimeoutError) as exc:
        failed = f"{type(exc).__name__}: {exc}"[:500]
        print(f"soak failed: {failed}", flush=True)
    finally:
        if load is not None:
            load.stop()
        server.stop()
    for s in samples:
        s.pop("_mono", None)
    result["server_log"] = log_summary(server.log_path)
    audit = home / f"audit-{server.port}.sqlite3"
    result["audit_db_mb"] = round(audit.stat().st_size / 2**20, 1) if audit.exists() else None
    result["failed"] = failed
    result["verdicts"] = verdicts(samples)
    result["duration_s"] = round(time.monotonic() - started, 1)
    return finish(result, args.out / "soak.json", args.no_plot, scratch)


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
        note = plot(result, png)
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


def main(args, git: dict, host: dict, export_app) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    app_dir = export_app(args.app_ref, scratch / "app") if args.app_ref else None
    return run(args, git, app_dir, scratch, host)
