"""Lasting history, measured: what the store costs and how fast it answers.

Four figures, each on the real app (gunicorn + gevent, as the Procfile runs it)
or on the store through its own API:

- idle CPU of the worker at 1 Hz with the store on (HISTORY_STORE=1) and off,
  rounds alternating so drift on the machine hits both alike;
- bytes on disk per host per day of each roll-up tier and per stored point
  (one point = min, mean and max of one series over one step), and what the
  stored event buffer takes for HISTORY_SECONDS of samples;
- `/api/history` latency over a store holding 30 days of minute roll-ups and a
  year of hour roll-ups, for the 30-day, 7-day and 1-day windows;
- start-up time (process start to first sample served) with a full hour of
  stored events at 1 Hz, against an empty store.

    python -m bench.history_bench --idle-seconds 30 --rounds 2 --requests 200

Prints a table, then one JSON object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from .servers import Server

DAY = 86400


def _store_api():
    from dashboard.sampling.series import SERIES
    from dashboard.store.history_store import FILE_NAME, HistoryStore
    from dashboard.store.tiers import Point, default_tiers

    return SERIES, FILE_NAME, HistoryStore, Point, default_tiers


def _points(tier, host, days, now, Point, names):
    # Shaped like a host's series and rounded as the collectors round (storage_bench's generator):
    # uniform random floats at full precision would weigh what no host stores.
    from .storage_bench import make_points

    for ts, n, values in make_points(names, int(now), int(tier.step), int(days), int(tier.step), seed=7):
        yield tier, host, Point(ts, n, tuple(tuple(v) for v in values))


def _size(path: str) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    pages = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return pages


def fill(directory: Path, minute_days: float, hour_days: float, host: str) -> Path:
    SERIES, FILE_NAME, HistoryStore, Point, default_tiers = _store_api()
    tiers = default_tiers(30, 365)
    names = tuple(s.name for s in SERIES)
    store = HistoryStore(str(directory), tiers, names, 3600)
    now = time.time()
    items = []
    if minute_days:
        items += list(_points(tiers[0], host, minute_days, now, Point, names))
    if hour_days:
        items += list(_points(tiers[1], host, hour_days, now, Point, names))
    store.write_points(items)
    store.close()
    return directory / FILE_NAME


def disk_figures(scratch: Path) -> dict:
    SERIES, FILE_NAME, HistoryStore, Point, default_tiers = _store_api()
    width = len(SERIES)
    empty = _size(str(fill(scratch / "empty", 0, 0, "web-1")))
    out = {"series": width}
    for name, days, step, kw in (("minute", 30, 60, {"minute_days": 30, "hour_days": 0}),
                                 ("hour", 365, 3600, {"minute_days": 0, "hour_days": 365})):
        size = _size(str(fill(scratch / name, host="web-1", **kw))) - empty
        per_day = size / days
        points = days * DAY / step * width
        out[name] = {"days": days, "bytes": size, "bytes_per_day": round(per_day),
                     "bytes_per_point": round(size / points, 2)}
    # The event buffer: an hour of real-size samples at 1 Hz, each in the wire form the hub stores.
    from dashboard import create_app
    from dashboard.stream.wire import encode

    app = create_app({"LOG_LEVEL": "warning", "OPERATOR_TOKEN": "x", "SECRET_KEY": "x",
                      "DATA_DIR": str(scratch / "probe"), "AUDIT_DB": str(scratch / "probe.sqlite3")})
    svc = app.extensions["dashboard"]
    svc.sampler.sample()
    sample_json = encode(svc.sampler.sample())
    svc.shutdown("probe")
    events = HistoryStore(str(scratch / "events"), default_tiers(30, 365), tuple(s.name for s in SERIES), 3600)
    ms = int(time.time() * 1000) - 3600_000
    for i in range(3600):
        events.add_event((ms + i * 1000, 0), "metrics", sample_json)
    events.flush()
    events.close()
    size = _size(str(scratch / "events" / FILE_NAME)) - empty
    out["events"] = {"seconds": 3600, "bytes": size, "sample_bytes": len(sample_json),
                     "bytes_per_sample": round(size / 3600)}
    return out


def idle_cpu(scratch: Path, seconds: float, rounds: int, warmup: float) -> dict:
    runs = []
    for rnd in range(rounds):
        for store in (("1", "0") if rnd % 2 == 0 else ("0", "1")):
            home = scratch / f"idle-{rnd}-{store}"
            home.mkdir(parents=True)
            server = Server("ours", scratch, home, env={"HISTORY_STORE": store, "SAMPLE_INTERVAL": "1",
                                                         "LOG_LEVEL": "warning"}).start()
            try:
                worker = psutil.Process(server.worker_pid())
                time.sleep(warmup)
                t0, c0 = time.monotonic(), sum(worker.cpu_times()[:2])
                time.sleep(seconds)
                t1, c1 = time.monotonic(), sum(worker.cpu_times()[:2])
                runs.append({"store": store == "1", "round": rnd + 1,
                             "cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 3)})
            finally:
                server.stop()
    on = [r["cpu_percent"] for r in runs if r["store"]]
    off = [r["cpu_percent"] for r in runs if not r["store"]]
    on_m, off_m = statistics.median(on), statistics.median(off)
    return {"seconds": seconds, "rounds": rounds, "runs": runs, "on_median": on_m, "off_median": off_m,
            "on_min": min(on), "on_max": max(on), "off_min": min(off), "off_max": max(off),
            "extra_percent": round(100 * (on_m - off_m) / off_m, 1) if off_m else None}


def _get(url: str, token: str) -> tuple[float, int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return (time.perf_counter() - t) * 1000, len(body), json.loads(body)


def history_latency(scratch: Path, requests: int) -> dict:
    home = scratch / "api"
    home.mkdir()
    server = Server("ours", scratch, home, env={"HOST_NAME": "web-1", "LOG_LEVEL": "warning"})
    fill(home / f"data-{server.port}", 30, 365, "web-1")
    server.start()
    out = {"requests": requests}
    try:
        for label, seconds in (("30d", 30 * DAY), ("7d", 7 * DAY), ("1d", DAY)):
            url = f"http://127.0.0.1:{server.port}/api/history?seconds={seconds}"
            for _ in range(5):
                _get(url, server.token)
            times = []
            for _ in range(requests):
                ms, size, body = _get(url, server.token)
                times.append(ms)
            times.sort()
            out[label] = {"tier": body["tier"], "step": body["step"], "points": len(body["columns"]["ts"]),
                          "stored_points_read": body["count"], "bytes": size,
                          "p50_ms": round(times[len(times) // 2], 2),
                          "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)}
    finally:
        server.stop()
    # The same 30 days merged from minute points (43,200 read) instead of hour points,
    # in process: what the answer would cost if served from the finer tier.
    SERIES, FILE_NAME, HistoryStore, Point, default_tiers = _store_api()
    from dashboard.stream.windows import Windows

    tiers = default_tiers(30, 365)
    store = HistoryStore(str(home / f"data-{server.port}"), tiers, tuple(s.name for s in SERIES), 3600)
    windows = Windows(3600, tiers, store)
    now = time.time()
    times = []
    for _ in range(max(10, requests // 10)):
        t = time.perf_counter()
        windows.rolled("web-1", tiers[0], 22, now - 30 * DAY, now)
        times.append((time.perf_counter() - t) * 1000)
    store.close()
    out["30d_from_minutes_in_process"] = {"p50_ms": round(statistics.median(times), 2),
                                          "max_ms": round(max(times), 2), "stored_points_read": 43200}
    return out


def startup(scratch: Path, rounds: int) -> dict:
    SERIES, FILE_NAME, HistoryStore, Point, default_tiers = _store_api()
    from dashboard import create_app

    app = create_app({"LOG_LEVEL": "warning", "OPERATOR_TOKEN": "x", "SECRET_KEY": "x",
                      "DATA_DIR": str(scratch / "probe2"), "AUDIT_DB": str(scratch / "probe2.sqlite3")})
    svc = app.extensions["dashboard"]
    svc.sampler.sample()
    sample = svc.sampler.sample()
    svc.shutdown("probe")
    out = {}
    for label, events in (("empty", 0), ("full_hour", 3600)):
        times = []
        for rnd in range(rounds):
            home = scratch / f"start-{label}-{rnd}"
            home.mkdir()
            server = Server("ours", scratch, home, env={"LOG_LEVEL": "info", "HOST_NAME": "web-1"})
            if events:
                store = HistoryStore(str(home / f"data-{server.port}"), default_tiers(30, 365),
                                     tuple(s.name for s in SERIES), 3600)
                now = time.time()
                for i in range(events):
                    s = {**sample, "ts": now - events + i, "seq": i + 1}
                    store.add_event((int(s["ts"] * 1000), 0), "metrics", json.dumps(s, separators=(",", ":")))
                store.close()
            t = time.monotonic()
            server.start()
            times.append(time.monotonic() - t)
            restored = [ln for ln in server.log().splitlines() if "restored" in ln]
            server.stop()
            if events and not restored:
                raise RuntimeError(f"the server did not restore its events: {server.log()[-1000:]}")
        out[label] = {"events": events, "median_s": round(statistics.median(times), 3),
                      "min_s": round(min(times), 3), "max_s": round(max(times), 3)}
    return out


def render(r: dict) -> str:
    idle, disk, api, start = r["idle"], r["disk"], r["api"], r["startup"]
    lines = [
        "Lasting history",
        f"  idle worker CPU at 1 Hz, % of a core, median of {idle['rounds']} x {idle['seconds']:g} s: "
        f"store on {idle['on_median']} ({idle['on_min']}-{idle['on_max']}), off {idle['off_median']} "
        f"({idle['off_min']}-{idle['off_max']}): "
        # None when the store-off run measured 0 (CPU comes in 10 ms ticks: short idle windows)
        + (f"{idle['extra_percent']:+}%" if idle["extra_percent"] is not None else "not comparable (off measured 0)")
        + " (target at most +10%)",
        f"  disk, one host, {disk['series']} series: minute tier {disk['minute']['bytes_per_day'] / 1e3:.0f} kB/day "
        f"({disk['minute']['bytes_per_point']} B/point; Netdata ~6), hour tier "
        f"{disk['hour']['bytes_per_day'] / 1e3:.1f} kB/day ({disk['hour']['bytes_per_point']} B/point; Netdata ~18); "
        f"event buffer {disk['events']['bytes'] / 1e6:.1f} MB for an hour at 1 Hz "
        f"({disk['events']['bytes_per_sample']} B/sample)",
    ]
    for label in ("30d", "7d", "1d"):
        a = api[label]
        lines.append(f"  /api/history {label}: {a['tier']} tier, step {a['step']} s, {a['points']} points "
                     f"({a['stored_points_read']} read), p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms"
                     + (" (target p99 < 50 ms)" if label == "30d" else ""))
    m = api["30d_from_minutes_in_process"]
    lines.append(f"  30 days merged from 43,200 minute points, in process: p50 {m['p50_ms']} ms, max {m['max_ms']} ms")
    lines.append(f"  start-up to first sample: empty store {start['empty']['median_s']} s, "
                 f"an hour of events {start['full_hour']['median_s']} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="lasting history: CPU, disk, latency, start-up")
    p.add_argument("--idle-seconds", type=float, default=30)
    p.add_argument("--idle-warmup", type=float, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--requests", type=int, default=200)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        scratch = Path(tmp)
        result = {
            "disk": disk_figures(scratch),
            "api": history_latency(scratch, args.requests),
            "startup": startup(scratch, args.rounds),
            "idle": idle_cpu(scratch, args.idle_seconds, args.rounds, args.idle_warmup),
        }
    print(render(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
