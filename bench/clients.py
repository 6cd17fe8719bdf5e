"""Several load client processes driven as one: connect, measure, collect.

One process holds at most `per_process` viewers, so the viewers' CPU spreads
over the cores and no process nears the open-files limit (20,000 here).
"""

from __future__ import annotations

import math
from pathlib import Path

from .children import ChildError, Children
from .histogram import merge
from .sse_viewer import DELAY


# The error the groups raise (a client did not answer in time, or exited).
ClientError = ChildError


class ClientGroup:
    """`viewers` viewers over as few load client processes as `per_process` allows."""

    def __init__(self, port: int, viewers: int, per_process: int, rate: int, log_dir: Path) -> None:
        self.port = port
        self.viewers = viewers
        n = max(1, math.ceil(viewers / per_process))
        self.shares = [viewers // n + (1 if i < viewers % n else 0) for i in range(n)]
        # `rate` viewers per second in total, opened in steps of 0.1 s.
        self.batch = max(1, round(rate / 10 / n))
        self.log_dir = log_dir
        self.children = Children("clients", f" (see {log_dir})")

    def start(self) -> None:
        for i, share in enumerate(self.shares):
            self.children.spawn("load_client", ["--port", str(self.port), "--viewers", str(share),
                                                "--batch", str(self.batch), "--every", "0.1"],
                                self.log_dir / f"client-{self.port}-{i}.log")

    def wait_connected(self, timeout: float) -> dict:
        msgs = self.children.read("connected", timeout)
        errors: dict[str, int] = {}
        for m in msgs:
            for k, v in m["errors"].items():
                errors[k] = errors.get(k, 0) + v
        return {
            "connected": sum(m["connected"] for m in msgs),
            "errors": errors,
            "seconds": max(m["seconds"] for m in msgs),
        }

    def measure(self, start: float, end: float, grace: float) -> None:
        self.children.send({"cmd": "measure", "start": start, "end": end, "grace": grace})

    def results(self, timeout: float) -> dict:
        return combine(self.children.read("result", timeout))

    def stop(self) -> None:
        self.children.stop(10.0)


def combine(msgs: list[dict]) -> dict:
    """Merge several client processes' results into one run's figures."""
    hist = merge(m["hist"] for m in msgs)
    t0, t1 = msgs[0]["window"]
    connected = sum(m["connected"] for m in msgs)
    events = sum(m["events"] for m in msgs)
    errors: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for m in msgs:
        for k, v in m["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in m["disconnect_reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    return {
        "viewers_wanted": sum(m["wanted"] for m in msgs),
        "viewers_connected": connected,
        "open_at_end": sum(m["open_at_end"] for m in msgs),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "disconnects": sum(m["disconnects"] for m in msgs),
        "disconnect_reasons": reasons,
        "window_seconds": round(t1 - t0, 3),
        "events": events,
        # Events received per viewer per second of window. For a shared 1 Hz
        # source this reads 0.95 or 1.05 when a tick sits at a window edge;
        # run.py replaces it with delivered x the source's measured rate.
        "events_per_viewer_s": round(events / max(1, connected) / (t1 - t0), 4),
        "events_per_viewer_min": min(m["events_per_viewer_min"] for m in msgs),
        "events_per_viewer_max": max(m["events_per_viewer_max"] for m in msgs),
        "gaps": sum(m["gaps"] for m in msgs),
        # Events published in the window (a shared source numbers them once).
        "ticks": len(set().union(*(m["window_seqs"] for m in msgs))),
        "window_ts": [min(m["window_ts"][0] for m in msgs if m["window_ts"]),
                      max(m["window_ts"][1] for m in msgs if m["window_ts"])]
        if any(m["window_ts"] for m in msgs) else None,
        "other_events": sum(m["other_events"] for m in msgs),
        "event_bytes_mean": round(sum(m["event_bytes"] for m in msgs) / events) if events else None,
        "delay_p50_ms": DELAY.percentile(hist, 50),
        "delay_p90_ms": DELAY.percentile(hist, 90),
        "delay_p99_ms": DELAY.percentile(hist, 99),
        "delay_max_ms": DELAY.percentile(hist, 100),
        "client_processes": len(msgs),
        "client_cpu_percent_max": max(m["cpu_percent"] or 0 for m in msgs),
        "client_cpu_percent_sum": round(sum(m["cpu_percent"] or 0 for m in msgs), 2),
        "client_loop_lag_max_ms": max((m["loop_lag"]["max_ms"] or 0) for m in msgs),
        "connect_seconds": max(m["connect_seconds"] for m in msgs),
        "client_loop": msgs[0].get("loop"),
    }
