"""Real notification receivers for tests: an HTTP server taking json:// posts (or redirecting them, or
holding them), an SMTP server taking mail, and a listener that only counts the connections it gets."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

from tests.support.server import free_port
from tests.support.waiting import eventually


def _free_port(host: str) -> int:
    if host == "127.0.0.1":
        return free_port()
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class JsonReceiver:
    """Records every POST (path, headers, JSON body). Can be stopped and started on the same port.

    redirect_to: answer each POST with the status its path names (/301, /302, /307) and this Location.
    hold: a threading.Event each POST waits for before its answer (a stalled receiver); `held` counts
    the POSTs that arrived and are waiting."""

    def __init__(self, port: int | None = None, host: str = "127.0.0.1", redirect_to: str | None = None,
                 hold: threading.Event | None = None) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self.posts: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.redirect_to, self.hold, self.held = redirect_to, hold, 0

    def url(self, path: str = "/hook", auth: str = "", query: str = "") -> str:
        return f"json://{auth}{self.host}:{self.port}{path}{query}"

    def start(self) -> "JsonReceiver":
        posts, receiver = self.posts, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                if receiver.redirect_to is not None:
                    # Recorded before the answer goes: the sender may count the posts as soon as it has it.
                    posts.append({"path": self.path, "redirected": True})
                    self.send_response(int(self.path.strip("/")[:3]))
                    self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if receiver.hold is not None:
                    receiver.held += 1
                    receiver.hold.wait(120)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                posts.append({"path": self.path, "headers": dict(self.headers), "json": data,
                              "at": time.time()})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait(self, n: int, timeout: float = 20.0) -> list[dict]:
        try:
            eventually(lambda: len(self.posts) >= n, timeout)
        except AssertionError:
            pass  # the caller asserts on what came
        return list(self.posts)


class CountingListener:
    """Accepts TCP connections on one address and counts them (then closes them): the "forbidden"
    receiver. `settled()` is the count of connections made before it was called, without sleeping:
    it connects once itself (from a port it registers first, so its own connection is never counted)
    and waits until that connection is accepted, which the kernel queues after the others."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        self.host = host
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._marks: set[tuple[str, int]] = set()
        self._seen: set[tuple[str, int]] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, addr = self.sock.accept()
            except OSError:
                return
            if addr[:2] in self._marks:
                self._seen.add(addr[:2])
            else:
                self.count += 1
            conn.close()

    def settled(self, timeout: float = 20.0) -> int:
        with socket.socket() as mark:
            mark.bind((self.host, 0))
            me = mark.getsockname()[:2]
            self._marks.add(me)  # before the connection exists: the acceptor knows it when it comes
            mark.settimeout(timeout)
            mark.connect((self.host, self.port))
            eventually(lambda: me in self._seen, timeout, 0.02, what="the listener accepted its own mark")
        return self.count

    def close(self) -> None:
        self.sock.close()


class SmtpReceiver:
    """An aiosmtpd server on loopback; `messages` holds each parsed mail."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[email.message.EmailMessage] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                receiver.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?from=alerts@example.com&to=ops@example.com"
                f"&mode=insecure")

    def start(self) -> "SmtpReceiver":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait(self, n: int, timeout: float = 20.0) -> list:
        try:
            eventually(lambda: len(self.messages) >= n, timeout)
        except AssertionError:
            pass  # the caller asserts on what came
        return list(self.messages)

    @staticmethod
    def text(message) -> str:
        part = message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""
