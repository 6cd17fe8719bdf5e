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

Each series gets a verdict, flat or growing (soak_report.py: `verdict()`,
FLAT_RULES), and the run exits 1 when one grows, 2 when it could not be
carried out.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from .children import ChildError, Children
from .figures import fmt
from .servers import AUTH, REPO, Server
from .soak_report import FLAT_RULES, finish, log_summary, verdicts

# The event buffer and the chart history keep HISTORY_SECONDS of events (3,600 s
# by default): over a one-hour soak they would fill the whole time and RSS would
# grow by design. With 120 s they are full before the first sample and evict
# from then on, which is the steady state a long-running server lives in.
# CONSOLE_RATE stays at its default (20/s): a console here sends at most about
# 3 requests a second, one at a time.
SOAK_ENV = {"HISTORY_SECONDS": "120"}

DRAIN_TIMEOUT = 60.0  # for the server to count no viewers and no consoles after the clients left


class SoakError(RuntimeError):
    pass


# ---- the load process ----------------------------------------------------------------


class LoadProcess:
    """bench.soak_client in its own process; status on request, result at the end."""

    def __init__(self, server: Server, args, seconds: float, log_dir: Path, tag: str, seed: int) -> None:
        self.seconds = seconds
        env = {**os.environ, "PYTHONPATH": str(REPO), "OPERATOR_TOKEN": server.token}  # not on the command line
        self.child = Children("the load client")
        self.child.spawn("soak_client", [
            "--port", str(server.port), "--viewers", str(args.soak_viewers),
            "--consoles", str(args.soak_consoles), "--seconds", f"{seconds:.3f}", "--seed", str(seed),
            "--viewer-max-lifetime", f"{args.viewer_max_lifetime:g}",
            "--console-max-lifetime", f"{args.console_max_lifetime:g}"],
            log_dir / f"soak-client-{tag}.log", env=env)
        self.started = self.child.read("started", 30.0)[0]

    def status(self) -> dict | None:
        try:
            self.child.send({"cmd": "status"})
            return self.child.read("status", 10.0)[0]
        except (OSError, ChildError):
            return None

    def result(self) -> dict:
        return self.child.read("result", self.seconds + 120.0)[0]

    def stop(self) -> None:
        self.child.stop(60.0)


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


# ---- the run --------------------------------------------------------------------------------


def _print_row(s: dict) -> None:
    c = s.get("client") or {}
    when = f"{s['minute']:6.2f} min" if s["phase"] in ("load", "end") else s["time"][11:19] + " UTC"
    print(f"  [{s['phase']:<5} {when}] viewers {s['viewers']}, consoles {s['consoles']}, "
          f"open files {s['open_files']}, RSS {s['rss_mb']} MB, greenlets {s['greenlets']}, "
          f"CPU {s['cpu_s']} s ({fmt(s['cpu_percent'], '.1f')}%)"
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


def main(args, git: dict, host: dict, export_app) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    app_dir = export_app(args.app_ref, scratch / "app") if args.app_ref else None
    return run(args, git, app_dir, scratch, host)
