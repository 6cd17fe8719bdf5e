"""One measured run: one server, one viewer count, one round.

    start the server -> let it idle (idle CPU, idle RSS) -> connect the viewers
    gradually, wait until all are connected -> settle -> measured window
    (server CPU of the process tree, RSS, the clients' delivery figures)
    -> clients disconnect -> server stops.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import profiler as profiler_mod
from .clients import ClientError, ClientGroup
from .servers import Server


@dataclass
class Params:
    seconds: float  # measured window
    idle: float  # server idles this long before viewers connect
    settle: float  # after the last viewer connected, before the window
    grace: float  # after the window, for late events with ts inside it
    rate: int  # viewers connected per second (in steps of 0.1 s)
    per_process: int  # viewers per load client process
    profile: bool = False  # py-spy the serving process during the window
    app_dir: Path | None = None  # the app's tree (default: this working tree)


def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


def run_one(kind: str, viewers: int, p: Params, scratch: Path, round_no: int) -> dict:
    logs = scratch / "logs"
    home = scratch / "home"
    logs.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    out: dict = {"server": kind, "viewers": viewers, "round": round_no,
                 "load_before": [round(x, 2) for x in os.getloadavg()]}
    server = Server(kind, logs, home, **({"app_dir": p.app_dir} if p.app_dir else {}))
    group: ClientGroup | None = None
    profiler: subprocess.Popen | None = None
    try:
        server.start()
        out["port"] = server.port
        # Idle: the first part lets start-up work finish, the rest is measured.
        time.sleep(min(1.0, p.idle / 2))
        c0, m0 = server.cpu_seconds(), time.monotonic()
        time.sleep(max(0.1, p.idle - min(1.0, p.idle / 2)))
        out["idle_cpu_percent"] = round(100 * (server.cpu_seconds() - c0) / (time.monotonic() - m0), 3)
        idle_rss = server.rss()
        out["idle_rss_mb"] = round(idle_rss / 2**20, 2)

        group = ClientGroup(server.port, viewers, p.per_process, p.rate, logs)
        group.start()
        conn = group.wait_connected(timeout=viewers / p.rate + 60)
        out["connect"] = conn
        time.sleep(p.settle)

        t0 = time.time() + 0.3
        t1 = t0 + p.seconds
        group.measure(t0, t1, p.grace)
        if p.profile and kind == "ours":
            profiler = profiler_mod.start(server.worker_pid(), p.seconds,
                                          scratch / f"profile-ours-{viewers}-r{round_no}", 250, ["--nonblocking"])
        _sleep_until(t0)
        cpu0, mono0 = server.cpu_seconds(), time.monotonic()
        rss_samples = []
        while time.time() < t1 - 0.05:  # bounded by the window's end
            time.sleep(min(1.0, max(0.0, t1 - time.time())))
            rss_samples.append(server.rss())
        cpu1, mono1 = server.cpu_seconds(), time.monotonic()
        rss = statistics.median(rss_samples) if rss_samples else server.rss()
        out["server_cpu_percent"] = round(100 * (cpu1 - cpu0) / (mono1 - mono0), 3)
        out["rss_mb"] = round(rss / 2**20, 2)
        out["rss_per_viewer_kib"] = round((rss - idle_rss) / max(1, viewers) / 1024, 3)
        out["server_threads"] = server.threads()
        out["server_alive"] = server.proc.poll() is None
        out.update(group.results(timeout=p.grace + 60))
        # Share of (viewer, event) pairs delivered. Only where one source numbers
        # the events for everyone: the naive server counts per viewer.
        out["events_per_viewer_s_window"] = out["events_per_viewer_s"]
        if kind != "naive" and out["ticks"] and out["viewers_connected"]:
            out["delivered"] = round(out["events"] / (out["viewers_connected"] * out["ticks"]), 5)
            # Rate of the source itself, from the first and last event's ts in the
            # window: a window of S seconds holds S or S+1 ticks, depending on phase.
            span = out["window_ts"][1] - out["window_ts"][0] if out["window_ts"] else 0
            out["source_hz"] = round((out["ticks"] - 1) / span, 4) if out["ticks"] > 1 and span > 0 else None
            if out["source_hz"]:
                out["events_per_viewer_s"] = round(out["delivered"] * out["source_hz"], 4)
        else:
            out["delivered"] = None
        if profiler is not None:
            out["profile"] = profiler_mod.finish(profiler)
    except (ClientError, RuntimeError, TimeoutError, OSError) as exc:
        out["failed"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if group is not None:
            group.stop()
        server.stop()
        profiler_mod.stop(profiler)
    return out
