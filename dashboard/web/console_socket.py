"""GET /console: the operator console's WebSocket (flask-sock), a thin loop.

Authentication and the Origin check happen before the upgrade (see
web.auth.guard_console); everything a frame does happens in
ConsoleSession.handle. This loop only moves frames between the two.
"""

from __future__ import annotations

import base64
import binascii
import socket
import time
from typing import Protocol

import gevent.lock
from flask import Blueprint, g, request
from flask_sock import Sock

from ..console import protocol
from .auth import guard_console
from ..console.commands import REGISTRY
from ..console.sessions import ConsoleSession, Consoles, Desk
from .common import error, serving

bp = Blueprint("console", __name__)
sock = Sock()


class Serves(Protocol):
    """What the console socket uses of the process it serves."""

    host: str
    version: str
    config: dict
    shutting_down: bool
    desk: Desk
    consoles: Consoles


def services() -> Serves:
    return serving(Serves)

LINGER_BYTES = 1 << 20  # read and discard at most this much after our close frame


class SerializedSocket:
    """The client socket with each write whole and one at a time.

    simple-websocket writes with a plain send() from two greenlets (ours, and
    its reader answering pings); a partial send or an interleaving would
    corrupt the frame stream. Every write goes through here instead."""

    def __init__(self, raw, write_timeout: float) -> None:
        self._raw = raw
        self._lock = gevent.lock.Semaphore()
        self._closed = False
        self.write_timeout = write_timeout

    def send(self, data) -> int:
        with self._lock:
            # Nearly always the kernel takes the whole frame at once: try that
            # without arming a timer, and wait (bounded) only for what is left.
            try:
                sent = self._raw.send(data, 0, 0.0)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                with gevent.Timeout(self.write_timeout, socket.timeout("write timed out")):
                    self._raw.sendall(memoryview(data)[sent:])
        return len(data)

    sendall = send

    def close(self) -> None:
        """A lingering close, run by simple-websocket's reader when it stops.

        Closing a socket that still has unread input makes the kernel send a
        reset, which can destroy our close frame before the peer reads it (a
        flooding client always has unread input). So: FIN, then read and drop
        what still comes, briefly, then close. Only the reader reads here."""
        if self._closed:
            return
        self._closed = True
        try:
            self._shutdown_write()
            self._raw.settimeout(0.5)
            deadline = time.monotonic() + 2.0
            drained = 0
            while drained < LINGER_BYTES and time.monotonic() < deadline:
                data = self._raw.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass
        finally:
            self._raw.close()

    def finish(self, reader) -> None:
        """End of the route: FIN after the last frame, then give the reader a
        moment to finish its lingering close before the server closes the socket."""
        try:
            self._shutdown_write()
        except OSError:
            pass
        if reader is not None:
            reader.join(2.0)

    def _shutdown_write(self) -> None:
        with self._lock:
            self._raw.shutdown(socket.SHUT_WR)

    def __getattr__(self, name):
        return getattr(self._raw, name)


def handshake_problem(environ) -> str | None:
    """What is wrong with a WebSocket opening handshake (RFC 6455 4.2.1), or None."""
    if "websocket" not in environ.get("HTTP_UPGRADE", "").lower():
        return "not a WebSocket request (Upgrade: websocket is missing)"
    if "upgrade" not in environ.get("HTTP_CONNECTION", "").lower():
        return "Connection: Upgrade is missing"
    key = environ.get("HTTP_SEC_WEBSOCKET_KEY", "").strip()
    try:
        decoded = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        decoded = b""
    if len(decoded) != 16:
        return "Sec-WebSocket-Key must be 16 bytes in base64"
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        return "Sec-WebSocket-Version must be 13"
    return None


@bp.before_request
def before_upgrade():
    if services().shutting_down:
        return error(503, "shutting_down", "the server is restarting; reconnect in a moment")
    refused = guard_console()
    if refused is not None:
        return refused
    problem = handshake_problem(request.environ)
    if problem is not None:
        response, status = error(400, "bad_handshake", problem)
        response.headers["Sec-WebSocket-Version"] = "13"
        return response, status
    wait = services().desk.admit(g.operator)
    if wait:
        response, status = error(
            429, "too_many_consoles",
            f"this login already has {services().desk.logins.max_consoles} consoles open "
            f"(MAX_CONSOLES_PER_LOGIN); retry in {wait:g} s", retry_after=wait)
        response.headers["Retry-After"] = str(int(wait))
        return response, status
    raw = request.environ.get("gunicorn.socket")
    if raw is not None:
        request.environ["gunicorn.socket"] = SerializedSocket(raw, services().config["VIEWER_WRITE_TIMEOUT"])
    return None


@sock.route("/console", bp=bp)
def console_socket(ws):
    svc = services()
    op = g.operator
    session = ConsoleSession(ws, op, svc.desk)
    svc.consoles.add(session)
    cfg = svc.config
    session.send(protocol.push(
        "welcome",
        operator=op.name,
        role=op.role,
        via=op.via,
        connection=session.id,
        server=svc.host,
        version=svc.version,
        commands=[c.public() for c in REGISTRY.values()],
        limits={"rate": cfg["CONSOLE_RATE"], "burst": cfg["CONSOLE_BURST"],
                "max_message": cfg["CONSOLE_MAX_MESSAGE"]},
    ))
    try:
        while not session.closed:
            raw = ws.receive(timeout=5)
            if raw is not None and not session.closed:
                session.handle(raw)
    finally:
        if session.closed:
            session.writer.join(timeout=2)  # let the close frame out
        svc.consoles.remove(session)
        # Before the server closes the connection: FIN, and let the reader
        # drain what the peer still sends, so our close frame reaches it.
        if isinstance(ws.sock, SerializedSocket):
            ws.sock.finish(getattr(ws, "thread", None))
