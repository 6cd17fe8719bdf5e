"""What lasting history costs in bytes, and how fast a month and a year read back, now and before.

From the real stores through their own API (SQLite file and a real redis-server),
with the same data fed to both versions:

- bytes per series and step of each roll-up tier on disk (pages after VACUUM)
  and in Redis (MEMORY USAGE of the tier's keys);
- bytes per raw sample (an hour of real compact metrics events at 1 Hz) on
  disk and in the Redis stream;
- the raw hour as the defaults keep it: whole samples for RESUME_SECONDS and
  the charts' rows of the hour packed a minute at a time (before that split:
  an hour of whole samples), on disk and in Redis;
- Redis bytes per host with the defaults (30 days of minutes, a year of
  hours, the raw hour, the process table): MEMORY USAGE summed over every key;
- p99 of reading a 30-day and a 1-year window (the code /api/history runs,
  in process, without HTTP), from SQLite and from Redis.

`--app-ref REF` runs the same probe against the app as it was at a git ref
(extracted with `git archive`, nothing checked out), printed side by side.

    python -m bench.storage_bench --app-ref a370fea

The roll-ups are synthetic but shaped like a container's samples (cpu noisy,
memory and load smooth, swap constant, rates bursty; min and max rounded as
the collectors round, means as they come). Prints a table, then one JSON
object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAY = 86400
SHAPES = {"cpu": (30, 0.5, 8, 1), "memory": (60, 0.02, 0.1, 1), "swap": (1.5, 0, 0, 1),
          "load1": (1.2, 0.02, 0.05, 2), "load5": (1.1, 0.01, 0.02, 2), "load15": (1.0, 0.005, 0.01, 2),
          "disk_read": (2e5, 2e3, 5e4, 0), "disk_write": (8e5, 5e3, 2e5, 0), "net_rx": (3e6, 2e4, 8e5, 0),
          "net_tx": (1e6, 1e4, 3e5, 0), "container_cpu": (20, 0.5, 6, 1), "container_memory": (45, 0.02, 0.1, 1)}


def make_points(names, now: int, step: int, days: int, samples: int, seed: int) -> list:
    """[ts, n, [[min, mean, max] | None, ...]] per step: a level that wanders, and the
    spread of `samples` noisy samples around it."""
    rnd = random.Random(seed)
    level = [SHAPES.get(n, (10, 0.1, 1, 1))[0] for n in names]
    out = []
    for ts in range((now - days * DAY) // step * step, now // step * step, step):
        values = []
        for j, name in enumerate(names):
            typical, wander, noise, decimals = SHAPES.get(name, (10, 0.1, 1, 1))
            level[j] = max(0.0, level[j] + rnd.gauss(0, wander * samples ** 0.5) + 0.001 * (typical - level[j]))
            spread = [abs(rnd.gauss(0, noise)) * 2.5 for _ in range(2)]
            low = round(max(0.0, level[j] - spread[0]), decimals)
            high = round(level[j] + spread[1], decimals)
            # The mean of `samples` values rounded as the collectors round: an exact decimal sum
            # over the count, as the sampler's roll-ups give it.
            units = round((level[j] + rnd.gauss(0, noise / samples ** 0.5)) * samples * 10 ** decimals)
            units = min(round(high * 10 ** decimals) * samples, max(round(low * 10 ** decimals) * samples, units))
            values.append([low, units / (10 ** decimals * samples), high])  # one rounding: the float nearest
        out.append([ts, samples, values])
    return out


def make_events(count: int) -> list[str]:
    """An hour of real metrics events: this machine's sample, its numbers moved a little each second."""
    from dashboard import create_app
    from dashboard.stream import wire

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"LOG_LEVEL": "warning", "OPERATOR_TOKEN": "x", "SECRET_KEY": "x",
                          "DATA_DIR": f"{tmp}/d", "AUDIT_DB": f"{tmp}/a.sqlite3"})
        svc = app.extensions["dashboard"]
        svc.sampler.sample()
        time.sleep(0.5)
        sample = svc.sampler.sample()
        procs = json.dumps(svc.processes.rows(svc.processes.latest), separators=(",", ":"))
        svc.shutdown("probe")
    rnd = random.Random(5)
    now = time.time()
    out = []
    for i in range(count):
        s = json.loads(json.dumps(sample))
        s["ts"], s["seq"] = now - count + i, i + 1
        out.append(wire.encode(_moved(s, rnd)))
    return out, procs


def _moved(value, rnd: random.Random, key: str = ""):
    """Every measurement moved (floats: rates, percentages; large ints: bytes, rss); ids,
    counts, names and the clock as they are. More change from one second to the next than
    a real host shows, where most totals and most processes' numbers stay put."""
    if isinstance(value, dict):
        return {k: v if k in ("ts", "seq") else _moved(v, rnd, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, rnd, key) for v in value]
    if isinstance(value, float):
        return round(value * rnd.uniform(0.5, 1.5) + rnd.uniform(0, 1), 1)
    if isinstance(value, int) and not isinstance(value, bool) and value > 1000 and key != "pid":
        return int(value * rnd.uniform(0.99, 1.01))
    return value


