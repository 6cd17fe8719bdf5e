"""What a fleet costs the web process, and what its viewers receive: N simulated hosts on a real redis-server.

    python -m bench.fleet_load [--hosts 1000] [--viewers 10] [--seconds 30]

Starts a redis-server and our server as the Procfile does (bench/servers.py)
with REDIS_URL, opens --viewers streams on /fleet/events (raw sockets, one
thread), and measures the web worker (CPU as % of one core, RSS) and the
viewers (bytes and `fleet` events a second each) over a window twice: first
with this host alone in the fleet (the baseline, in the same run), then while
bench/fleet_sim.py writes --hosts hosts' summaries once a second. The targets
(issue: one summary stream, what changed, at most once a second): each viewer
gets at most one `fleet` event a second, and at most the bytes a second of
what the hosts changed in the window and the 1.5 s before it (each change
as the event carries it, read from the changes stream beside the web process) and what this host alone
sent, plus a tenth for the stream's own framing. Prints a table and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from .servers import REPO, VIEWER_TOKEN, Server

FRAMING = 1.1  # what the SSE framing (id, event, data lines) may add to the changes' own bytes
MARK = b"event: fleet\n"  # one per fleet event
LAG = 1.5  # seconds from a change written to its event sent: the board flushes once a second


class Viewers:
    """count streams on /fleet/events, read in one thread: bytes and `fleet` events seen by each."""

    def __init__(self, port: int, count: int) -> None:
        self.bytes = [0] * count
        self.events = [0] * count
        self._tails = [b""] * count  # the end of the last read: a line cut between two reads is counted once
        self.selector = selectors.DefaultSelector()
        request = (f"GET /fleet/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                   f"Authorization: Bearer {VIEWER_TOKEN}\r\n\r\n").encode()
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(request)
            s.setblocking(False)
            self.selector.register(s, selectors.EVENT_READ, i)
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(0.5):
                try:
                    data = key.fileobj.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fileobj)
                    continue
                self.bytes[key.data] += len(data)
                i = key.data
                seen = self._tails[i] + data
                self.events[i] += seen.count(MARK)
                self._tails[i] = seen[-(len(MARK) - 1):]

    def totals(self) -> tuple[list[int], list[int]]:
        return list(self.bytes), list(self.events)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Owed:
    """What the hosts changed while it runs, read from the changes stream as the web process reads it:
    each change as a viewer's event would carry it ({"name": {fields}}, `ts` left out), in bytes."""

    def __init__(self, redis_url: str) -> None:
        from dashboard.store.fleet_store import FleetStore
        from dashboard.store.redis_store import RedisStore

        self.store = RedisStore(redis_url, "dash")
        self.key = FleetStore(self.store).changes
        self.seen: list[tuple[float, int]] = []  # (when read, bytes) of each change
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        last = "$"
        while not self.stopping:
            for _key, entries in self.store.r.xread({self.key: last}, block=500, count=5000) or []:
                for last, fields in entries:
                    fields = {_text(k): _text(v) for k, v in fields.items()}
                    host = fields["h"]
                    changed = {k: v for k, v in json.loads(fields["d"]).items() if k != "ts"}
                    if changed:
                        self.seen.append((time.monotonic(), len(json.dumps({host: changed}, separators=(",", ":"))) - 1))

    def between(self, start: float, end: float) -> int:
        return sum(size for when, size in list(self.seen) if start <= when < end)

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.store.close()


def _window(worker: psutil.Process, viewers: Viewers, seconds: float, owed: Owed | None = None) -> dict:
    cpu0, (bytes0, events0), t0 = worker.cpu_times(), viewers.totals(), time.monotonic()
    time.sleep(seconds)
    cpu1, (bytes1, events1), t1 = worker.cpu_times(), viewers.totals(), time.monotonic()
    # A change reaches viewers at the board's next flush (each second): those read up to LAG before
    # the window may arrive in it.
    owed_bytes = owed.between(t0 - LAG, t1) if owed else 0
    per_bytes = [(b1 - b0) / seconds for b0, b1 in zip(bytes0, bytes1)]
    per_events = [(e1 - e0) / seconds for e0, e1 in zip(events0, events1)]
    return {"worker_cpu_pct": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / seconds * 100, 2),
            "worker_rss_mb": round(worker.memory_info().rss / 1e6, 1),
            "viewer_bytes_per_second_max": round(max(per_bytes)), "viewer_bytes_per_second_mean":
            round(sum(per_bytes) / len(per_bytes)), "viewer_events_per_second_max": round(max(per_events), 2),
            "changed_bytes_per_second": round(owed_bytes / seconds)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_load", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    from tests.support.redis_server import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        home = Path(tmp)
        redis = RedisServer(home / "redis").start()
        server = sim = viewers = owed = None
        try:
            server = Server("ours", home, home, env={"REDIS_URL": redis.url, "HOST_NAME": "front"}).start()
            worker = psutil.Process(server.worker_pid())
            viewers = Viewers(server.port, args.viewers)
            time.sleep(3)  # past the start and the first events
            alone = _window(worker, viewers, args.seconds)
            sim = subprocess.Popen([sys.executable, "-m", "bench.fleet_sim", "--redis", redis.url, "--hosts",
                                    str(args.hosts), "--seconds", str(args.seconds + 10)],
                                   cwd=REPO, stdout=subprocess.PIPE, text=True)
            owed = Owed(redis.url)
            time.sleep(5)  # every host written once: from here on, what changes
            fleet = _window(worker, viewers, args.seconds, owed)
            simulated = json.loads(sim.communicate(timeout=args.seconds + 120)[0].strip().splitlines()[-1])
        finally:
            for reader in (viewers, owed):
                if reader is not None:
                    reader.close()
            if sim is not None and sim.poll() is None:
                sim.kill()
            if server is not None:
                server.stop()
            redis.stop()
    # What changed in the window, plus this host's own changes and the stream's framing.
    allowed = fleet["changed_bytes_per_second"] + alone["viewer_bytes_per_second_max"]
    result = {"hosts": args.hosts, "viewers": args.viewers, "seconds": args.seconds, "alone": alone, "fleet": fleet,
              "simulator": simulated, "worker_cpu_pct_per_1000_hosts":
              round((fleet["worker_cpu_pct"] - alone["worker_cpu_pct"]) * 1000 / args.hosts, 2),
              "events_target_pass": fleet["viewer_events_per_second_max"] <= 1.0 + 1 / args.seconds,
              "bytes_target": round(allowed * FRAMING),
              "bytes_target_pass": fleet["viewer_bytes_per_second_max"] <= allowed * FRAMING}
    print(f"{'':34}{'this host alone':>18}{f'+ {args.hosts:,} simulated':>20}")
    for label, key in (("worker CPU, % of a core", "worker_cpu_pct"), ("worker RSS, MB", "worker_rss_mb"),
                       ("viewer bytes/s (largest)", "viewer_bytes_per_second_max"),
                       ("viewer fleet events/s (most)", "viewer_events_per_second_max")):
        print(f"{label:34}{alone[key]:>18}{fleet[key]:>20}")
    print(f"changed in the window and the {LAG:g} s before: {fleet['changed_bytes_per_second']:,} B/s; a viewer may get {result['bytes_target']:,} B/s "
          f"({'PASS' if result['bytes_target_pass'] else 'FAIL'}); at most 1 event/s "
          f"({'PASS' if result['events_target_pass'] else 'FAIL'})")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
