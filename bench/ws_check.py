"""Round trip to a Node `ws` echo server: the floor for the operator console.

Starts bench/node_ws_echo.js on a free loopback port, sends small JSON
messages one after another from one Python client (websocket-client) and
times each round trip. Prints one JSON object:

    python -m bench.ws_check --messages 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def unavailable() -> str | None:
    if shutil.which("node") is None:
        return "'node' is not installed"
    if not (BENCH / "node_modules" / "ws").is_dir():
        return "bench/node_modules is missing (bin/bench runs `npm ci --prefix bench`)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(messages: int = 2000, timeout: float = 10.0) -> dict:
    import websocket  # websocket-client, from requirements-dev.txt

    why = unavailable()
    if why:
        return {"skipped": why}
    port = _free_port()
    proc = subprocess.Popen(
        ["node", str(BENCH / "node_ws_echo.js"), str(port), "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        ws = None
        while ws is None:
            try:
                ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=timeout)
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        rtt: list[float] = []
        started = time.perf_counter()
        for i in range(messages):
            msg = json.dumps({"id": i, "cmd": "status"})
            t0 = time.perf_counter()
            ws.send(msg)
            echo = ws.recv()
            rtt.append((time.perf_counter() - t0) * 1000)
            if echo != msg:
                raise RuntimeError(f"echo differs: {echo!r} != {msg!r}")
        elapsed = time.perf_counter() - started
        ws.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    rtt.sort()
    return {
        "messages": messages,
        "rtt_ms_p50": round(statistics.median(rtt), 4),
        "rtt_ms_p99": round(rtt[min(len(rtt) - 1, int(len(rtt) * 0.99))], 4),
        "messages_per_s": round(messages / elapsed),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="round trip to a Node ws echo server")
    p.add_argument("--messages", type=int, default=2000)
    args = p.parse_args(argv)
    print(json.dumps(run(max(1, args.messages))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
