"""CPU time of one real sample: every collector, top processes included.

Builds the services the way the app does (`create_app` makes one
`Instance(app.config)` from the settings; nothing starts at construction)
and calls `svc.sampler.sample()` in a loop, timing each call with
`time.process_time()` (CPU of this process, not wall time). On the same
samples it weighs the metrics event's data in both forms: the plain JSON of
the sample (`plain_json`, what `to_json` sent before the compact form) and the
compact form (`dashboard.stream.wire.encode`), in bytes, as whole SSE frames
(`id:`, `event:`, `data:` lines) and in encode CPU time. Prints one JSON
object as the last line of stdout. Run it in its own process (the orchestrator does) so nothing else
counts against it:

    python -m bench.sampler_bench --samples 30 --spacing 0.25
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import sys
import tempfile
import time

# The compact form's goal: at most this share of the plain form's bytes.
WIRE_GOAL = 2 / 3
ENCODE_REPEATS = 20  # each encoding timed over this many runs (one is below the clock's grain)


def plain_json(payload) -> str:
    """The baseline: the metrics event's data before the compact form, exactly as
    `dashboard.stream.events.to_json` encoded the sample then."""
    try:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(payload), separators=(",", ":"), ensure_ascii=False)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def build_services(scratch: str):
    """The app's own Instance, configured as the benchmark runs the server."""
    import secrets

    from dashboard import create_app

    app = create_app({
        "SAMPLE_INTERVAL": 1.0,
        "LOG_LEVEL": "warning",
        # Settings that newer versions of the app require; ignored by older ones.
        "OPERATOR_TOKEN": secrets.token_urlsafe(16),
        "SECRET_KEY": secrets.token_urlsafe(16),
        "AUDIT_DB": os.path.join(scratch, "audit.sqlite3"),
        "DATA_DIR": os.path.join(scratch, "data"),
    })
    return app.extensions["dashboard"]


def measure(samples: int, spacing: float, warmup: int = 2) -> dict:
    try:
        from dashboard.stream.wire import encode
    except ImportError:  # an app from before the compact form: the plain form is what it sends
        encode = None
    with tempfile.TemporaryDirectory(prefix="bench-sampler-") as scratch:
        svc = build_services(scratch)
        try:
            return _measure(svc, encode or plain_json, samples, spacing, warmup, compact=encode)
        finally:
            svc.shutdown("benchmark finished")


def _timed(collectors, spent: dict):
    """The same collectors, each adding its CPU time to spent[name] (sampler untouched)."""
    out = []
    for c in collectors:
        def collect(rates, _fn=c.collect, _name=c.name):
            t = time.process_time()
            try:
                return _fn(rates)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - t
        out.append(dataclasses.replace(c, collect=collect))
    return tuple(out)


