"""Round trip to a Node `ws` echo server: the floor for the operator console.

Starts bench/node_ws_echo.js on a free loopback port and times sequential
round trips from one Python client, with the same code the console benchmark
uses for our server and for this floor (console_rtt.rtt: websocket-client,
`{"id": n, "line": "status"}` frames, each frame read decoded as JSON).
`python -m bench` measures this floor in every console round
(console_bench.py); this stand-alone check prints one JSON object:

    python -m bench.ws_check --messages 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .console_rtt import rtt
from .servers import Server, available


def unavailable() -> str | None:
    return available("echo")


def run(messages: int = 2000, warmup: int = 200) -> dict:
    why = unavailable()
    if why:
        return {"skipped": why}
    with tempfile.TemporaryDirectory(prefix="ws-check-") as tmp:
        server = Server("echo", Path(tmp), Path(tmp))
        try:
            server.start()
            return rtt(f"ws://127.0.0.1:{server.port}/", None, messages, warmup, expect="echo")
        finally:
            server.stop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="round trip to a Node ws echo server")
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    args = p.parse_args(argv)
    print(json.dumps(run(max(1, args.messages), max(0, args.warmup))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
