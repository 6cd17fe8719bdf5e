"""What opening an event stream costs the server: CPU per 1,000 opens, ours beside Node.

    python -m bench.open_cost [--opens 2000] [--batch 100] [--rounds 3] [--servers ours,node]
    python -m bench.open_cost --servers ours,bare,node      # and the floor of our stack (bench/bare_wsgi.py)
    python -m bench.open_cost --servers ours --profile      # and where our time goes (py-spy)
    python -m bench.open_cost --servers ours --app-ref HEAD~1   # a change beside the app before it

Each round starts a fresh server, lets it settle and measures its idle CPU
rate (the sampler's, for ours) over a few seconds. Then it opens `opens`
streams, `batch` at a time, each one: connect, send the GET with the viewer's
token, read until the stream's `: connected` preamble has arrived. The streams
stay open (closing is not counted). The cost per open is the server's CPU
(its whole process tree) over the opening window, less the idle rate for the
same time, divided by the opens. Rounds alternate between the servers (the
order turning each round), so a busy spell on the machine falls on all; the report gives each server's
median and the ratio of the medians. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import statistics
import tempfile
import time
from pathlib import Path

from . import profiler
from .provenance import export_app
from .servers import AUTH, REPO, Server, available

IDLE_SECONDS = 3.0
PROFILES = Path(__file__).resolve().parent / "results" / "profiles"


def open_streams(port: int, count: int, batch: int) -> list[socket.socket]:
    """Open count streams, batch at a time; each is done once its preamble arrived."""
    request = (f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
               f"Authorization: {AUTH['Authorization']}\r\n\r\n").encode()
    opened: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    while len(opened) < count:
        pending: dict[socket.socket, bytes] = {}
        for _ in range(min(batch, count - len(opened))):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
            pending[s] = b""
        deadline = time.monotonic() + 60
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} streams had no preamble after 60 s")
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                data = s.recv(65536)
                if not data:
                    raise ConnectionError(f"a stream closed before its preamble: {pending[s][:200]!r}")
                pending[s] += data
                if b"connected" in pending[s].partition(b"\r\n\r\n")[2]:
                    sel.unregister(s)
                    opened.append(s)
                    del pending[s]
    sel.close()
    return opened


def one_round(label: str, work: Path, opens: int, batch: int, profile: bool, round_no: int,
              app_dir: Path = REPO) -> dict:
    kind = label.partition("@")[0]
    # Admission would defer a burst (that is its job); the cost of an open is measured without it.
    server = Server(kind, work, work, app_dir=app_dir, env={"STREAM_OPENS_PER_SECOND": "0"}).start()
    streams: list[socket.socket] = []
    try:
        time.sleep(1.0)
        c0, t0 = server.cpu_seconds(), time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_rate = (server.cpu_seconds() - c0) / (time.monotonic() - t0)
        spy = None
        if profile and label == "ours":
            PROFILES.mkdir(parents=True, exist_ok=True)
            spy = profiler.start(server.worker_pid(), 60, PROFILES / f"open-cost-r{round_no + 1}", 500, [])
            time.sleep(1.0)  # py-spy attached
        c1, t1 = server.cpu_seconds(), time.monotonic()
        streams = open_streams(server.port, opens, batch)
        c2, t2 = server.cpu_seconds(), time.monotonic()
        out = {
            "server": label, "opens": opens, "seconds": round(t2 - t1, 3),
            "idle_cpu_pct": round(100 * idle_rate, 2),
            "us_per_open": round(1e6 * max(0.0, (c2 - c1) - idle_rate * (t2 - t1)) / opens, 1),
        }
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it recorded and exits
            out["profile"] = profiler.finish(spy)["raw"]
        return out
    finally:
        for s in streams:
            s.close()
        server.stop()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--opens", type=int, default=2000, help="streams opened per round (default 2000)")
    p.add_argument("--batch", type=int, default=100, help="opened at once (default 100)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per server (default 3)")
    p.add_argument("--servers", default="ours,node", help="comma-separated: ours, node, bare (gunicorn + gevent "
                   "and a bare WSGI stream: the floor of our stack); default ours,node")
    p.add_argument("--profile", action="store_true", help="record our worker with py-spy in each round")
    p.add_argument("--app-ref", metavar="REF", help="also run the app as it was at this git ref (ours@REF)")
    args = p.parse_args(argv)
    kinds = [k for k in args.servers.split(",") if k]
    for kind in kinds:
        why = available(kind) if kind in ("ours", "node", "bare") else "not a server of this benchmark"
        if why:
            p.error(f"{kind}: {why}")
    with tempfile.TemporaryDirectory(prefix="open-cost-") as tmp:
        dirs = {k: REPO for k in kinds}
        if args.app_ref:
            dirs[f"ours@{args.app_ref}"] = export_app(args.app_ref, Path(tmp) / "app")
        kinds = list(dirs)
        rows: dict[str, list[dict]] = {k: [] for k in kinds}
        for r in range(args.rounds):
            # The order turns each round: whichever server runs second in a round (after
            # another's 2,000 sockets closed) is not always the same one.
            for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                row = one_round(kind, Path(tmp), args.opens, args.batch, args.profile, r, dirs[kind])
                rows[kind].append(row)
                print(f"round {r + 1} {kind:12} {row['us_per_open']:8.1f} us/open  "
                      f"({row['opens']} in {row['seconds']:.2f} s, idle {row['idle_cpu_pct']:.2f} % of a core)"
                      + (f"  profile {row['profile']}" if "profile" in row else ""), flush=True)
    medians = {k: statistics.median(r["us_per_open"] for r in rows[k]) for k in kinds}
    summary = {"medians_us_per_open": medians, "rounds": rows}
    for other in [k for k in medians if k != "ours" and medians[k] and "ours" in medians]:
        summary[f"ours_over_{other}"] = round(medians["ours"] / medians[other], 2)
    print(table(summary))
    print(json.dumps(summary))


def table(summary: dict) -> str:
    """The medians, each ratio to ours, and the target (an open costs no more CPU than Node's)."""
    medians = summary["medians_us_per_open"]
    lines = ["CPU per stream open (bench/open_cost.py), median over rounds: "
             + ", ".join(f"{k} {v:.0f} us" for k, v in medians.items())]
    for key in [k for k in summary if k.startswith("ours_over_")]:
        lines.append(f"  ours / {key[len('ours_over_'):]}: {summary[key]:.2f}x")
    if medians.get("bare") and medians.get("node"):
        lines.append(f"  the stack's floor (gunicorn + gevent, a bare WSGI stream) / node: "
                     f"{medians['bare'] / medians['node']:.2f}x")
    if "ours_over_node" in summary:
        met = summary["ours_over_node"] <= 1.0
        lines.append(f"  target: at most Node's (1.00x): {'PASS' if met else 'FAIL'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