# ---- the probe: runs against whichever `dashboard` package is importable ----------------

def _pages(path: str) -> int:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("VACUUM")
    size = db.execute("PRAGMA page_count").fetchone()[0] * db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    return size


def _timed(fn, rounds: int) -> dict:
    """The first call (nothing cached yet), then p50 and p99 of `rounds` more."""
    times = []
    for _ in range(rounds + 1):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    first, times = times[0], sorted(times[1:])
    return {"first": round(first, 2), "p50": round(times[len(times) // 2], 2),
            "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2)}


def _mean_error(store, items: dict, by_step: dict) -> float:
    """The largest difference between a mean written and the mean read back, over every point
    of every tier (min, max and count are checked equal: a difference there is an error)."""
    worst = 0.0
    for step, rows in items.items():
        written = {p.ts: p for _t, _h, p in rows}
        read = store.points(by_step[int(step)], "web-1", min(written), max(written))
        assert len(read) >= 0.99 * len(written)  # the oldest may have passed the retention
        for got in read:
            want = written[got.ts]
            assert got.n == want.n
            for g, w in zip(got.values, want.values):
                if w is not None:
                    assert (g[0], g[2]) == (w[0], w[2])
                    worst = max(worst, abs(g[1] - w[1]))
    return worst


def _reads(store, tiers, now: float, rounds: int) -> dict:
    from dashboard.stream.windows import Windows

    windows = Windows(3600, tiers, store)
    out = {}
    for label, seconds in (("30d", 30 * DAY), ("1y", 365 * DAY)):
        tier, k = windows.choose(seconds, now, now, 1.0)
        out[label] = _timed(lambda: windows.rolled("web-1", tier, k, now - seconds, now), rounds)
    return out


def probe(data: dict, scratch: Path, redis_url: str, rounds: int) -> dict:
    from dashboard.store.history_store import HistoryStore
    from dashboard.store.redis_store import RedisStore
    from dashboard.store.redis_tiers import RedisTiers
    from dashboard.store.tiers import Point, default_tiers

    names, tiers, now = tuple(data["names"]), default_tiers(30, 365), data["now"]
    by_step = {t.step: t for t in tiers}
    items = {step: [(by_step[int(step)], "web-1", Point(ts, n, tuple(None if v is None else tuple(v) for v in values)))
                    for ts, n, values in rows] for step, rows in data["points"].items()}
    out = {"series": len(names), "disk": {}, "redis": {}}
    empty = _pages(HistoryStore(str(scratch / "empty"), tiers, names, 3600).path)
    for step, rows in items.items():
        store = HistoryStore(str(scratch / f"tier-{step}"), tiers, names, 3600)
        store.write_points(rows)
        store.close()
        out["disk"][by_step[int(step)].name] = round((_pages(store.path) - empty) / len(rows) / len(names), 2)
    events = HistoryStore(str(scratch / "events"), tiers, names, 7200)
    ms = int(time.time() * 1000) - 3600_000
    for i, data_ in enumerate(data["events"]):
        events.add_event((ms + i * 1000, 0), "metrics", data_)
    events.close()
    out["disk"]["raw_sample"] = round((_pages(events.path) - empty) / len(data["events"]))
    # The raw hour as the defaults keep it: whole samples for RESUME_SECONDS, and (once split)
    # the charts' rows of the hour a minute to a blob.
    split, resume = _split()
    kept = data["events"][-resume:] if split else data["events"]
    hour = HistoryStore(str(scratch / "hour"), tiers, names, 7200)
    for i, data_ in enumerate(kept):
        hour.add_event((ms + (len(data["events"]) - len(kept) + i) * 1000, 0), "metrics", data_)
    minutes = _minutes(data["events"]) if split else []
    for start, blob in minutes:
        hour.add_minute("web-1", start, blob)
    hour.close()
    out["disk"]["raw_hour"] = _pages(hour.path) - empty
    full = HistoryStore(str(scratch / "full"), tiers, names, 3600)
    full.write_points([i for rows in items.values() for i in rows])
    out["disk"]["reads_ms"] = _reads(full, tiers, now, rounds)
    out["disk"]["mean_error"] = _mean_error(full, items, by_step)
    full.close()

    store = RedisStore(redis_url, "bench", history_seconds=3600)
    store.binary.flushdb()
    rtiers = RedisTiers(store, tiers, names)
    for step, rows in items.items():
        rtiers.write_points(rows)
        used = sum(store.binary.memory_usage(k, samples=0) or 0 for k in store.binary.scan_iter(f"bench:*:{step}:*"))
        out["redis"][by_step[int(step)].name] = round(used / len(rows) / len(names), 2)
    for data_ in data["events"]:  # a whole hour of whole samples, for the bytes of one
        store.add_sample("raw-1", data_, None, {"interval": 1})
    out["redis"]["raw_sample"] = round(store.binary.memory_usage(store.stream("raw-1"), samples=0) / len(data["events"]))
    store.binary.delete(store.stream("raw-1"))
    store.binary.hdel(store.key("hosts"), "raw-1")
    for i, data_ in enumerate(kept):
        store.add_sample("web-1", data_, data["procs"] if i == len(kept) - 1 else None, {"interval": 1})
    if minutes:
        from dashboard.store.redis_minutes import RedisMinutes

        RedisMinutes(store).add("web-1", minutes)
    hour_keys = [store.stream("web-1")] + ([store.minutes_key("web-1")] if split else [])
    out["redis"]["raw_hour"] = sum(store.binary.memory_usage(k, samples=0) or 0 for k in hour_keys)
    out["redis"]["host_bytes"] = sum(store.binary.memory_usage(k, samples=0) or 0 for k in store.binary.scan_iter("bench:*"))
    out["redis"]["reads_ms"] = _reads(rtiers, tiers, now, rounds)
    rtiers.close()
    store.binary.flushdb()
    store.close()
    return out


def _split() -> tuple[bool, int]:
    """Whether this version keeps the raw hour split, and for how long it keeps whole samples."""
    from dashboard.settings import SETTINGS

    resume = next((s.default for s in SETTINGS if s.name == "RESUME_SECONDS"), None)
    return resume is not None, int(resume or 3600)


def _minutes(events: list[str]) -> list[tuple[int, bytes]]:
    """The hour's chart rows, packed a minute at a time the way the sampler's publisher packs them."""
    from dashboard.store import chart_minutes
    from dashboard.stream import wire
    from dashboard.stream.history import Minutes

    gather = Minutes(keep=120)
    for data_ in events:
        gather.add(wire.decode(data_))
    return [(start, chart_minutes.encode(rows)) for start, rows in gather.unfinished()]


# ---- running it, now and at a ref ---------------------------------------------------------

def _redis(scratch: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", str(scratch / "redis.pid"), "--dir", str(scratch)], check=True)
    for _ in range(200):
        if (scratch / "redis.pid").exists() and (scratch / "redis.pid").read_text().strip():
            break
        time.sleep(0.05)
    return f"redis://127.0.0.1:{port}/0", int((scratch / "redis.pid").read_text())


def at_ref(ref: str, data_file: Path, scratch: Path, redis_url: str, rounds: int) -> dict:
    """The probe run against the app at ref: its `dashboard` package first on the path."""
    tree = scratch / "ref"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", ref, "dashboard"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    run = subprocess.run([sys.executable, __file__, "--probe", str(data_file), "--redis", redis_url,
                          "--rounds", str(rounds)], env=env, cwd=str(tree), check=True, capture_output=True, text=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def render(now: dict, before: dict | None) -> str:
    def pair(path):
        def get(d):
            for p in path:
                d = d[p]
            return d
        return f"{get(now)}" + ("" if before is None else f" (before {get(before)})")

    return "\n".join([
        f"Lasting history storage, {now['series']} series",
        f"  disk, B per series and step: minute {pair(['disk', 'minute'])}, hour {pair(['disk', 'hour'])}",
        f"  Redis, B per series and step: minute {pair(['redis', 'minute'])}, hour {pair(['redis', 'hour'])}",
        f"  largest error of a mean read back from SQLite (min, max, count: exact): {pair(['disk', 'mean_error'])}",
        f"  B per raw sample: disk {pair(['disk', 'raw_sample'])}, Redis stream {pair(['redis', 'raw_sample'])}",
        f"  the raw hour with the defaults, B: disk {pair(['disk', 'raw_hour'])}, Redis {pair(['redis', 'raw_hour'])}",
        f"  Redis per host with the defaults (30 d minutes, 365 d hours, the raw hour, the process table): "
        f"{pair(['redis', 'host_bytes'])} B",
    ] + [f"  read ms, {store}, {label}: first {pair([key, 'reads_ms', label, 'first'])}, "
         f"p50 {pair([key, 'reads_ms', label, 'p50'])}, p99 {pair([key, 'reads_ms', label, 'p99'])}"
         for key, store in (("disk", "SQLite"), ("redis", "Redis")) for label in ("30d", "1y")])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="lasting history: bytes per point and per host, read p99")
    p.add_argument("--app-ref", help="also measure the app at this git ref (e.g. a370fea)")
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--probe", help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
            print(json.dumps(probe(json.loads(Path(args.probe).read_text()), Path(tmp), args.redis, args.rounds)))
        return 0
    from dashboard.sampling.series import SERIES

    names = [s.name for s in SERIES]
    now = int(time.time())
    events, procs = make_events(3600)
    data = {"names": names, "now": now, "events": events, "procs": procs,
            "points": {"60": make_points(names, now, 60, 30, 60, 1), "3600": make_points(names, now, 3600, 365, 3600, 2)}}
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        scratch = Path(tmp)
        data_file = scratch / "data.json"
        data_file.write_text(json.dumps(data))
        url, pid = _redis(scratch)
        try:
            (scratch / "now").mkdir()
            result = {"now": probe(data, scratch / "now", url, args.rounds)}
            result["before"] = at_ref(args.app_ref, data_file, scratch, url, args.rounds) if args.app_ref else None
            result["app_ref"] = args.app_ref
        finally:
            os.kill(pid, 15)
    print(render(result["now"], result["before"]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
