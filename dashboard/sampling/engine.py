"""The container engine's API over its unix socket: names, images, labels, state, and restart.

Docker and Podman speak the same HTTP API on a local socket. The dashboard
needs four calls of it (which engine, the list of containers, one container's
details, a restart), so it speaks HTTP/1.1 over an AF_UNIX socket with h11
(the HTTP/1.1 protocol alone, no I/O: it already comes with simple-websocket)
instead of depending on the `docker` package (and its requests and urllib3).
Not the standard library's http.client either: it loads the email package and
ssl, 6 MB of the agent's memory for a call made when containers change. Under
gevent the socket is cooperative, so a slow engine holds up only the greenlet
that asked.

The socket is root-equivalent (whoever may write to it can start a privileged
container): the dashboard only reads through it, except `container restart`.
Every failure is an `EngineError` with one line fit for an operator.
"""

from __future__ import annotations

import json
import os
import socket
from urllib.parse import quote

import h11

DEFAULT_SOCKETS = ("/var/run/docker.sock", "/run/podman/podman.sock")
TIMEOUT = 10.0
MAX_BODY = 32 * 1024 * 1024  # a list of thousands of containers with their labels fits


class EngineError(OSError):
    """The engine could not be asked (no socket, no permission, an error answer)."""


def socket_path(setting: str = "", environ: dict | None = None) -> tuple[str | None, str]:
    """(the socket to ask, or None, and why not): CONTAINER_SOCKET, else DOCKER_HOST, else the defaults."""
    environ = os.environ if environ is None else environ
    chosen = setting or environ.get("DOCKER_HOST", "")
    if chosen:
        path = chosen[len("unix://"):] if chosen.startswith("unix://") else chosen
        if "://" in path:
            return None, f"{chosen[:80]!r} is not a unix socket; only a local engine socket is asked"
        if not os.path.exists(path):
            return None, f"no engine socket at {path}"
        return path, ""
    for path in DEFAULT_SOCKETS:
        if os.path.exists(path):
            return path, ""
    return None, f"no engine socket (DOCKER_HOST unset, none at {' or '.join(DEFAULT_SOCKETS)})"


class Engine:
    """One engine socket; each call opens its own connection (calls are rare: when containers change)."""

    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout

    def _call(self, method: str, url: str, timeout: float | None = None) -> tuple[int, bytes]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            sock.connect(self.path)
            return _exchange(sock, method, url)
        except PermissionError:
            raise EngineError(f"permission denied on {self.path} (the engine's socket is root-equivalent: "
                              "run as root or in the engine's group)") from None
        except FileNotFoundError:
            raise EngineError(f"no engine socket at {self.path}") from None
        except _TooLong:
            raise EngineError(f"engine at {self.path} sent more than {MAX_BODY} bytes for {url}") from None
        except (OSError, h11.ProtocolError) as exc:
            raise EngineError(f"engine at {self.path} did not answer: {type(exc).__name__}: {exc}") from None
        finally:
            sock.close()

    def _json(self, url: str):
        status, body = self._call("GET", url)
        if status != 200:
            raise EngineError(f"engine answered {status} to GET {url.split('?')[0]}: {_message(body)}")
        try:
            return json.loads(body)
        except ValueError:
            raise EngineError(f"engine sent something other than JSON for {url.split('?')[0]}") from None

    def name(self) -> str:
        """"podman 4.3.1", "docker 27.1.1"...: which engine answers."""
        info = self._json("/version")
        components = [c.get("Name", "") for c in info.get("Components") or () if isinstance(c, dict)]
        kind = "podman" if any("podman" in c.lower() for c in components) else "docker"
        return f"{kind} {info.get('Version', '?')}"

    def containers(self) -> list[dict]:
        """Every container, running or not: id, name, image, labels, state."""
        out = []
        for c in self._json("/containers/json?all=1"):
            names = c.get("Names") or ["?"]
            out.append({"id": c.get("Id", ""), "name": names[0].lstrip("/"), "image": c.get("Image", ""),
                        "labels": c.get("Labels") or {}, "state": c.get("State", "")})
        return out

    def inspect(self, cid: str) -> dict:
        """One container's init pid, restart count and start time (ISO text), name and image."""
        d = self._json(f"/containers/{quote(cid, safe='')}/json")
        state = d.get("State") or {}
        config = d.get("Config") or {}
        return {"id": d.get("Id", cid), "name": (d.get("Name") or "?").lstrip("/"),
                "image": config.get("Image") or d.get("Image", ""), "labels": config.get("Labels") or {},
                "state": state.get("Status", ""), "pid": state.get("Pid") or None,
                "restarts": d.get("RestartCount"), "started": state.get("StartedAt"),
                "network_mode": (d.get("HostConfig") or {}).get("NetworkMode")}

    def restart(self, cid: str, wait: int = 10) -> None:
        """POST /containers/<id>/restart: stop (SIGTERM, then SIGKILL after `wait` s) and start again."""
        url = f"/containers/{quote(cid, safe='')}/restart?t={int(wait)}"
        status, body = self._call("POST", url, timeout=self.timeout + wait)
        if status not in (200, 204):
            raise EngineError(f"engine answered {status} to the restart: {_message(body)}")


class _TooLong(Exception):
    pass


def _exchange(sock: socket.socket, method: str, url: str) -> tuple[int, bytes]:
    """One request without a body on a connected socket: the answer's status and body."""
    conn = h11.Connection(h11.CLIENT)
    sock.sendall(conn.send(h11.Request(method=method, target=url, headers=[("Host", "localhost")]))
                 + conn.send(h11.EndOfMessage()))
    status, body = None, bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))  # b"" at the end: h11 then says whether the answer was whole
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise _TooLong
        elif isinstance(event, h11.EndOfMessage):  # a close before it is h11's RemoteProtocolError
            return status, bytes(body)


def _message(body: bytes) -> str:
    try:
        text = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        text = body.decode("utf-8", "replace")
    return " ".join(str(text).split())[:200] or "no message"
