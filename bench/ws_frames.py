"""The benchmark's one WebSocket client framing (RFC 6455), for its raw-socket clients.

The opening handshake (the request and the check of the server's answer),
masked client frames, and a reader that takes the server's bytes as they come
and gives back whole messages (fragments joined) and control frames, in order.
The console load clients (console_client.py) and the soak's consoles
(soak_console.py) both talk through it; the one-client round trip uses the
websocket-client library instead, as the tests do.
"""

from __future__ import annotations

import base64
import hashlib
import os

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE = (1000).to_bytes(2, "big")


class ProtocolError(ValueError):
    """The server sent what a server must not (a masked frame)."""


def handshake(host: str, port: int, path: str, headers: dict[str, str]) -> tuple[bytes, str]:
    """The upgrade request for ws://host:port/path with extra headers, and the
    Sec-WebSocket-Accept value the server must answer with."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


def refused(head: str, accept: str) -> str | None:
    """None when the response head (up to the blank line) accepts the upgrade,
    else why not: its status line, or that Sec-WebSocket-Accept is wrong."""
    status = head.split("\r\n", 1)[0]
    if " 101 " not in status + " ":
        return status[:60]
    if f"sec-websocket-accept: {accept}".lower() not in head.lower():
        return "bad Sec-WebSocket-Accept"
    return None


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 5.2), FIN set."""
    n = len(payload)
    key = os.urandom(4)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + _mask(payload, key)


def close_reason(payload: bytes) -> tuple[int | None, str]:
    """A close frame's status code (None without one) and the start of its reason."""
    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
    return code, payload[2:62].decode(errors="replace")


class Reader:
    """Server frames from bytes fed as they arrive, split anywhere.

    `feed` returns (opcode, payload) pairs: TEXT or BINARY with a whole message
    (its fragments joined), CLOSE, PING and PONG as they came, and any other
    opcode with its payload for the caller to judge. Bytes of a frame not yet
    complete wait for the next feed. A masked frame raises ProtocolError.
    """

    __slots__ = ("buf", "fragments", "first")

    def __init__(self) -> None:
        self.buf = b""
        self.fragments: list[bytes] = []
        self.first = TEXT  # the opcode of the message being fragmented

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buf = self.buf + data if self.buf else data
        out = []
        pos, size = 0, len(buf)
        while size - pos >= 2:  # each pass consumes one whole frame or leaves
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                head = 10
            if b1 & 0x80:
                raise ProtocolError("masked frame from the server")
            if size - pos < head + n:
                break
            payload = buf[pos + head:pos + head + n]
            pos += head + n
            opcode, fin = b0 & 0x0F, b0 & 0x80
            if opcode in (TEXT, BINARY, CONTINUATION):
                if opcode != CONTINUATION:
                    self.first, self.fragments = opcode, []
                if fin and not self.fragments:
                    out.append((self.first, payload))
                elif fin:
                    self.fragments.append(payload)
                    out.append((self.first, b"".join(self.fragments)))
                    self.fragments = []
                else:
                    self.fragments.append(payload)
            else:
                out.append((opcode, payload))
        self.buf = buf[pos:]
        return out
