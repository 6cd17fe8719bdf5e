"""Leaving under real signals: no seq shown twice across restarts, Ctrl-C at once and clean, a slow drain."""

import json
import os
import signal
import socket
import threading
import time

from tests.support.crowd import Crowd
from tests.support.leaving import assert_left_by_themselves
from tests.support.server import TOKEN
from tests.support.sseclient import Dechunker
from tests.support.waiting import eventually
from tests.support.wsclient import Console
from tests.test_restart_live import _http


def test_restarts_on_one_data_dir_never_number_a_sample_twice(start_server):
    # Fast samples, so one is always close to the signal: each shown sample must be the
    # stored one too, or the next process numbers its own first sample the same.
    env = {"SAMPLE_INTERVAL": "0.25", "SECRET_KEY": "kept-across-restarts", "SSE_RETRY_MS": "200"}
    server = start_server(env)
    crowd = Crowd(server.port, 20).start()
    for _ in range(4):
        counts = {id(v): len(v.seqs) for v in crowd.viewers}
        assert crowd.wait(lambda: all(len(v.seqs) >= counts[id(v)] + 3 for v in crowd.viewers), timeout=30)
        worker = server.worker().pid
        server.stop(signal.SIGTERM, timeout=60)
        assert server.proc.returncode == 0
        assert_left_by_themselves(server, [worker])  # not held to the graceful timeout (25 s) and killed
        server = start_server(env, port=server.port)
    assert crowd.wait(lambda: all(v.connects >= 5 and len(v.seqs) >= 20 for v in crowd.viewers), timeout=60)
    crowd.stop()
    for v in crowd.viewers:
        assert all(a < b for a, b in zip(v.seqs, v.seqs[1:])), v.seqs  # strictly increasing: none twice
        assert len(set(v.ids)) == len(v.ids)
        assert "resync" not in v.types


