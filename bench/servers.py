"""The servers under test, started and stopped the same way, measured the same way.

- `ours`: the dashboard exactly as the Procfile runs it (gunicorn + gevent,
  gunicorn.conf.py), on 127.0.0.1 and a free port, sampling once a second.
- `node`: bench/node_sse_server.js, the classic Node tutorial SSE server.
- `naive`: bench/naive_flask.py, Flask's threaded development server with
  psutil called per viewer.
- `ours2`: ours with two workers sharing through a redis-server started for it.
- `echo` (console benchmark only): bench/node_ws_echo.js, a Node `ws` server
  that sends every message back: the floor for a request/reply round trip.

Each runs in its own session (process group) so it can be stopped as a whole.
CPU and memory are read from the whole process tree (gunicorn's master and
worker together).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    needs: str  # executable it needs ("" when the venv's Python will do)


KINDS = {
    "ours": Kind("ours", "ours (gunicorn + gevent hub)", ""),
    "node": Kind("node", "Node http tutorial server", "node"),
    "naive": Kind("naive", "naive Flask (dev server, psutil per viewer)", ""),
    # Our stack's floor: gunicorn's gevent worker and a bare WSGI stream (bench/bare_wsgi.py).
    "bare": Kind("bare", "gunicorn + gevent, a bare WSGI stream", ""),
    # The same app, WEB_CONCURRENCY=2 sharing through a redis-server of its own
    # (started and stopped with it, and measured with it: CPU and RSS include Redis).
    "ours2": Kind("ours2", "ours, two workers sharing through Redis", "redis-server"),
}
# Servers of the console benchmark (bench/console_bench.py): ours and the floor.
CONSOLE_KINDS = {
    "ours": KINDS["ours"],
    "echo": Kind("echo", "Node ws echo server (floor)", "node"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available(kind: str) -> str | None:
    """None when the server can run here, else why not."""
    need = (KINDS.get(kind) or CONSOLE_KINDS[kind]).needs
    if need and shutil.which(need) is None:
        return f"'{need}' is not installed"
    if kind == "echo" and not (BENCH / "node_modules" / "ws").is_dir():
        return "bench/node_modules is missing (bin/bench runs `npm ci --prefix bench`)"
    return None


# The dashboard is private by default: viewers log in with this bearer token.
# Set in the environment, so the load clients (child processes) send it too.
VIEWER_TOKEN = os.environ.setdefault("VIEWER_TOKEN", secrets.token_urlsafe(18))
AUTH = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


class Server:
    def __init__(self, kind: str, log_dir: Path, home: Path, app_dir: Path = REPO,
                 env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.kind = kind
        self.app_dir = app_dir  # where app.py and gunicorn.conf.py are (ours)
        self.env = env or {}  # on top of the defaults below (console settings)
        # The operator's bearer token (ours), for console clients.
        self.token = secrets.token_urlsafe(16)
        self.port = port or free_port()  # a port given again: the same DATA_DIR too (a restart in place)
        self.log_path = log_dir / f"{kind}-{self.port}{'-again' if port else ''}.log"
        self.home = home
        self.proc: subprocess.Popen | None = None
        self.redis: subprocess.Popen | None = None
        self._log = None

    def command(self) -> list[str]:
        if self.kind in ("ours", "ours2"):
            return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"]
        if self.kind == "node":
            return ["node", str(BENCH / "node_sse_server.js"), str(self.port), "127.0.0.1"]
        if self.kind == "bare":
            return [sys.executable, "-m", "gunicorn", "-c", "/dev/null", "-k", "gevent", "-w", "1", "-b", f"127.0.0.1:{self.port}",
                    "--worker-connections", "100000", "bench.bare_wsgi:app"]
        if self.kind == "naive":
            return [sys.executable, str(BENCH / "naive_flask.py"), str(self.port), "127.0.0.1"]
        if self.kind == "echo":
            return ["node", str(BENCH / "node_ws_echo.js"), str(self.port), "127.0.0.1"]
        raise ValueError(self.kind)

    def start(self, timeout: float = 30.0) -> "Server":
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SAMPLE_INTERVAL": "1",
            "HOME": str(self.home),
            "PYTHONUNBUFFERED": "1",
            # Settings newer versions of the app want; older ones ignore them.
            # Set here so the app neither prints a login URL nor writes its
            # audit log into the repository.
            "OPERATOR_TOKEN": self.token,
            "VIEWER_TOKEN": VIEWER_TOKEN,
            "SECRET_KEY": secrets.token_urlsafe(16),
            "AUDIT_DB": str(self.home / f"audit-{self.port}.sqlite3"),
            # Every load client comes from 127.0.0.1 with one token: the
            # per-address and per-login budgets are lifted for the benchmark
            # (the per-socket CONSOLE_RATE still applies unless a run sets it).
            "MAX_CONNECTIONS_PER_CLIENT": "1000000",
            "MAX_CONSOLES_PER_LOGIN": "1000000",
            "CONSOLE_LOGIN_RATE": "1000000",
            "CONSOLE_LOGIN_BURST": "1000000",
            "DATA_DIR": str(self.home / f"data-{self.port}"),
            # The fan-out compares events of one size with the baselines': the host's
            # containers (other work may run some) would make ours several times larger.
            "CONTAINERS": "off",
            # The fan-out's crowd opens its streams at its own pace, and a round ends with SIGTERM:
            # admission and the slow drain are measured apart (bench/restart_storm.py).
            "STREAM_OPENS_PER_SECOND": "0",
            "DRAIN_SECONDS": "0",
            **self.env,
        }
        self._log = open(self.log_path, "ab")
        if self.kind == "ours2":
            env.update(WEB_CONCURRENCY="2", REDIS_URL=self._start_redis(timeout))
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.app_dir if self.kind in ("ours", "ours2") else REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        return self

    def _start_redis(self, timeout: float) -> str:
        port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.home)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return f"redis://127.0.0.1:{port}/0"
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server not ready in {timeout:g}s")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}: {self.log()[-2000:]}")
            if self.kind == "echo":  # no HTTP endpoint: listening is ready
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
                    continue
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.port}/healthz", headers=AUTH)
                with urllib.request.urlopen(req, timeout=2) as r:
                    body = json.loads(r.read() or b"{}")
                if r.status == 200 and (self.kind != "ours" or body["sampler"]["seq"] >= 1):
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.kind} not ready in {timeout:g}s: {self.log()[-2000:]}")

    # ---- measuring ------------------------------------------------------------

    def tree(self) -> list[psutil.Process]:
        out = []
        for proc in (self.proc, self.redis):
            try:
                if proc is not None:
                    root = psutil.Process(proc.pid)
                    out += [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return out

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self.tree():
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def threads(self) -> int:
        n = 0
        for p in self.tree():
            try:
                n += p.num_threads()
            except psutil.NoSuchProcess:
                pass
        return n

    def worker_pid(self) -> int:
        """The process that serves the streams (gunicorn's worker, else the server)."""
        tree = self.tree()
        return tree[-1].pid if self.kind == "ours" and len(tree) > 1 else self.proc.pid

    # ---- stopping --------------------------------------------------------------

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        if self.redis is not None and self.redis.poll() is None:
            self.redis.terminate()
            try:
                self.redis.wait(timeout)
            except subprocess.TimeoutExpired:
                self.redis.kill()
                self.redis.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
