"""A real redis-server (Debian's package) on a free loopback port, persistence off."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.server import free_port
from tests.support.system import require


def require_redis() -> str:
    return require("redis-server", "redis-server")


class RedisServer:
    def __init__(self, directory: Path, port: int | None = None, tls: bool = False) -> None:
        self.binary = require_redis()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = tls
        self.pidfile = self.dir / f"redis-{self.port}.pid"
        self.logfile = self.dir / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def _tls_args(self) -> list[str]:
        cert, key = self.dir / "redis.crt", self.dir / "redis.key"
        if not cert.exists():
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                 "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                check=True, capture_output=True)
        return ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert),
                "--tls-key-file", str(key), "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]

    def start(self) -> "RedisServer":
        args = self._tls_args() if self.tls else ["--port", str(self.port)]
        subprocess.run(
            [self.binary, *args, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--pidfile", str(self.pidfile), "--logfile", str(self.logfile),
             "--daemonize", "yes"],
            check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if self.pidfile.exists() and self.pidfile.read_text().strip():
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not start: {self.logfile.read_text() if self.logfile.exists() else ''}")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self, sig=signal.SIGTERM) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
