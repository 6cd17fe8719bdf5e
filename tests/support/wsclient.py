"""The console protocol over a real WebSocket client library (websocket-client)."""

from __future__ import annotations

import itertools
import json
import urllib.request

import websocket

TOKEN = "operator-token-for-tests"
OBSERVER = "observer-token-for-tests"


class Console:
    def __init__(self, port: int, token: str | None = TOKEN, cookie: str | None = None,
                 origin: str | None = None, name: str | None = None, timeout: float = 10.0) -> None:
        headers = []
        if token:
            headers.append(f"Authorization: Bearer {token}")
        if name:
            headers.append(f"X-Operator-Name: {name}")
        kwargs = {"header": headers, "timeout": timeout}
        if cookie:
            kwargs["cookie"] = cookie
        if origin:
            kwargs["origin"] = origin
        else:
            kwargs["suppress_origin"] = True
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/console", **kwargs)
        self.ids = itertools.count(1)
        self.pushes: list[dict] = []
        self.welcome = self.recv()
        assert self.welcome["type"] == "welcome", self.welcome

    def recv(self) -> dict:
        return json.loads(self.ws.recv())

    def send_line(self, line: str, rid=None):
        rid = next(self.ids) if rid is None else rid
        self.ws.send(json.dumps({"id": rid, "line": line}))
        return rid

    def reply_to(self, rid) -> dict:
        while True:
            msg = self.recv()
            if "ok" in msg and msg.get("id") == rid:
                return msg
            assert "ok" not in msg, f"reply to another request: {msg}"
            self.pushes.append(msg)

    def request(self, line: str) -> dict:
        return self.reply_to(self.send_line(line))

    def ok(self, line: str):
        reply = self.request(line)
        assert reply["ok"], reply
        return reply["result"]

    def error(self, line: str) -> dict:
        reply = self.request(line)
        assert not reply["ok"], reply
        return reply["error"]

    def wait_push(self, type: str, timeout: float = 5.0) -> dict:
        for i, msg in enumerate(self.pushes):
            if msg.get("type") == type:
                return self.pushes.pop(i)
        self.ws.settimeout(timeout)
        while True:
            msg = self.recv()
            if msg.get("type") == type:
                return msg
            self.pushes.append(msg)

    def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code it sent."""
        self.ws.settimeout(timeout)
        try:
            while True:
                frame = self.ws.recv_frame()  # raw frames: no automatic close reply
                if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_reason = frame.data[2:].decode("utf-8", "replace")
                    return int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
        except (websocket.WebSocketConnectionClosedException, ConnectionError):
            return None

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


def login_cookie(base: str, token: str = TOKEN, name: str | None = None, origin: str | None = None) -> str:
    """POST /login; the session cookie as 'name=value'."""
    body = json.dumps({"token": token} | ({"name": name} if name else {})).encode()
    req = urllib.request.Request(base + "/login", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Origin": origin or base})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.headers["Set-Cookie"].split(";", 1)[0]


def handshake_status(port: int, **kwargs) -> int:
    """The HTTP status a refused handshake got (101 when it was accepted)."""
    try:
        Console(port, **kwargs).close()
        return 101
    except websocket.WebSocketBadStatusException as exc:
        return exc.status_code