def _measure(svc, to_json, samples: int, spacing: float, warmup: int, compact=None) -> dict:
    sampler = svc.sampler
    spent: dict[str, float] = {}
    try:
        sampler.collectors = _timed(sampler.collectors, spent)
    except (TypeError, AttributeError):  # collectors of another shape: no breakdown
        pass
    for _ in range(warmup):  # first samples prime rates and per-process CPU counters
        sampler.sample()
        time.sleep(spacing)
    spent.clear()
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    encode_ms: list[float] = []
    size = 0
    sample: dict = {}
    taken: list[dict] = []
    for _ in range(samples):
        c0, w0 = time.process_time(), time.perf_counter()
        sample = sampler.sample()
        c1, w1 = time.process_time(), time.perf_counter()
        data = to_json(sample)  # what on_sample does next, once per sample
        c2 = time.process_time()
        cpu_ms.append((c1 - c0) * 1000)
        wall_ms.append((w1 - w0) * 1000)
        encode_ms.append((c2 - c1) * 1000)
        size = len(data.encode())
        taken.append(sample)
        time.sleep(spacing)
    mean_cpu = statistics.fmean(cpu_ms)
    mean_encode = statistics.fmean(encode_ms)
    return {
        "samples": samples,
        "spacing_s": spacing,
        "cpu_ms_mean": round(mean_cpu, 3),
        "cpu_ms_p50": round(statistics.median(cpu_ms), 3),
        "cpu_ms_min": round(min(cpu_ms), 3),
        "cpu_ms_max": round(max(cpu_ms), 3),
        "wall_ms_p50": round(statistics.median(wall_ms), 3),
        "encode_cpu_ms_mean": round(mean_encode, 3),
        # At 1 Hz a sample costs mean_cpu ms of every 1000 ms.
        "core_percent_at_1hz": round(mean_cpu / 10.0, 3),
        "core_percent_at_1hz_with_encode": round((mean_cpu + mean_encode) / 10.0, 3),
        "sample_bytes": size,
        "collectors": [c.name for c in sampler.collectors],
        # Mean CPU ms per sample of each collector, most expensive first.
        "collector_cpu_ms": {name: round(1000 * t / samples, 3)
                             for name, t in sorted(spent.items(), key=lambda kv: -kv[1])},
        "missing": sample.get("missing", {}),
        "processes_on_host": _count_processes(),
        "wire": wire_figures(taken, compact) if compact else None,
    }


def _cpu_ms(fn, sample) -> float:
    t = time.process_time()
    for _ in range(ENCODE_REPEATS):
        fn(sample)
    return (time.process_time() - t) * 1000 / ENCODE_REPEATS


def _frame_bytes(sample: dict, data: str) -> int:
    """A whole SSE frame of this event: id, event and data lines, as the hub frames it."""
    from dashboard.stream import sse

    ms = int(float(sample.get("ts") or time.time()) * 1000)
    return len(sse.frame(data, event="metrics", id=f"{ms}-0"))


def wire_figures(samples: list[dict], encode) -> dict:
    """Both forms of the metrics event's data, on the same real samples: bytes,
    whole SSE frames, encode CPU, and whether the compact one meets its goal."""
    old_bytes, new_bytes, old_frames, new_frames, old_ms, new_ms, ratios = [], [], [], [], [], [], []
    for sample in samples:
        old, new = plain_json(sample), encode(sample)
        old_bytes.append(len(old.encode()))
        new_bytes.append(len(new.encode()))
        old_frames.append(_frame_bytes(sample, old))
        new_frames.append(_frame_bytes(sample, new))
        old_ms.append(_cpu_ms(plain_json, sample))
        new_ms.append(_cpu_ms(encode, sample))
        ratios.append(new_bytes[-1] / old_bytes[-1])
    ratio = sum(new_bytes) / sum(old_bytes)
    return {
        "samples": len(samples),
        "old_bytes_mean": round(statistics.fmean(old_bytes), 1),
        "new_bytes_mean": round(statistics.fmean(new_bytes), 1),
        "old_frame_bytes_mean": round(statistics.fmean(old_frames), 1),
        "new_frame_bytes_mean": round(statistics.fmean(new_frames), 1),
        # Bytes of the compact form over bytes of the plain one, all samples together.
        "ratio": round(ratio, 3),
        "ratio_min": round(min(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "frame_ratio": round(sum(new_frames) / sum(old_frames), 3),
        "old_encode_cpu_ms_mean": round(statistics.fmean(old_ms), 4),
        "new_encode_cpu_ms_mean": round(statistics.fmean(new_ms), 4),
        "goal": "new <= 2/3 of old",
        # Every sample of the run within the goal, not only their sum.
        "pass": max(ratios) <= WIRE_GOAL,
    }


def _count_processes() -> int:
    import psutil

    return len(psutil.pids())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="CPU time per sample of the real sampler")
    p.add_argument("--samples", type=int, default=30)
    p.add_argument("--spacing", type=float, default=0.25)
    args = p.parse_args(argv)
    print(json.dumps(measure(max(1, args.samples), max(0.0, args.spacing))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
