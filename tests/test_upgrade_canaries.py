"""Upgrade canaries: one test per library internal the app still relies on.

Each fails with a line that names the internal, the library and the app's
code that leans on it, so an upgrade that changed one says which at once
instead of showing up as a hung stream or a lost close frame somewhere else.
The internals (none has a public replacement in the pinned versions):
- gunicorn: `environ["gunicorn.socket"]` (the client socket), raising
  StopIteration from the WSGI call to take the connection over, the Response's
  `force_close()` reached through `start_response.__self__`, and the worker
  asking the listener `getsockname()` per connection (logs.ClosedListenerFilter);
- simple-websocket: `Server` reads its socket from `environ["gunicorn.socket"]`
  (so web/console_socket.py can serialize its writes) and keeps it as `ws.sock`,
  its reader as `ws.thread`.
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.support.server import free_port
from tests.support.waiting import eventually

pytestmark = pytest.mark.live

# A WSGI app with nothing of ours in it: only the library behaviour under test.
PROBE_APP = textwrap.dedent('''
    import json, os

    HIJACKED = b"HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\nConnection: close\\r\\n\\r\\nhijack"

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/probe":
            sock = environ.get("gunicorn.socket")
            owner = getattr(start_response, "__self__", None)
            body = json.dumps({"socket": hasattr(sock, "fileno") and hasattr(sock, "dup"),
                               "force_close": callable(getattr(owner, "force_close", None))}).encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
        if path == "/hijack":
            own = environ["gunicorn.socket"].dup()
            own.sendall(HIJACKED)
            own.close()
            raise StopIteration
        if path == "/close":
            start_response("200 OK", [("Content-Length", "2")])
            start_response.__self__.force_close()
            return [b"ok"]
        start_response("404 Not Found", [("Content-Length", "0")])
        return []
''')


@pytest.fixture(scope="module")
def probe_server(tmp_path_factory):
    """gunicorn with the gevent worker, as the Procfile runs it, serving PROBE_APP."""
    folder = tmp_path_factory.mktemp("probe")
    (folder / "probe_app.py").write_text(PROBE_APP)
    (folder / "conf.py").write_text("control_socket_disable = True\n")
    port = free_port()
    log = open(folder / "log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(folder / "conf.py"), "-k", "gevent", "-w", "1",
         "--keep-alive", "5", "-b", f"127.0.0.1:{port}", "--log-level", "debug", "probe_app:app"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(folder)})

    def accepts() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True

    eventually(accepts, 30, ignoring=(OSError,), what="the probe server accepts")
    yield port, folder / "log"
    proc.terminate()
    proc.wait(30)
    log.close()


def exchange(port: int, request: bytes, keep_open: bool = False) -> tuple[bytes, bool]:
    """What the server sent for one request, and whether it then closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data, closed = b"", False
        s.settimeout(1.5 if keep_open else 10)
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except socket.timeout:
            pass
    return data, closed


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_gunicorn_environ_carries_the_client_socket_and_start_response_its_response(probe_server):
    port, _log = probe_server
    data, _ = exchange(port, get("/probe"), keep_open=True)
    facts = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert facts["socket"], ("gunicorn internal changed: environ['gunicorn.socket'] is gone "
                             "(web/events.py, web/body_limits.py, web/console_socket.py take the client socket there)")
    assert facts["force_close"], ("gunicorn internal changed: start_response.__self__.force_close() is gone "
                                  "(web/body_limits.py closes refused connections with it)")


def test_gunicorn_lets_an_app_that_raises_stopiteration_take_the_connection(probe_server):
    port, log = probe_server
    data, closed = exchange(port, get("/hijack"))
    assert data == b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhijack" and closed, (
        "gunicorn internal changed: StopIteration from the WSGI call no longer hands the connection to the app "
        f"(web/events.py's OwnedStream gives each stream to the hub that way); the client got {data[:200]!r}")
    assert "Traceback" not in log.read_text(errors="replace")


def test_gunicorn_force_close_ends_a_keep_alive_connection_after_the_response(probe_server):
    port, _log = probe_server
    data, closed = exchange(port, get("/close"), keep_open=True)
    assert data.endswith(b"\r\n\r\nok") and closed, (
        "gunicorn internal changed: force_close() no longer closes the connection after the response "
        "(web/body_limits.py relies on it to drop a client whose body it refused)")


def test_gunicorn_asks_the_listener_its_name_per_connection_and_the_filter_knows_that_failure():
    from gunicorn.workers.base_async import AsyncWorker

    from dashboard.logs import ClosedListenerFilter

    assert "listener.getsockname()" in inspect.getsource(AsyncWorker.handle), (
        "gunicorn internal changed: AsyncWorker.handle no longer calls listener.getsockname(); "
        "logs.ClosedListenerFilter (EBADF raised there during shutdown) may be obsolete")
    import gevent.socket

    # As the gevent worker has it: gevent's socket over the descriptor of gunicorn's own listener, which
    # the stopping worker closes under it.
    own = socket.socket()
    listener = gevent.socket.socket(own.family, own.type, fileno=own.fileno())
    own.close()
    try:
        listener.getsockname()
    except OSError as exc:
        assert exc.errno == errno.EBADF
        record = logging.LogRecord("gunicorn.error", logging.ERROR, __file__, 1, "Error", (),
                                   (type(exc), exc, exc.__traceback__))
        ClosedListenerFilter().filter(record)
        assert record.levelno == logging.WARNING and record.exc_info is None, (
            "gevent's socket changed: a closed listener's getsockname() no longer fails in a frame named "
            "getsockname, which logs.ClosedListenerFilter looks for")
    else:
        pytest.fail("a closed gevent socket answered getsockname()")
    finally:
        listener.detach()  # its descriptor is closed: never close that number again (another file may have it)


def test_simple_websocket_takes_its_socket_from_gunicorn_s_environ_and_keeps_it_as_sock():
    import simple_websocket

    server_end, client_end = socket.socketpair()

    class Wrapper:  # what web/console_socket.py puts in the environ: every write through it
        def __init__(self, raw):
            self.raw, self.writes = raw, 0

        def send(self, data):
            self.writes += 1
            return self.raw.send(data)

        def __getattr__(self, name):
            return getattr(self.raw, name)

    wrapper = Wrapper(server_end)
    environ = {"gunicorn.socket": wrapper, "HTTP_HOST": "x", "HTTP_UPGRADE": "websocket",
               "HTTP_CONNECTION": "Upgrade", "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
               "HTTP_SEC_WEBSOCKET_VERSION": "13"}
    try:
        ws = simple_websocket.Server(environ)
        assert ws.sock is wrapper and wrapper.writes >= 1, (
            "simple-websocket internal changed: Server no longer writes through environ['gunicorn.socket'] kept "
            "as ws.sock (web/console_socket.py serializes writes and lingers on close through it)")
        assert client_end.recv(4096).startswith(b"HTTP/1.1 101")
        assert callable(getattr(getattr(ws, "thread", None), "join", None)), (
            "simple-websocket internal changed: ws.thread (its reader) is gone "
            "(web/console_socket.py waits for it before the lingering close)")
        ws.close()
    finally:
        client_end.close()
        server_end.close()
