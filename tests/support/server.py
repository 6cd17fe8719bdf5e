"""Run the real app under gunicorn + gevent on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
# Scripts log in with a bearer token (the server's OPERATOR_TOKEN); the
# dashboard is private by default.
TOKEN = "operator-token-for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, tmp_path: Path, env: dict | None = None, port: int | None = None, name="app"):
        self.port = port or free_port()
        self.tmp = tmp_path
        self.name = name
        self.log_path = tmp_path / f"{name}-{self.port}.log"
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "HOME": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
            "OPERATOR_TOKEN": TOKEN,
            "OBSERVER_TOKEN": "observer-token-for-tests",
            "AUDIT_DB": str(tmp_path / f"audit-{name}.sqlite3"),
            # Servers of the same name share one store, as one app restarted would.
            "DATA_DIR": str(tmp_path / f"data-{name}"),
            # A stopped test server ends its streams at once; tests of the slow drain set it.
            "DRAIN_SECONDS": "0",
            # Crowds of test clients open streams faster than a restart's storm would be let in;
            # tests of the admission set it.
            "STREAM_OPENS_PER_SECOND": "0",
            **{k: str(v) for k, v in (env or {}).items()},
        }
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> "Server":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app"],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                status, body = self.get("/healthz", timeout=2)
                # Without a token of ours the health check says only its status.
                if status == 200 and (body.get("sampler", {}).get("seq", 0) >= 1
                                      or (not self.env.get("OPERATOR_TOKEN") and body == {"status": "ok"})):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout}s:\n{self.log()}")

    def request(self, method: str, path: str, body=None, headers=None, timeout: float = 10.0, auth: bool = True):
        """One request; as the operator's script (a bearer token) unless auth=False."""
        data = None if body is None else json.dumps(body).encode()
        token = self.env.get("OPERATOR_TOKEN")  # none when the test lets the server make one
        headers = {**({"Authorization": f"Bearer {token}"} if auth and token else {}), **(headers or {})}
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def get(self, path: str, timeout: float = 10.0, auth: bool = True):
        status, _headers, raw = self.request("GET", path, timeout=timeout, auth=auth)
        return status, json.loads(raw)

    def workers(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children()

    def worker(self) -> psutil.Process:
        workers = self.workers()
        assert len(workers) == 1, workers
        return workers[0]

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> float:
        """Signal the master; returns seconds until it exited."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        return time.monotonic() - start

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""
