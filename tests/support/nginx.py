"""A real nginx (Debian's package) in front of the app, at a sub-path, gzip on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server import REPO, free_port
from tests.support.system import require
from tests.support.waiting import eventually


def require_nginx() -> str:
    return require("nginx", "nginx-light", also=("/usr/sbin/nginx",))


class Nginx:
    def __init__(self, directory: Path, app_port: int) -> None:
        self.binary = require_nginx()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # The same server block docs/deploy/nginx.md shows (deploy/nginx-subpath.conf),
        # on a test port, with gzip switched on for everything.
        block = (REPO / "deploy" / "nginx-subpath.conf").read_text()
        block = block.replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        block = block.replace("http://127.0.0.1:8000/", f"http://127.0.0.1:{app_port}/")
        d = self.dir
        (d / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    gzip on;
    gzip_proxied any;
    gzip_min_length 0;
    gzip_types text/event-stream application/json text/css application/javascript text/plain;
    {block}
}}
""")
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/monitor"

    def start(self) -> "Nginx":
        self.proc = subprocess.Popen([self.binary, "-c", str(self.dir / "nginx.conf"), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import socket

        def accepts() -> bool:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True

        try:
            eventually(accepts, 10, ignoring=(OSError,), what="nginx accepts connections")
        except AssertionError:
            raise TimeoutError((self.dir / "error.log").read_text()) from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
