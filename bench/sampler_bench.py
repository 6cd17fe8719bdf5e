"""CPU time of one real sample: every collector, top processes included.

Builds the services the way the app does (`create_app` makes one
`Instance(app.config)` from the settings; nothing starts at construction)
and calls `svc.sampler.sample()` in a loop, timing each call with
`time.process_time()` (CPU of this process, not wall time). Prints one JSON
object as the last line of stdout. Run it in its own process (the orchestrator does) so nothing else
counts against it:

    python -m bench.sampler_bench --samples 30 --spacing 0.25
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time


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
    from dashboard.stream.events import to_json

    with tempfile.TemporaryDirectory(prefix="bench-sampler-") as scratch:
        svc = build_services(scratch)
        try:
            return _measure(svc, to_json, samples, spacing, warmup)
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


def _measure(svc, to_json, samples: int, spacing: float, warmup: int) -> dict:
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
    for _ in range(samples):
        c0, w0 = time.process_time(), time.perf_counter()
        sample = sampler.sample()
        c1, w1 = time.process_time(), time.perf_counter()
        data = to_json(sample)  # what on_sample does next, once per sample
        c2 = time.process_time()
        cpu_ms.append((c1 - c0) * 1000)
        wall_ms.append((w1 - w0) * 1000)
        encode_ms.append((c2 - c1) * 1000)
        size = len(data)
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
