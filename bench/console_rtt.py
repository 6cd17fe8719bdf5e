"""One console client's round trips: sequential requests over one websocket-client
connection, timed one by one (`python -m bench.console_client rtt`).

Send `{"id": n, "line": "status"}`, then read frames until the one carrying
id n (pushes have a `type` and no id and are skipped). Every frame read is
decoded with `json.loads`, from our server and from the echo server alike. A
warm-up of `warmup` requests runs first and is not counted.
"""

from __future__ import annotations

import json
import math
import statistics
import time

from .client_process import cpu_seconds


def exact_percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    rank = max(1, math.ceil(q / 100.0 * len(sorted_ms)))
    return sorted_ms[rank - 1]


def request(n: int, line: str) -> str:
    return json.dumps({"id": n, "line": line})


def rtt(url: str, token: str | None, messages: int, warmup: int, line: str = "status",
        expect: str = "ok", timeout: float = 10.0) -> dict:
    import websocket  # websocket-client (requirements-dev.txt)

    header = [f"Authorization: Bearer {token}"] if token else []
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = websocket.create_connection(url, header=header, timeout=timeout,
                                             enable_multithread=False)
            break
        except (OSError, websocket.WebSocketException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    pushes = 0
    if expect == "ok":
        hello = json.loads(ws.recv())
        if hello.get("type") != "welcome":
            raise RuntimeError(f"expected the welcome push first, got {str(hello)[:200]}")
    errors: dict[str, int] = {}

    def one(n: int) -> float:
        nonlocal pushes
        msg = request(n, line)
        t0 = time.perf_counter()
        ws.send(msg)
        while True:
            frame = json.loads(ws.recv())
            if frame.get("id") == n:
                break
            if "type" in frame and "id" not in frame:
                pushes += 1
                continue
            raise RuntimeError(f"reply to another request: {str(frame)[:200]}")
        took = (time.perf_counter() - t0) * 1000.0
        if expect == "ok" and frame.get("ok") is not True:
            code = (frame.get("error") or {}).get("code", "?")
            errors[code] = errors.get(code, 0) + 1
        elif expect == "echo" and frame != {"id": n, "line": line}:
            errors["echo_differs"] = errors.get("echo_differs", 0) + 1
        return took

    for i in range(warmup):
        one(-1 - i)
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    times = [one(i) for i in range(messages)]
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu0
    ws.close()
    times.sort()
    return {
        "messages": messages,
        "warmup": warmup,
        "rtt_ms_p50": round(statistics.median(times), 4),
        "rtt_ms_p90": round(exact_percentile(times, 90), 4),
        "rtt_ms_p99": round(exact_percentile(times, 99), 4),
        "rtt_ms_max": round(times[-1], 4),
        "rtt_ms_mean": round(statistics.fmean(times), 4),
        "messages_per_s": round(messages / elapsed),
        "client_cpu_percent": round(100.0 * cpu / elapsed, 1),
        "client_cpu_us_per_request": round(cpu / messages * 1e6, 1),
        "pushes_skipped": pushes,
        "errors": sum(errors.values()),
        "error_kinds": errors,
    }