def _open_stream(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    return s


def _read_to_end(s: socket.socket) -> tuple[bytes, bytes, bool]:
    """(head, body, ended with the final chunk)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = s.recv(65536)
        if not piece:
            return data, b"", False
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    dechunk = Dechunker()
    body = dechunk.feed(rest)
    while not dechunk.done:
        try:
            piece = s.recv(65536)
        except OSError:
            piece = b""
        if not piece:
            return head, body, False
        body += dechunk.feed(piece)
    return head, body, True


def test_ctrl_c_at_a_terminal_ends_every_stream_with_its_final_chunk_and_exits_0_at_once(start_server):
    # Without the drain setting the harness gives: Ctrl-C never drains anyway.
    server = start_server({"SAMPLE_INTERVAL": "0.25", "DRAIN_SECONDS": "20"})
    for attempt in range(3):
        if attempt:
            server = start_server({"SAMPLE_INTERVAL": "0.25", "DRAIN_SECONDS": "20"}, port=server.port)
        streams = [_open_stream(server.port) for _ in range(5)]
        console = Console(server.port)
        eventually(lambda: server.get("/healthz")[1]["subscribers"] == 5, what="five streams open")
        results: list = []
        readers = [threading.Thread(target=lambda s=s: results.append(_read_to_end(s))) for s in streams]
        for r in readers:
            r.start()
        code: list = []
        closer = threading.Thread(target=lambda: code.append(console.close_code(15)))
        closer.start()
        worker = server.worker().pid
        start = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        # Time enough for the failure modes (the drain's 20 s, the graceful timeout's 25 s) to show.
        assert server.proc.wait(60) == 0
        took = time.monotonic() - start
        for r in readers:
            r.join(10)
        closer.join(10)
        # "At once" is what the server says: no drain began, and the worker left by itself.
        assert "draining:" not in server.log()
        assert_left_by_themselves(server, [worker])
        # About 3 s here; far below the drain's 20 s however busy the machine.
        assert took < 12, f"exit took {took:.1f}s"
        assert [ended for _, _, ended in results] == [True] * 5  # each got 0\r\n\r\n
        assert code == [1001]
        assert "Traceback" not in server.log() and "SystemExit" not in server.log()
        for s in streams:
            s.close()


def test_sigterm_drains_streams_and_consoles_spread_over_the_window(start_server):
    window, viewers = 3.0, 300
    env = {"SAMPLE_INTERVAL": "0.5", "DRAIN_SECONDS": str(window), "GRACEFUL_TIMEOUT": "10",
           "SSE_RETRY_MS": "60000", "MAX_CONNECTIONS_PER_CLIENT": "1000", "MAX_CONSOLES_PER_LOGIN": "100"}
    server = start_server(env)
    crowd = Crowd(server.port, viewers).start()
    assert crowd.wait(lambda: all(v.seqs for v in crowd.viewers), timeout=60)
    consoles = [Console(server.port, name=f"op{i}") for i in range(20)]
    closes: list = []
    threads = [threading.Thread(target=lambda c=c: closes.append((c.close_code(30), time.monotonic())))
               for c in consoles]
    for t in threads:
        t.start()
    kept_alive = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    assert _http(kept_alive, "/healthz")[0] == 200

    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    eventually(lambda: "draining:" in server.log(), interval=0.02, what="the drain starts")
    status, _, body = _http(kept_alive, "/healthz")  # a load balancer's kept-alive check
    assert status == 503 and b'"status": "draining"' in body.replace(b'":"', b'": "')
    assert server.proc.wait(30) == 0
    for t in threads:
        t.join(10)
    crowd.stop()

    stream_ends = [v.ends[0] - start for v in crowd.viewers if v.ends]
    assert len(stream_ends) == viewers and sum(v.cut_ends for v in crowd.viewers) == 0
    codes = [code for code, _ in closes]
    assert codes == [1012] * 20
    console_ends = sorted(at - start for _, at in closes)
    # None ends before its share of the window: by time t at most t/window of them all (plus one).
    everything = sorted(stream_ends + console_ends)
    for k, t in enumerate(everything):
        assert k <= len(everything) * t / window + 1, (k, t)
    ends = sorted(stream_ends)
    # All are done by the end of the window (plus what a busy machine adds), and spread over it.
    assert ends[-1] < window + 5
    slices = [sum(1 for t in ends if i * window / 6 <= t < (i + 1) * window / 6) for i in range(6)]
    assert sum(1 for n in slices if n) >= 4, slices
    # Each asked to come back after a jittered delay (SSE_RETRY_MS +-50 %).
    retries = [v.end_retries[0] for v in crowd.viewers]
    assert all(r is not None and 30 <= r < 90 for r in retries) and len(set(retries)) > viewers // 2
    assert console_ends[-1] > window / 4 and console_ends[-1] - console_ends[0] > window / 4  # not all at once
    kept_alive.close()
    # By the server's own clock, the drain took its window (whatever held gunicorn's loop).
    said = {json.loads(line)["msg"].split(":")[0]: json.loads(line)["ts"] for line in server.log().splitlines()
            if '"msg": "draining:' in line or '"msg": "shutting down:' in line}
    assert said["shutting down"] - said["draining"] >= window * 0.9, said


def test_a_drain_with_streams_alone_takes_its_window(start_server):
    # Nothing in gunicorn's own pool (no console, no request): the worker must still wait.
    window = 2.0
    server = start_server({"SAMPLE_INTERVAL": "0.5", "DRAIN_SECONDS": str(window), "GRACEFUL_TIMEOUT": "10",
                           "SSE_RETRY_MS": "60000"})
    crowd = Crowd(server.port, 50).start()
    assert crowd.wait(lambda: all(v.seqs for v in crowd.viewers), timeout=60)
    start = time.monotonic()
    assert server.stop(signal.SIGTERM) >= window * 0.9 and server.proc.returncode == 0
    crowd.stop()
    ends = sorted(v.ends[0] - start for v in crowd.viewers if v.ends)
    assert len(ends) == 50 and ends[-1] >= window * 0.9 and sum(v.cut_ends for v in crowd.viewers) == 0


def test_streams_end_by_themselves_before_a_proxy_would_and_resume_with_no_gap(start_server):
    server = start_server({"SAMPLE_INTERVAL": "0.25", "STREAM_MAX_SECONDS": "2", "SSE_RETRY_MS": "300",
                           "HEARTBEAT_SECONDS": "0.5"})
    crowd = Crowd(server.port, 10).start()
    assert crowd.wait(lambda: all(v.clean_ends >= 3 for v in crowd.viewers), timeout=60)
    crowd.stop()
    for v in crowd.viewers:
        assert v.seqs == list(range(v.seqs[0], v.seqs[0] + len(v.seqs))), v.seqs  # no gap, none twice
        assert "resync" not in v.types
        assert all(r is not None and 0.15 <= r < 0.45 for r in v.end_retries[:3]), v.end_retries
        # Never before 90 % of STREAM_MAX_SECONDS (the retry and a reconnect come on top).
        assert all(b - a >= 1.8 for a, b in zip(v.ends, v.ends[1:])), v.ends
    assert "stream rotated (STREAM_MAX_SECONDS)" in server.log()


def test_idle_kept_alive_connections_last_past_the_routers_90_s_and_never_hold_a_leaving_worker(start_server):
    server = start_server({"KEEPALIVE_SECONDS": "100", "GRACEFUL_TIMEOUT": "30"})
    # A new connection that never finishes its headers is not a router's pooled one: it gets
    # the first request's 10 s, not the keep-alive's 100 s.
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    opened = time.monotonic()
    idle = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        status, headers, _ = _http(s, "/healthz")
        assert status == 200 and headers.get("connection", "keep-alive").lower() != "close"
        idle.append(s)
    time.sleep(3)  # longer than the old 2 s keep-alive: still open
    for s in idle[:5]:
        assert _http(s, "/healthz")[0] == 200
    assert slow.recv(1) == b""
    # About 10 s here (the first request's); a wide margin below the keep-alive's 100 s, the failure mode.
    assert time.monotonic() - opened < 60
    slow.close()
    worker = server.worker().pid
    took = server.stop(signal.SIGTERM, timeout=60)  # time for the failure mode (graceful_timeout 30 s) to show
    assert server.proc.returncode == 0
    # Not held to graceful_timeout: the idle ones were ended, and the worker left by itself.
    assert_left_by_themselves(server, [worker])
    assert took < 20, f"exit took {took:.1f}s"  # about 2 s here; the failure mode is the 30 s
    for s in idle:
        assert s.recv(1) == b""  # closed by the server, cleanly
        s.close()
    assert "graceful timeout" not in server.log().lower()


def test_a_storm_of_new_streams_is_let_in_at_the_set_rate_and_the_rest_come_back_by_themselves(start_server):
    rate, viewers = 20, 200
    server = start_server({"STREAM_OPENS_PER_SECOND": str(rate), "SAMPLE_INTERVAL": "0.5",
                           "MAX_CONNECTIONS_PER_CLIENT": "1000"})
    crowd = Crowd(server.port, viewers).start()  # all within a tenth of a second
    assert crowd.wait(lambda: all(v.seqs for v in crowd.viewers), timeout=120), \
        sum(1 for v in crowd.viewers if v.seqs)
    crowd.stop()
    lines = [json.loads(line) for line in server.log().splitlines() if '"path": "/events"' in line]
    assert lines and all(line["status"] == 200 for line in lines)  # never a 5xx, which ends EventSource
    opened = sorted(line["ts"] for line in lines if line.get("stream") == "opened")
    assert len(opened) >= viewers
    # By the server's own clock: never more than the burst (a quarter second's worth) plus a
    # second's rate in any second.
    most = max(sum(1 for t in opened[i:] if t - start < 1.0) for i, start in enumerate(opened))
    assert most <= rate + rate // 4 + 2, most
    deferred = [v for v in crowd.viewers if v.connects > 1]
    assert len(deferred) >= viewers - 2 * rate
    status, _, body = server.request("GET", "/metrics")
    assert status == 200 and b'dashboard_refused_total{reason="stream_deferred"}' in body
