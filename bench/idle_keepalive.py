"""What idle kept-alive connections cost one worker: RSS and CPU with N of them held open.

    python -m bench.idle_keepalive [--connections 2000] [--seconds 30] [--keepalive 100]

A router such as Heroku's Router 2.0 keeps its connections to the app open up
to 90 s idle, so the app's keepalive must be longer (100 s): then a worker
holds every connection the routers keep. This starts our server as the
Procfile does (bench/servers.py), measures its worker for a window with no
client (the sampler alone), then opens `--connections` connections, sends one
`GET /healthz` on each, reads the answer and leaves them idle, and measures
the same window again. It prints the worker's RSS and CPU (% of one core)
for both and the differences per connection, and one JSON object as the last
line. The connections all come from 127.0.0.1 (the per-address budget is
lifted by servers.py).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import psutil

from .servers import Server


def _open_idle(port: int, token: str, count: int) -> list[socket.socket]:
    """count connections, each after one answered request, kept open and idle."""
    request = (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += s.recv(65536)
        if b"connection: close" in head.lower():
            raise SystemExit("the server closed a kept-alive connection: is KEEPALIVE_SECONDS 0?")
        out.append(s)
    return out


def _window(worker: psutil.Process, seconds: float) -> tuple[int, float]:
    """(RSS at the end, CPU % of one core over the window) of the worker."""
    before = worker.cpu_times()
    time.sleep(seconds)
    after = worker.cpu_times()
    cpu = (after.user + after.system - before.user - before.system) / seconds * 100
    return worker.memory_info().rss, cpu


def _alive(sockets: list[socket.socket]) -> int:
    """How many of the idle connections the server still holds open (no EOF waiting)."""
    open_ = 0
    for s in sockets:
        s.setblocking(False)
        try:
            open_ += 0 if s.recv(1) == b"" else 1
        except BlockingIOError:
            open_ += 1
        except OSError:
            pass
    return open_


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--keepalive", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        server = Server("ours", home, home, env={"KEEPALIVE_SECONDS": str(args.keepalive)}).start()
        sockets: list[socket.socket] = []
        try:
            worker = psutil.Process(server.worker_pid())
            time.sleep(2)  # past the start
            rss0, cpu0 = _window(worker, args.seconds)
            sockets = _open_idle(server.port, server.token, args.connections)
            time.sleep(1)
            rss1, cpu1 = _window(worker, args.seconds)
            still = _alive(sockets)
        finally:
            for s in sockets:
                s.close()
            server.stop()
    n = args.connections
    result = {"connections": n, "keepalive": args.keepalive, "seconds": args.seconds,
              "still_open": still, "rss_idle_0": rss0, "rss_idle_n": rss1,
              "rss_per_connection": (rss1 - rss0) / n, "cpu_pct_0": round(cpu0, 3),
              "cpu_pct_n": round(cpu1, 3)}
    print(f"worker with no client:          RSS {rss0 / 2**20:7.1f} MiB  CPU {cpu0:5.2f} % of a core")
    print(f"worker with {n:,} idle kept-alive: RSS {rss1 / 2**20:7.1f} MiB  CPU {cpu1:5.2f} % of a core")
    print(f"per connection: {(rss1 - rss0) / n / 1024:.1f} KiB; {still:,} of {n:,} still open after "
          f"{args.seconds:g} s idle (keepalive {args.keepalive} s)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
